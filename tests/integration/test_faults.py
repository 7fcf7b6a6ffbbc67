"""Fault injection with real processes (``-m integration``).

1. ``test_a_regression_survives_a_killed_worker_a_killed_agent_and_a_portal_restart``: a gunicorn
   portal, a Celery worker and three ``optima-node run`` agents fit a logistic regression once
   undisturbed (the reference); a second, identical analysis is then disturbed in its second round:
   the worker is SIGKILLed, the portal (gunicorn) is stopped and started again on the same port,
   and one agent is SIGKILLed right after claiming its run (the claim is made with its token, so
   the run is left RUNNING with a lease, exactly what a crash leaves). The lease is then let run
   out (``leases_expire`` with the clock past the lease, as the beat task does), a new worker with
   an embedded beat and the agent are started again. The analysis must finish with the reference's
   coefficients, every (node, round) must have exactly one run whose result was stored once, and
   the run the dead agent held must have been answered by its second attempt.
2. ``test_a_dropped_database_connection_fails_the_request_cleanly_and_writes_nothing``: the
   connection fails in the middle of a write (after the first statements of the transaction; on
   PostgreSQL the server really terminates the session, on SQLite the driver error is raised); the
   request answers a bare 500 without details, and nothing of the transaction is left behind.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from federation import services
from federation.models import Analysis, AnalysisStatus, Node, Run, RunStatus
from optima_node.db import connect
from optima_node.synth import synthesise
from optima_portal.celery import app
from tests.factories import OrganisationFactory
from tests.federation.factories import LUNG, make_node
from tests.processes import ROOT, database_url_for_subprocess, stop, subprocess_env, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PARAMS = {
    "cohort": {"condition_concept_ids": LUNG},
    "outcome": {"kind": "death_within_days", "days": 365},
    "covariates": ["age_at_index", "sex_male"],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """The portal's processes, sharing the test database and a private broker directory."""

    def __init__(self, tmp_path) -> None:
        self.tmp = tmp_path
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = subprocess_env(OPTIMA_VAR_DIR=str(tmp_path / "var"), LOG_LEVEL="INFO")
        self.processes: list[subprocess.Popen] = []

    def _spawn(self, name: str, argv: list[str], **env: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "a")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes.append(process)
        return process

    def portal(self) -> subprocess.Popen:
        process = self._spawn(
            "gunicorn",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "optima_portal.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
                "--threads",
                "2",
                "--graceful-timeout",
                "2",
            ],
        )
        wait_for(self._healthy, timeout=60, what="the portal to answer")
        return process

    def _healthy(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def worker(self, *, beat: bool = False) -> subprocess.Popen:
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "optima_portal",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        if beat:
            argv += ["-B", "-s", str(self.tmp / "beat-schedule")]
        return self._spawn("worker-beat" if beat else "worker", argv)

    def agent(self, i: int, token: str, db_url: str) -> subprocess.Popen:
        return self._spawn(
            f"agent{i}",
            [sys.executable, "-m", "optima_node.cli", "run"],
            PORTAL_URL=self.url,
            NODE_TOKEN=token,
            OMOP_DATABASE_URL=db_url,
            POLL_INTERVAL="1",
            LEDGER_FILE=str(self.tmp / f"ledger{i}.sqlite3"),
        )

    def stop_all(self) -> None:
        for process in self.processes:
            stop(process)


def _finished(analysis_id: int):
    return Analysis.objects.filter(pk=analysis_id).exclude(status=AnalysisStatus.RUNNING).first()


def _claim_as(url: str, token: str) -> dict:
    import json
    import urllib.request

    request = urllib.request.Request(
        url + "/api/node/runs/claim/",
        data=b"",
        method="POST",
        headers={"Authorization": f"Node {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, response.status
        return json.loads(response.read())


def test_a_regression_survives_a_killed_worker_a_killed_agent_and_a_portal_restart(
    tmp_path, researcher
):
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True  # the test process's own calls run in-process
    cluster = Cluster(tmp_path)
    try:
        cluster.portal()
        first_worker = cluster.worker()
        nodes, tokens, dbs, agents = [], [], [], []
        for i, (seed, persons) in enumerate(((5, 1500), (6, 1200), (7, 900))):
            org = OrganisationFactory(name=f"Fault Hospital {i}", slug=f"fault-{i}")
            path = tmp_path / f"site{i}.sqlite3"
            database = connect(f"sqlite:///{path}")
            synthesise(database, persons, seed, ["lung"])
            database.close()
            node, token = make_node(org, f"fault-{i}")
            Node.objects.filter(pk=node.pk).update(poll_interval_seconds=0.5)
            nodes.append(node)
            tokens.append(token)
            dbs.append(f"sqlite:///{path}")
            agents.append(cluster.agent(i, token, dbs[i]))
        ids = [n.pk for n in nodes]
        wait_for(
            lambda: Node.objects.filter(pk__in=ids, last_seen_at__isnull=False).count() == 3,
            timeout=60,
            what="three heartbeats",
        )

        # The reference: the same regression, undisturbed.
        reference = services.analysis_start(
            researcher=researcher,
            analysis_type="logistic_regression",
            version=1,
            params=PARAMS,
            nodes=nodes,
        )
        reference = wait_for(
            lambda: _finished(reference.pk), timeout=180, interval=0.5, what="the reference"
        )
        assert reference.status == AnalysisStatus.COMPLETED, reference.reason

        # The disturbed run.
        analysis = services.analysis_start(
            researcher=researcher,
            analysis_type="logistic_regression",
            version=1,
            params=PARAMS,
            nodes=nodes,
        )
        wait_for(
            lambda: Run.objects.filter(analysis=analysis, round__gte=2).exists(),
            timeout=120,
            interval=0.1,
            what="the second round",
        )
        # Agent 0 dies; the worker is killed; the portal goes down.
        agents[0].send_signal(signal.SIGKILL)
        agents[0].wait(timeout=10)
        first_worker.send_signal(signal.SIGKILL)
        first_worker.wait(timeout=10)
        portal = next(p for p in cluster.processes if "gunicorn" in " ".join(p.args))
        stop(portal)
        time.sleep(1)
        cluster.portal()  # the portal is back on the same address
        cluster.worker(beat=True)  # a new worker (with the beat) picks up the analysis
        # What agent 0 was doing when it died: a claimed run (lease held, no result). Either it
        # had claimed its next run before the kill (RUNNING), or that run waits as DISPATCHED
        # for the dead agent; then claim it with its token, as the agent would have.
        stuck = (RunStatus.DISPATCHED, RunStatus.RUNNING)
        run = wait_for(
            lambda: (
                Run.objects.filter(analysis=analysis, node=nodes[0], status__in=stuck)
                .order_by("-round")
                .first()
            ),
            timeout=120,
            interval=0.2,
            what="a run for the dead agent",
        )
        if run.status == RunStatus.DISPATCHED:
            held = _claim_as(cluster.url, tokens[0])
        else:
            held = {"run_id": run.pk, "attempt": run.attempt}
        assert held["attempt"] == 1
        # The lease runs out (the beat task's leases_expire, with the clock past the lease).
        later = timezone.now() + timedelta(seconds=services.lease_seconds() + 1)
        assert services.leases_expire(now=later) >= 1
        agents[0] = cluster.agent(0, tokens[0], dbs[0])

        finished = wait_for(
            lambda: _finished(analysis.pk), timeout=240, interval=0.5, what="the disturbed run"
        )
        assert finished.status == AnalysisStatus.COMPLETED, finished.reason
        assert finished.result["converged"] is True
        got = [c["estimate"] for c in finished.result["coefficients"]]
        want = [c["estimate"] for c in reference.result["coefficients"]]
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
        assert finished.result.get("n") == reference.result.get("n")

        runs = list(Run.objects.filter(analysis=analysis))
        keys = [(r.node_id, r.round) for r in runs]
        assert len(keys) == len(set(keys)), "a (node, round) was run twice"
        assert all(r.status == RunStatus.COMPLETED and r.result_hash for r in runs)
        rounds = {r.round for r in runs}
        assert len(runs) == 3 * len(rounds)  # every node counted once per round
        retried = Run.objects.get(pk=held["run_id"])
        assert retried.attempt == 2 and retried.status == RunStatus.COMPLETED
    finally:
        cluster.stop_all()
        app.conf.task_always_eager = previous


def test_a_dropped_database_connection_fails_the_request_cleanly_and_writes_nothing(
    client, site_admin_a, hospital_a, monkeypatch, settings
):
    from accounts import audit
    from accounts.models import AuditEvent

    settings.DEBUG = False
    client.force_login(site_admin_a)
    client.raise_request_exception = False
    before_nodes, before_events = Node.objects.count(), AuditEvent.objects.count()

    original = audit.record

    def dropped(*args, **kwargs):
        if connection.vendor == "postgresql":
            # A real drop: the server ends this session from another connection, then the
            # transaction's next statement (the audit write) meets a dead connection.
            import psycopg

            pid = connection.connection.info.backend_pid
            with psycopg.connect(database_url_for_subprocess(), autocommit=True) as other:
                other.execute("SELECT pg_terminate_backend(%s)", [pid])
            return original(*args, **kwargs)
        raise OperationalError("server closed the connection unexpectedly")

    # The node row is inserted first; the connection drops at the audit write that follows.
    monkeypatch.setattr(audit, "record", dropped)
    monkeypatch.setattr(services.nodes, "record", dropped)
    response = client.post(
        "/federation/nodes/register/",
        {"organisation": hospital_a.pk, "name": "half-written", "description": ""},
    )
    assert response.status_code == 500
    body = response.content.decode()
    assert "OperationalError" not in body and "Traceback" not in body
    assert Node.objects.count() == before_nodes
    assert not Node.objects.filter(name="half-written").exists()
    assert AuditEvent.objects.count() == before_events
