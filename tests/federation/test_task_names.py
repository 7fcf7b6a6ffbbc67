"""What a worker registers at start (Celery's autodiscovery of ``<app>.tasks``) includes every task
name the beat schedule and the services enqueue, the federated-learning ones included."""

from __future__ import annotations

from federation.beat import SCHEDULE
from optima_portal.celery import app

NAMES = {
    "federation.advance_analysis",
    "federation.expire_runs",
    "federation.node_liveness",
    "federation.prune_heartbeats",
    "federation.fl_submit",
    "federation.fl_monitor",
    "federation.fl_monitor_open",
}


def test_autodiscovery_registers_every_federation_task_by_name():
    app.loader.import_default_modules()
    registered = {name for name in app.tasks if name.startswith("federation.")}
    assert registered >= NAMES, NAMES - registered
    assert {entry["task"] for entry in SCHEDULE.values()} <= registered
    assert app.tasks["federation.fl_submit"].__module__ == "federation.flare.tasks"
