"""The demo's central node: enrolled once by ``seed_demo``, started by ``make run``."""

from __future__ import annotations

from accounts.models import AuditEvent
from central import demo
from central.models import CentralNode


def test_seed_enrols_the_central_node_once_and_make_run_starts_it(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    demo.seed()
    credential = tmp_path / "central-node" / "credential"
    raw = credential.read_text().strip()
    assert credential.stat().st_mode & 0o777 == 0o600
    assert CentralNode.authenticate(raw) is not None
    demo.seed()  # again: the same credential still works, nothing rotated
    assert CentralNode.authenticate(raw) is not None
    assert AuditEvent.objects.filter(action="central.node_enrolled").count() == 1

    ((name, argv, env),) = demo.processes("http://127.0.0.1:8123")
    assert name == "central-node"
    assert argv[1:] == ["-m", "optima_node.cli", "central"]
    assert env["PORTAL_URL"] == "http://127.0.0.1:8123"
    assert env["CENTRAL_NODE_TOKEN_FILE"] == str(credential)
    assert "CENTRAL_OMOP_DATABASE_URL" not in env  # SQLite central copies: nothing to pass


def test_make_run_starts_no_central_node_before_the_seed(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    assert demo.processes("http://127.0.0.1:8123") == []


def test_seed_replaces_a_credential_left_by_another_database(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    credential = tmp_path / "central-node" / "credential"
    credential.parent.mkdir()
    credential.write_text("central_from_another_database\n")
    demo.seed()
    assert CentralNode.authenticate(credential.read_text().strip()) is not None
