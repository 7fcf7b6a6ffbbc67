"""End to end with real processes: the portal on a live server, a real Celery worker and three
``optima-node run`` subprocesses on synthetic SQLite databases fit one logistic regression."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from federation import services
from federation.models import Analysis, AnalysisStatus, Node
from optima_node.db import connect
from optima_node.synth import synthesise
from optima_portal.celery import app
from tests.factories import OrganisationFactory
from tests.federation.factories import LUNG, make_node
from tests.processes import ROOT, start_celery_worker, stop, subprocess_env, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def start_agent(portal_url: str, token: str, db_url: str, log_path):
    log = open(log_path, "w")  # noqa: SIM115 (closed when the process ends)
    return subprocess.Popen(
        [sys.executable, "-m", "optima_node.cli", "run"],
        cwd=ROOT,
        env=subprocess_env(
            PORTAL_URL=portal_url,
            NODE_TOKEN=token,
            OMOP_DATABASE_URL=db_url,
            POLL_INTERVAL="1",
            LEDGER_FILE=str(log_path.with_suffix(".ledger.sqlite3")),
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_a_logistic_regression_runs_to_completion_across_three_real_agents(
    live_server, tmp_path, researcher, platform_admin
):
    queue = f"fed-{uuid.uuid4().hex[:8]}"
    previous = (app.conf.task_always_eager, app.conf.task_default_queue)
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    agents, worker = [], None
    try:
        worker = start_celery_worker(queue, tmp_path / "worker.log")
        nodes = []
        for i, (seed, persons) in enumerate(((5, 1500), (6, 1200), (7, 900))):
            org = OrganisationFactory(name=f"E2E Hospital {i}", slug=f"e2e-{i}")
            path = tmp_path / f"site{i}.sqlite3"
            database = connect(f"sqlite:///{path}")
            synthesise(database, persons, seed, ["lung"])
            database.close()
            node, token = make_node(org, f"e2e-{i}")
            Node.objects.filter(pk=node.pk).update(poll_interval_seconds=0.5)
            nodes.append(node)
            agents.append(
                start_agent(live_server.url, token, f"sqlite:///{path}", tmp_path / f"agent{i}.log")
            )
        ids = [n.pk for n in nodes]
        wait_for(
            lambda: Node.objects.filter(pk__in=ids, last_seen_at__isnull=False).count() == 3,
            timeout=60,
            what="three heartbeats",
        )
        analysis = services.analysis_start(
            researcher=researcher,
            analysis_type="logistic_regression",
            version=1,
            params={
                "cohort": {"condition_concept_ids": LUNG},
                "outcome": {"kind": "death_within_days", "days": 365},
                "covariates": ["age_at_index", "sex_male"],
            },
            nodes=nodes,
        )
        finished = wait_for(
            lambda: (
                Analysis.objects.filter(pk=analysis.pk)
                .exclude(status=AnalysisStatus.RUNNING)
                .first()
            ),
            timeout=180,
            interval=0.5,
            what="the regression to finish",
        )
        assert finished.status == AnalysisStatus.COMPLETED, finished.reason
        assert finished.result["converged"] is True
        assert [c["term"] for c in finished.result["coefficients"]] == [
            "intercept",
            "age_at_index",
            "sex_male",
        ]
        # A revoked node's agent stops with a clear message (exit code 3).
        services.node_revoke(actor=platform_admin, node=nodes[0])
        assert agents[0].wait(timeout=30) == 3
        assert "revoked" in (tmp_path / "agent0.log").read_text()
    finally:
        for agent in agents:
            stop(agent)
        if worker is not None:
            stop(worker)
        app.conf.task_always_eager, app.conf.task_default_queue = previous
