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


def test_every_demo_dataset_gets_a_released_profile_through_the_services(db, settings, tmp_path):
    from accounts.models import AuditEvent
    from catalogue import demo as catalogue_demo
    from catalogue.models import Dataset, DatasetProfile
    from federation.models import Analysis, NodeDataset

    settings.VAR_DIR = tmp_path
    accounts_demo.seed()
    catalogue_demo.seed()
    demo.seed()
    published = Dataset.objects.exclude(current_version=None)
    served = set(NodeDataset.objects.values_list("dataset_id", flat=True))
    assert served and set(published.values_list("pk", flat=True)) <= served
    profiles = DatasetProfile.objects.filter(dataset_id__in=served)
    assert profiles.count() == len(served)
    for profile in profiles.select_related("dataset"):
        analysis = Analysis.objects.get(pk=int(profile.source.split("#")[1]))
        assert analysis.type == "database_profile" and analysis.status == "completed"
        # The node's database: its person count, through its gate (k = 5).
        slug = profile.dataset.publisher.slug
        assert profile.data["person_count"]["count"] == demo.DEMO_SITES[slug][1]
        assert profile.data["nodes"] == [demo.node_name(slug)]
    assert AuditEvent.objects.filter(action="dataset.profile_attached").count() == len(served)
    demo.seed()  # idempotent: no second profile request
    assert Analysis.objects.filter(type="database_profile").count() == len(served)
