from __future__ import annotations

import subprocess
import sys

from accounts import demo as accounts_demo
from federation import demo
from federation.models import Node, NodeStatus
from optima_node.db import connect


def test_seed_registers_four_nodes_with_their_own_databases_and_is_idempotent(
    db, settings, tmp_path
):
    settings.VAR_DIR = tmp_path
    accounts_demo.seed()
    demo.seed()
    nodes = Node.objects.filter(name__endswith="-omop")
    assert nodes.count() == 4
    assert set(nodes.values_list("status", flat=True)) == {NodeStatus.APPROVED}
    sizes = []
    for slug in demo.DEMO_SITES:
        token = (tmp_path / "nodes" / f"{slug}.token").read_text().strip()
        assert Node.authenticate(token).organisation.slug == slug
        database = connect(f"sqlite:///{tmp_path / 'nodes' / f'{slug}.sqlite3'}")
        sizes.append(database.execute("SELECT COUNT(*) FROM person")[0][0])
        database.close()
    assert sizes == [p for _, p in demo.DEMO_SITES.values()]
    demo.seed()  # again: same nodes, tokens still valid
    assert Node.objects.filter(name__endswith="-omop").count() == 4
    token = (tmp_path / "nodes" / "de-hospital.token").read_text().strip()
    assert Node.authenticate(token) is not None
    procs = demo.processes("http://127.0.0.1:8123")
    assert len(procs) == 4
    _name, argv, env = procs[0]
    assert argv[1:5] == ["-m", "optima_node.cli", "run", "--config"]
    assert env["PORTAL_URL"] == "http://127.0.0.1:8123"
    # The generated configuration is one the agent accepts.
    shown = subprocess.run(
        [sys.executable, "-m", "optima_node.cli", "policy", "show", "--config", argv[-1]],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "min_cell_count = 5" in shown.stdout
