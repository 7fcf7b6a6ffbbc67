"""Federated analysis benchmarks: figures against the targets of the federation issue.

Run: .venv/bin/python benchmarks/federated.py [--parts 1,2,3] [--persons 1000000]
     [--database-url postgresql://postgres@127.0.0.1:5432/optima_bench] [--help for the rest]

1. Node-side time of one logistic-regression round on a synthetic OMOP CDM (SQLite, written by
   ``optima_node.synth``) of ``--persons`` persons, as a ratio to one pooled numpy IRLS iteration
   on the same design matrix (target <= 2x). The cohort extraction (SQL + numpy) is timed apart.
2. End-to-end time of a ``cohort_count`` over four ``optima-node run`` agents polling every second:
   ``POST /api/analyses/`` until the analysis reads ``completed`` (target <= 3 s), through a
   gunicorn portal and a real Celery worker (``--eager``: tasks run inside the portal instead).
3. ``POST /api/node/runs/claim/`` under 1,000 simulated nodes polling every 5 s (200 requests/s)
   for ``--duration`` seconds against the same gunicorn portal: achieved rate, latency
   percentiles and error rate (target p99 < 100 ms).

Parts 2 and 3 share one portal: a temporary SQLite database (default) or, with
``--database-url postgresql://…/NAME``, a database NAME the script creates and drops (it refuses to
touch a database that already exists), migrated for the run, with ``OPTIMA_VAR_DIR`` in a
temporary directory and the Celery broker on that directory (``filesystem://``) unless
``--broker-url`` names another. Everything listens on 127.0.0.1 only; every process the script
starts is stopped and the temporary directory removed on the way out.

Exit status: 0 when every figure was measured (missed targets are printed as "target missed",
they do not fail the run); 1 when a measurement could not be made; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PY = sys.executable
CANCERS = ["prostate", "breast", "lung"]
# Everyone with a cancer (443392 and its descendants) or the synthetic hypertension record, so the
# regression's design matrix holds nearly every person of the database.
ALL_PERSONS_COHORT = {"condition_concept_ids": [443392, 320128], "include_descendants": True}
CANCER_COHORT = {"condition_concept_ids": [443392], "include_descendants": True}
E2E_SITES = ((1, 8000), (2, 5000), (3, 3500), (4, 2000))  # (seed, persons), as the demo nodes

TARGET_ROUND_RATIO = 2.0
TARGET_E2E_SECONDS = 3.0
TARGET_P99_MS = 100.0


class BenchmarkError(RuntimeError):
    """A figure could not be measured (a process failed, a timeout passed)."""


def verdict(met: bool) -> str:
    return "target met" if met else "target missed"


def machine_load() -> str:
    """The 1-minute load average: figures from a busy machine are not comparable."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return f"{os.cpu_count()} cores"
    return f"load average {load:.1f} on {os.cpu_count()} cores"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, int(-(-q * len(ordered) // 100)))  # ceil(q/100 * n)
    return ordered[min(rank, len(ordered)) - 1]


# =============================================================================================
# Part 1: one logistic-regression round at the node vs. one pooled numpy IRLS iteration
# =============================================================================================


def irls_iteration(x, y, beta):
    """One textbook IRLS step for a logistic model on pooled data (the yardstick)."""
    import numpy as np

    eta = x @ beta
    mu = 1.0 / (1.0 + np.exp(-eta))
    weight = mu * (1.0 - mu)
    z = eta + (y - mu) / weight
    xtw = x.T * weight
    return np.linalg.solve(xtw @ x, xtw @ z)


def bench_node_round(
    persons: int, workdir: Path, *, seed: int = 1, repeats: int = 7, days: int = 365
) -> dict[str, Any]:
    """Synthesise a CDM of ``persons`` persons and time the node's regression round on it."""
    import numpy as np

    from optima_node.agent import Agent
    from optima_node.analyses.logistic_regression import design, fisher_round
    from optima_node.cohort import build_cohort
    from optima_node.db import connect
    from optima_node.policy import Policy
    from optima_node.schemas import CohortSpec, LogisticRegressionParams, RunAssignment
    from optima_node.synth import synthesise

    load = machine_load()
    url = f"sqlite:///{workdir / f'node-{persons}.sqlite3'}"
    db = connect(url)
    try:
        started = time.perf_counter()
        synthesise(db, persons, seed, CANCERS, replace=True)
        synth_seconds = time.perf_counter() - started
    finally:
        db.close()

    params_dict = {
        "cohort": ALL_PERSONS_COHORT,
        "outcome": {"kind": "death_within_days", "days": days},
        "covariates": ["age_at_index", "sex_male", "index_year"],
    }
    params = LogisticRegressionParams.model_validate(params_dict)
    db = connect(url)
    try:
        # Cohort extraction as the node does it on a cache miss: the SQL, then numpy arrays.
        started = time.perf_counter()
        cohort = build_cohort(db, CohortSpec.model_validate(ALL_PERSONS_COHORT))
        db.rollback()
        extraction_seconds = time.perf_counter() - started
        started = time.perf_counter()
        x, y = design(cohort, params)
        design_seconds = time.perf_counter() - started
        del cohort

        # The agent's own execute() (params validation, the analysis with its policy checks,
        # the disclosure gate, the RunResult envelope), i.e. everything between claim and post.
        agent = Agent(client=None, db=db, policy=Policy())
        p = len(params.terms)

        def assignment(round_: int, beta) -> RunAssignment:
            return RunAssignment(
                run_id=round_,
                attempt=1,
                analysis_id=1,
                type="logistic_regression",
                version=1,
                round=round_,
                params=params_dict,
                state={"beta": [float(b) for b in beta]},
            )

        started = time.perf_counter()
        first = agent.execute(assignment(1, np.zeros(p)))
        first_round_seconds = time.perf_counter() - started
        if first.status != "completed":
            raise BenchmarkError(f"round 1 was {first.status} ({first.reason_code})")

        # A realistic mid-fit β (one pooled step from zero); the cost does not depend on it.
        beta = irls_iteration(x, y, np.zeros(p))
        result = agent.execute(assignment(2, beta))
        if result.status != "completed" or result.result["n"] != len(y):
            raise BenchmarkError("a warm round did not complete on the cached design matrix")
        # Interleaved, so that a change in the machine's load hits all three alike.
        node_times, fisher_times, irls_times = [], [], []
        for _ in range(repeats):
            for func, bucket in (
                (lambda: agent.execute(assignment(2, beta)), node_times),
                (lambda: fisher_round(x, y, beta), fisher_times),
                (lambda: irls_iteration(x, y, beta), irls_times),
            ):
                started = time.perf_counter()
                func()
                bucket.append(time.perf_counter() - started)
    finally:
        db.close()
    node = median(node_times)
    irls = median(irls_times)
    return {
        "persons": persons,
        "rows": len(y),
        "terms": p,
        "synth_seconds": synth_seconds,
        "extraction_seconds": extraction_seconds,
        "design_seconds": design_seconds,
        "first_round_seconds": first_round_seconds,
        "node_round_seconds": node,
        "fisher_round_seconds": median(fisher_times),
        "irls_seconds": irls,
        "ratio": node / irls,
        "node_round_min": min(node_times),
        "irls_min": min(irls_times),
        "repeats": repeats,
        "load": load,
    }


def print_node_round(r: dict[str, Any]) -> bool:
    print(f"\n== 1. Node-side logistic-regression round ({r['persons']:,} persons; {r['load']})")
    print(
        f"synthetic OMOP CDM (SQLite, optima_node.synth): {r['synth_seconds']:.1f} s to write "
        "(setup, not a figure)"
    )
    print(
        f"cohort extraction (SQL + numpy, cache miss): {r['extraction_seconds']:.2f} s; "
        f"design matrix: {r['design_seconds']:.3f} s -> {r['rows']:,} rows x {r['terms']} terms"
    )
    print(f"round 1 incl. extraction (Agent.execute, cold cache): {r['first_round_seconds']:.2f} s")
    print(
        f"node round (Agent.execute with the cohort cached, as in rounds >= 2: params, "
        f"XtWX/score/deviance, disclosure gate), median of {r['repeats']}: "
        f"{r['node_round_seconds'] * 1000:.1f} ms (fisher_round alone "
        f"{r['fisher_round_seconds'] * 1000:.1f} ms)"
    )
    print(
        f"pooled numpy IRLS iteration on the same matrix, median of {r['repeats']}: "
        f"{r['irls_seconds'] * 1000:.1f} ms"
    )
    met = r["ratio"] <= TARGET_ROUND_RATIO
    print(
        f"ratio node/pooled: {r['ratio']:.2f}x on medians (best of {r['repeats']}: "
        f"{r['node_round_min'] * 1000:.1f} / {r['irls_min'] * 1000:.1f} ms = "
        f"{r['node_round_min'] / r['irls_min']:.2f}x) (target <= {TARGET_ROUND_RATIO:g}x): "
        f"{verdict(met)}"
    )
    return met


# =============================================================================================
# The portal: database, migrations, gunicorn, Celery worker, management commands
# =============================================================================================


def tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process and its descendants (Linux /proc; else None)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    stats: dict[int, tuple[int, float]] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return None
    for entry in entries:
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        # after the command: state ppid ... utime(12th) stime(13th) counted from state = 0
        stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    if pid not in stats:
        return None
    total, frontier = 0.0, [pid]
    while frontier:
        current = frontier.pop()
        total += stats[current][1]
        frontier.extend(child for child, (parent, _) in stats.items() if parent == current)
    return total


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def signal_processes(processes: Sequence[subprocess.Popen]) -> None:
    """Ask each to stop with SIGTERM: the process group it leads (it was started in its own
    session), or only the process itself when it stops its children (gunicorn's master)."""
    for process in processes:
        if process.poll() is None and not getattr(process, "signalled", False):
            with contextlib.suppress(ProcessLookupError):
                if getattr(process, "signal_group", True):
                    os.killpg(process.pid, signal.SIGTERM)
                else:
                    process.send_signal(signal.SIGTERM)
            process.signalled = True  # type: ignore[attr-defined]


def stop_processes(processes: Sequence[subprocess.Popen], timeout: float = 10) -> None:
    """Signal them all at once, wait for them, then SIGKILL what is left."""
    running = [p for p in processes if p.poll() is None]
    signal_processes(running)
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)


@dataclass
class PostgresDatabase:
    """A database this run creates and drops (never one that already exists)."""

    url: str
    created: bool = False

    @property
    def name(self) -> str:
        return urlsplit(self.url).path.lstrip("/")

    def _admin(self):
        import psycopg

        parts = urlsplit(self.url)
        admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
        return psycopg.connect(admin, autocommit=True)

    def create(self) -> None:
        from psycopg import sql

        if not self.name or not self.name.replace("_", "").isalnum():
            raise BenchmarkError(f"unsupported database name {self.name!r} (letters, digits, _)")
        with self._admin() as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [self.name]
            ).fetchone()
            if exists:
                raise BenchmarkError(
                    f"database {self.name!r} already exists; drop it or name another "
                    "(this script only drops databases it created)"
                )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        self.created = True

    def drop(self) -> None:
        from psycopg import sql

        if not self.created:
            return
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )
        self.created = False


@dataclass
class Portal:
    """A portal of its own: temporary VAR_DIR and database, gunicorn on a free local port."""

    workdir: Path
    # None: a SQLite file in the work directory. A postgresql:// URL is created and dropped by
    # this run when create_database is set; otherwise (tests) the database exists already.
    database_url: str | None = None
    create_database: bool = True
    migrate: bool = True
    broker_url: str | None = None
    eager: bool = False
    workers: int = 4
    threads: int = 2
    port: int = 0
    processes: list[subprocess.Popen] = field(default_factory=list)
    _pg: PostgresDatabase | None = None
    _secret: str = field(default_factory=lambda: secrets.token_urlsafe(40))

    @property
    def var_dir(self) -> Path:
        return self.workdir / "var"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def vendor(self) -> str:
        url = self.database_url or "sqlite://"
        return "postgresql" if url.startswith(("postgresql://", "postgres://")) else "sqlite"

    def env(self, **extra: str) -> dict[str, str]:
        drop = {
            "PYTEST_CURRENT_TEST",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
            "TEST_DATABASE_NAME",
            "CELERY_RESULT_BACKEND",
            "STATIC_ROOT",
            "MEDIA_ROOT",
            "CACHE_URL",
        }
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.update(
            DJANGO_SETTINGS_MODULE="optima_portal.settings",
            DATABASE_URL=self.database_url or f"sqlite:///{self.var_dir / 'portal.sqlite3'}",
            OPTIMA_VAR_DIR=str(self.var_dir),
            CELERY_BROKER_URL=self.broker_url or "filesystem://",
            CELERY_TASK_ALWAYS_EAGER="1" if self.eager else "0",
            DEBUG="0",
            SECRET_KEY=self._secret,
            AUDIT_HMAC_KEY="benchmark-audit-key-" + self._secret,
            SECURE_HTTPS="0",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
            # The timed client polls an analysis every 50 ms: latency, not the API's rate limit,
            # is measured here (tests/security/test_rate_limits.py covers the limits).
            API_USER_RATE="1000000/min",
        )
        env.update(extra)
        return env

    def manage(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [PY, "manage.py", *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise BenchmarkError(
                f"manage.py {args[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}"
            )
        return done.stdout

    def shell(self, code: str, timeout: float = 300) -> Any:
        """Run ``code`` in ``manage.py shell``; it prints ``BENCH-JSON <json>`` as its answer."""
        out = self.manage("shell", "--no-imports", "-c", code, timeout=timeout)
        for line in reversed(out.splitlines()):
            if line.startswith("BENCH-JSON "):
                return json.loads(line[len("BENCH-JSON ") :])
        raise BenchmarkError(f"the shell snippet printed no answer:\n{out[-2000:]}")

    def spawn(
        self, name: str, argv: list[str], env: dict[str, str], signal_group: bool = True
    ) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()  # the child holds its own descriptor
        process.bench_name = name  # type: ignore[attr-defined]
        process.signal_group = signal_group  # type: ignore[attr-defined]
        self.processes.append(process)
        return process

    def start(self, *, worker: bool = True, wait: bool = True) -> None:
        """Database, migrations, gunicorn and (unless eager) a Celery worker. ``wait=False``
        returns while gunicorn still boots; call ``wait_ready()`` before the first request."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        if self.database_url and self.create_database:
            if not self.database_url.startswith(("postgresql://", "postgres://")):
                raise BenchmarkError("--database-url must be a postgresql:// URL")
            self._pg = PostgresDatabase(self.database_url)
            self._pg.create()
        if self.migrate:
            self.manage("migrate", "--noinput", "-v", "0", timeout=600)
        self.port = free_port()
        self.spawn(
            "gunicorn",
            [
                PY,
                "-m",
                "gunicorn",
                "optima_portal.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--worker-class",
                "gthread",
                "--threads",
                str(self.threads),
                "--log-level",
                "warning",
                "--preload",  # import the portal once, then fork the workers
                "--graceful-timeout",
                "5",
            ],
            self.env(),
            # The master stops its workers gracefully; signalling the group at once takes longer.
            signal_group=False,
        )
        if worker and not self.eager:
            self.spawn(
                "worker",
                [
                    PY,
                    "-m",
                    "celery",
                    "-A",
                    "optima_portal",
                    "worker",
                    "--pool=solo",
                    "--loglevel=WARNING",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                self.env(),
            )
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                status, _ = request("GET", self.url + "/healthz", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise BenchmarkError(f"the portal did not answer within {timeout:.0f} s")

    def check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None and not getattr(process, "signalled", False):
                name = process.bench_name  # type: ignore[attr-defined]
                raise BenchmarkError(
                    f"{name} exited with status {process.returncode}:\n"
                    f"{_tail(self.workdir / f'{name}.log')}"
                )

    def stop_named(self, *prefixes: str) -> None:
        chosen = [p for p in self.processes if p.bench_name.startswith(prefixes)]  # type: ignore[attr-defined]
        stop_processes(chosen)
        self.processes = [p for p in self.processes if p not in chosen]

    def stop(self) -> None:
        errors = []
        try:
            stop_processes(self.processes)
        except Exception as exc:  # still drop the database
            errors.append(exc)
        self.processes.clear()
        if self._pg is not None:
            try:
                self._pg.drop()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise BenchmarkError(f"cleanup failed: {errors}")

    def __enter__(self) -> Portal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def request(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, Any]:
    """One HTTP call; JSON in and out. Reuses ``conn`` (keep-alive) when given."""
    parts = urlsplit(url)
    own = conn is None
    if own:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Accept": "application/json", **(headers or {})}
    if data is not None:
        all_headers["Content-Type"] = "application/json"
    try:
        conn.request(method, parts.path or "/", body=data, headers=all_headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        if own:
            conn.close()
    content = None
    if raw and response.getheader("Content-Type", "").startswith("application/json"):
        content = json.loads(raw)
    return response.status, content


# =============================================================================================
# Part 2: end-to-end cohort_count across local node agents
# =============================================================================================

SETUP_RESEARCHER = """
import json
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm
from accounts.models import ApiToken, Membership, MembershipRole, Organisation, Role
from catalogue.models import Dataset
from catalogue.services import version_create
from governance.models import AccessRequest, Entitlement

with transaction.atomic():
    research = Organisation.objects.create(
        name="Benchmark Institute", slug="bench-research", country="BE", kind="research"
    )
    user = get_user_model().objects.create_user("bench-researcher", "bench@example.org")
    membership = Membership.objects.create(user=user, organisation=research)
    MembershipRole.objects.create(membership=membership, name=Role.RESEARCHER)
    # What an approved access request leaves behind: a request and active entitlements, read by
    # governance.selectors.missing_entitlements when the analysis starts.
    access = AccessRequest.objects.create(
        applicant=user, organisation=research, project_title="Federated benchmark"
    )
    datasets = {}
    for i in range(1, NODES + 1):
        org = Organisation.objects.create(
            name=f"Benchmark Hospital {i}", slug=f"bench-hospital-{i}", country="DE",
            kind="hospital",
        )
        dataset = Dataset.objects.create(
            publisher=org, title=f"Benchmark OMOP cohort {i}",
            description="Synthetic OMOP CDM for the federated benchmark.",
            access_modes=["federated_analytics"],
        )
        # Analyses name published datasets only (federation.selectors.analysis_datasets_by_ids).
        version = version_create(dataset=dataset, user=None, notes="")
        Dataset.objects.filter(pk=dataset.pk).update(current_version=version, status="published")
        Entitlement.objects.create(
            holder=user, dataset=dataset, access_mode="federated_analytics",
            ends_at=timezone.now() + timedelta(days=1), request=access,
        )
        assign_perm("catalogue.run_federated_analysis", user, dataset)  # as governance keeps it
        datasets[org.slug] = dataset.pk
    _, raw = ApiToken.issue(user=user, name="federated benchmark")
print("BENCH-JSON " + json.dumps({"token": raw, "datasets": datasets}))
"""

SET_POLL_INTERVAL = """
import json
from federation.models import Node
count = Node.objects.filter(name__startswith="bench-omop-").update(poll_interval_seconds=INTERVAL)
print("BENCH-JSON " + json.dumps({"nodes": count}))
"""


def _enrol(portal: Portal, slug: str, name: str, dataset_id: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            PY,
            "manage.py",
            "node_enrol",
            "--org",
            slug,
            "--name",
            name,
            "--datasets",
            str(dataset_id),
        ],
        cwd=ROOT,
        env=portal.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def bench_end_to_end(
    portal: Portal,
    *,
    nodes: int = 4,
    repeats: int = 5,
    poll_interval: float = 1.0,
    timeout: float = 60,
    seed: int = 7,
    warmup_runs: int = 1,
) -> dict[str, Any]:
    """Agents on small synthetic CDMs; time POST /api/analyses/ until it reads completed."""
    from optima_node.db import connect
    from optima_node.synth import synthesise

    load = machine_load()
    sites = [E2E_SITES[i % len(E2E_SITES)] for i in range(nodes)]
    setup = portal.shell(SETUP_RESEARCHER.replace("NODES", str(nodes)))
    token, datasets = setup["token"], setup["datasets"]
    enrolling = {
        slug: _enrol(portal, slug, f"bench-omop-{i}", dataset_id)
        for i, (slug, dataset_id) in enumerate(datasets.items(), start=1)
    }
    urls = []
    for i, (synth_seed, persons) in enumerate(sites, start=1):  # while the nodes enrol
        path = portal.workdir / f"site{i}.sqlite3"
        db = connect(f"sqlite:///{path}")
        try:
            synthesise(db, persons, synth_seed, CANCERS, replace=True)
        finally:
            db.close()
        urls.append(f"sqlite:///{path}")
    tokens = []
    for slug, process in enrolling.items():
        out, err = process.communicate(timeout=120)
        if process.returncode != 0:
            raise BenchmarkError(f"node_enrol --org {slug} failed:\n{err[-2000:]}")
        tokens.append(out.strip().splitlines()[-1])
    portal.shell(SET_POLL_INTERVAL.replace("INTERVAL", repr(float(poll_interval))))
    portal.wait_ready()  # before the agents: they would back off for seconds otherwise
    agent_env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"NODE_TOKEN_FILE", "POLICY_FILE", "CDM_SCHEMA", "PYTEST_CURRENT_TEST"}
    }
    for i, (node_token, url) in enumerate(zip(tokens, urls, strict=True), start=1):
        portal.spawn(
            f"agent{i}",
            [PY, "-m", "optima_node.cli", "run"],
            {
                **agent_env,
                "PORTAL_URL": portal.url,
                "NODE_TOKEN": node_token,
                "OMOP_DATABASE_URL": url,
                "LEDGER_FILE": str(portal.workdir / f"ledger{i}.sqlite3"),
                "POLL_INTERVAL": str(poll_interval),
                "PYTHONUNBUFFERED": "1",
            },
        )

    headers = {"Authorization": f"Token {token}"}
    body = {
        "type": "cohort_count",
        "version": 1,
        "datasets": list(datasets.values()),
        "params": {"cohort": CANCER_COHORT, "stratify_by": ["sex"]},
    }
    conn = http.client.HTTPConnection("127.0.0.1", portal.port, timeout=10)

    def one() -> tuple[float, dict]:
        started = time.perf_counter()
        status, created = request("POST", portal.url + "/api/analyses/", body, headers, conn=conn)
        if status != 201:
            raise BenchmarkError(f"POST /api/analyses/ answered {status}: {created}")
        detail_url = f"{portal.url}/api/analyses/{created['id']}/"
        deadline = started + timeout
        while time.perf_counter() < deadline:
            status, detail = request("GET", detail_url, headers=headers, conn=conn)
            if status != 200:
                raise BenchmarkError(f"GET {detail_url} answered {status}: {detail}")
            if detail["status"] != "running":
                elapsed = time.perf_counter() - started
                if detail["status"] != "completed":
                    raise BenchmarkError(f"the analysis ended {detail['status']}: {detail}")
                return elapsed, detail
            portal.check_alive()
            time.sleep(0.05)
        raise BenchmarkError(f"the cohort_count did not complete within {timeout:.0f} s")

    try:
        # Warm-up (not timed): the agents' first heartbeats, gunicorn workers, the worker.
        for _ in range(warmup_runs):
            one()
        rng = random.Random(seed)
        times = []
        for _ in range(repeats):
            # Start at a random phase of the agents' poll cycle, not right after they polled.
            time.sleep(rng.uniform(0, poll_interval))
            elapsed, detail = one()
            times.append(elapsed)
    finally:
        conn.close()
        # The agents would poll during the next figure. The worker's warm shutdown takes a few
        # seconds: it is asked now and waited for when the portal stops.
        portal.stop_named("agent")
        signal_processes([p for p in portal.processes if p.bench_name == "worker"])  # type: ignore[attr-defined]
    return {
        "nodes": nodes,
        "persons": [p for _, p in sites],
        "poll_interval": poll_interval,
        "orchestration": (
            "CELERY_TASK_ALWAYS_EAGER=1 in the portal process"
            if portal.eager
            else f"a real Celery worker (solo pool) on the {(portal.broker_url or 'filesystem://').split(':')[0]} broker"
        ),
        "database": portal.vendor,
        "times": times,
        "median": median(times),
        "max": max(times),
        "total": detail["result"]["total"],
        "warmup_runs": warmup_runs,
        "load": load,
    }


def print_end_to_end(r: dict[str, Any]) -> bool:
    print(
        f"\n== 2. End-to-end cohort_count across {r['nodes']} local nodes "
        f"(poll interval {r['poll_interval']:g} s; {r['load']})"
    )
    print(
        f"portal: gunicorn, {r['database']} database; orchestration: {r['orchestration']}; "
        f"agents: optima-node run on synthetic SQLite CDMs of {', '.join(f'{p:,}' for p in r['persons'])} persons"
    )
    print(
        "timed: POST /api/analyses/ until GET /api/analyses/{id}/ reads completed "
        f"(polled every 50 ms), after {r['warmup_runs']} untimed warm-up analysis"
    )
    print(
        "runs: " + ", ".join(f"{t:.2f} s" for t in r["times"]) + f" (pooled total {r['total']:,})"
    )
    met = r["max"] <= TARGET_E2E_SECONDS
    print(
        f"median {r['median']:.2f} s, max {r['max']:.2f} s "
        f"(target <= {TARGET_E2E_SECONDS:g} s, judged on the max): {verdict(met)}"
    )
    return met


# =============================================================================================
# Part 3: the claim endpoint under a simulated fleet
# =============================================================================================

ENROL_FLEET = """
import json
from django.db import transaction
from django.utils import timezone
from accounts.models import Organisation
from federation.models import Liveness, Node, NodeStatus
from optima_node import __version__
from optima_node.schemas import CAPABILITIES

now = timezone.now()
capabilities = [{"type": t, "version": v} for t, v in CAPABILITIES]
policy = {"require_approval": False, "review_before_release": False, "min_cell_count": 5,
          "allowed_types": [t for t, _ in CAPABILITIES], "federated_learning": False}
with transaction.atomic():
    org = Organisation.objects.create(
        name="Benchmark fleet", slug="bench-fleet", country="DE", kind="hospital"
    )
    nodes, tokens = [], []
    for i in range(FLEET):
        node = Node(
            organisation=org, name=f"fleet-{i:05d}", status=NodeStatus.APPROVED,
            poll_interval_seconds=INTERVAL, approved_at=now, agent_version=__version__,
            capabilities=capabilities, cdm_version="5.4", vocabulary_version="bench",
            dialect="sqlite", person_count=1000, policy=policy, first_seen_at=now,
            last_seen_at=now, last_liveness=Liveness.ONLINE,
        )
        tokens.append(node.issue_token())
        nodes.append(node)
    Node.objects.bulk_create(nodes, batch_size=500)
with open(TOKENS_PATH, "w") as out:
    json.dump(tokens, out)
print("BENCH-JSON " + json.dumps({"nodes": len(nodes)}))
"""


@dataclass
class Sample:
    scheduled: float
    sent: float
    done: float
    status: int  # 0: a network error
    retried: bool = False  # sent again on a fresh connection after a stale keep-alive one


STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


def drive_claims(
    port: int,
    tokens: Sequence[str],
    *,
    rate: float,
    duration: float,
    warmup: float,
    concurrency: int,
    timeout: float = 10,
) -> tuple[list[Sample], int]:
    """Open-loop load: request i is due at t0 + i/rate, for node i mod len(tokens).

    Returns the samples after the warm-up and the number of requests sent in all."""
    total = int((warmup + duration) * rate)
    lock = threading.Lock()
    counter = iter(range(total))
    samples: list[Sample] = []
    t0 = time.perf_counter() + 0.2
    stop_at = t0 + warmup + duration + 30  # hard bound even if the server stalls

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        local: list[Sample] = []
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    break
                due = t0 + i / rate
                now = time.perf_counter()
                if now > stop_at:
                    break
                if due > now:
                    time.sleep(due - now)
                sent = time.perf_counter()
                headers = {
                    "Authorization": f"Node {tokens[i % len(tokens)]}",
                    "Content-Length": "0",
                }
                status, retried = 0, False
                for attempt in (1, 2):
                    reused = conn.sock is not None
                    try:
                        conn.request("POST", "/api/node/runs/claim/", headers=headers)
                        response = conn.getresponse()
                        response.read()
                        status = response.status
                        break
                    except STALE_CONNECTION:
                        # The server closed an idle keep-alive connection: reconnect once, as
                        # any HTTP client library does. Anything else counts as an error.
                        conn.close()
                        if attempt == 1 and reused:
                            retried = True
                            continue
                        break
                    except (OSError, http.client.HTTPException):
                        conn.close()
                        break
                local.append(Sample(due, sent, time.perf_counter(), status, retried))
        finally:
            conn.close()
            with lock:
                samples.extend(local)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, stop_at - time.perf_counter()) + timeout + 5)
    measured = [s for s in samples if s.scheduled >= t0 + warmup]
    return sorted(measured, key=lambda s: s.scheduled), len(samples)


def summarise_claims(samples: Sequence[Sample], rate: float) -> dict[str, Any]:
    if not samples:
        raise BenchmarkError("no claim request was measured")
    ok = [s for s in samples if s.status in (200, 204)]
    window = max(s.done for s in samples) - min(s.scheduled for s in samples)
    service = [(s.done - s.sent) * 1000 for s in samples]
    # From when the request was due: includes waiting for a free client connection when the
    # server falls behind, so a slow server cannot hide behind a slower request rate.
    from_due = [(s.done - s.scheduled) * 1000 for s in samples]
    statuses: dict[str, int] = {}
    for s in samples:
        statuses[str(s.status or "network error")] = (
            statuses.get(str(s.status or "network error"), 0) + 1
        )
    return {
        "requests": len(samples),
        "offered_rate": rate,
        "achieved_rate": len(ok) / window if window > 0 else 0.0,
        "error_rate": 1 - len(ok) / len(samples),
        "statuses": statuses,
        "service": {q: percentile(service, q) for q in (50, 95, 99)},
        "from_due": {q: percentile(from_due, q) for q in (50, 95, 99)},
        "max_ms": max(from_due),
        "reconnects": sum(s.retried for s in samples),
    }


def bench_poll(
    portal: Portal,
    *,
    fleet: int = 1000,
    interval: float = 5.0,
    duration: float = 20.0,
    warmup: float = 2.0,
    concurrency: int = 32,
) -> dict[str, Any]:
    load = machine_load()
    tokens_path = portal.workdir / "fleet-tokens.json"
    portal.shell(
        ENROL_FLEET.replace("FLEET", str(fleet))
        .replace("INTERVAL", repr(float(interval)))
        .replace("TOKENS_PATH", repr(str(tokens_path)))
    )
    tokens = json.loads(tokens_path.read_text())
    portal.wait_ready()
    rate = fleet / interval
    server = next(p for p in portal.processes if p.bench_name == "gunicorn")  # type: ignore[attr-defined]
    server_before = tree_cpu_seconds(server.pid)
    client_before = time.process_time()
    wall_before = time.perf_counter()
    samples, sent = drive_claims(
        portal.port,
        tokens,
        rate=rate,
        duration=duration,
        warmup=warmup,
        concurrency=concurrency,
    )
    wall = time.perf_counter() - wall_before
    client_cpu = time.process_time() - client_before
    server_after = tree_cpu_seconds(server.pid)
    portal.check_alive()
    server_cpu = server_after - server_before if None not in (server_before, server_after) else None
    return {
        "fleet": fleet,
        "interval": interval,
        "duration": duration,
        "warmup": warmup,
        "concurrency": concurrency,
        "workers": portal.workers,
        "threads": portal.threads,
        "database": portal.vendor,
        "cpus": os.cpu_count(),
        "load": load,
        "client_cpu_share": client_cpu / wall,
        "server_cpu_share": None if server_cpu is None else server_cpu / wall,
        "server_cpu_seconds": server_cpu,
        "sent": sent,
        **summarise_claims(samples, rate),
    }


def print_poll(r: dict[str, Any]) -> bool:
    print(
        f"\n== 3. POST /api/node/runs/claim/ under {r['fleet']:,} simulated nodes polling every "
        f"{r['interval']:g} s ({r['load']})"
    )
    print(
        f"gunicorn {r['workers']} gthread workers x {r['threads']} threads, {r['database']} database; "
        f"{r['concurrency']} keep-alive client connections, open-loop schedule, "
        f"{r['duration']:g} s measured after {r['warmup']:g} s warm-up; no runs waiting (answers 204)"
    )
    print(
        f"requests {r['requests']:,}; offered {r['offered_rate']:.0f}/s, achieved "
        f"{r['achieved_rate']:.1f}/s; errors {r['error_rate'] * 100:.2f}% "
        f"(statuses {', '.join(f'{k}: {v}' for k, v in sorted(r['statuses'].items()))}; "
        f"{r['reconnects']} resent after the server closed an idle keep-alive connection)"
    )
    if r["server_cpu_share"] is not None:
        print(
            f"CPU while loading ({r['cpus']} cores): gunicorn {r['server_cpu_share'] * 100:.0f}% "
            f"of a core, this load generator {r['client_cpu_share'] * 100:.0f}%; gunicorn CPU "
            f"per request (warm-up included) {r['server_cpu_seconds'] / r['sent'] * 1000:.1f} ms"
        )
    s, d = r["service"], r["from_due"]
    print(f"latency from send: p50 {s[50]:.1f} ms, p95 {s[95]:.1f} ms, p99 {s[99]:.1f} ms")
    print(
        f"latency from the scheduled time (incl. client queueing): p50 {d[50]:.1f} ms, "
        f"p95 {d[95]:.1f} ms, p99 {d[99]:.1f} ms, max {r['max_ms']:.1f} ms"
    )
    met = d[99] < TARGET_P99_MS and r["error_rate"] == 0
    print(
        f"p99 {d[99]:.1f} ms (target < {TARGET_P99_MS:g} ms, judged from the scheduled time, "
        f"with no errors): {verdict(met)}"
    )
    return met


# =============================================================================================


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", default="1,2,3", help="which figures, e.g. 1 or 2,3")
    group = parser.add_argument_group("1. node round")
    group.add_argument("--persons", type=int, default=1_000_000)
    group.add_argument("--repeats", type=int, default=7, help="timed repetitions per figure")
    group = parser.add_argument_group("portal (2 and 3)")
    group.add_argument(
        "--database-url",
        help="postgresql://user@127.0.0.1:5432/NAME: created and dropped by this run "
        "(default: a temporary SQLite file)",
    )
    group.add_argument(
        "--broker-url",
        help="Celery broker (default filesystem:// in the temporary directory); a shared Redis "
        "database must not be consumed by any other worker",
    )
    group.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    group.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker")
    group = parser.add_argument_group("2. end to end")
    group.add_argument("--e2e-nodes", type=int, default=4)
    group.add_argument("--e2e-repeats", type=int, default=5)
    group.add_argument("--poll-interval", type=float, default=1.0, help="agents' poll seconds")
    group.add_argument(
        "--eager", action="store_true", help="run Celery tasks in the portal, no worker"
    )
    group = parser.add_argument_group("3. poll endpoint")
    group.add_argument("--nodes", type=int, default=1000, help="simulated nodes")
    group.add_argument("--node-interval", type=float, default=5.0, help="their poll seconds")
    group.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    group.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    group.add_argument("--concurrency", type=int, default=32, help="client connections")
    args = parser.parse_args(argv)
    try:
        args.parts = {int(p) for p in args.parts.split(",") if p.strip()}
    except ValueError:
        parser.error("--parts takes numbers 1, 2 and 3")
    limits = [
        (not args.parts or not args.parts <= {1, 2, 3}, "--parts takes numbers 1, 2 and 3"),
        (args.persons < 100, "--persons must be at least 100"),
        (not 1 <= args.repeats <= 100, "--repeats must be 1..100"),
        (not 1 <= args.e2e_nodes <= 16, "--e2e-nodes must be 1..16"),
        (not 1 <= args.e2e_repeats <= 100, "--e2e-repeats must be 1..100"),
        (not 0.1 <= args.poll_interval <= 30, "--poll-interval must be 0.1..30"),
        (not 1 <= args.nodes <= 100_000, "--nodes must be 1..100000"),
        (not 0.1 <= args.node_interval <= 300, "--node-interval must be 0.1..300"),
        (not 0.5 <= args.duration <= 600, "--duration must be 0.5..600"),
        (not 0 <= args.warmup <= 60, "--warmup must be 0..60"),
        (not 1 <= args.concurrency <= 512, "--concurrency must be 1..512"),
        (not 1 <= args.workers <= 32, "--workers must be 1..32"),
        (not 1 <= args.threads <= 32, "--threads must be 1..32"),
    ]
    for bad, message in limits:
        if bad:
            parser.error(message)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    results: dict[str, Any] = {}
    workdir = Path(tempfile.mkdtemp(prefix="optima-fed-bench-"))
    try:
        if 1 in args.parts:
            results["node_round"] = bench_node_round(args.persons, workdir, repeats=args.repeats)
            print_node_round(results["node_round"])
        if args.parts & {2, 3}:
            with Portal(
                workdir / "portal",
                database_url=args.database_url,
                broker_url=args.broker_url,
                eager=args.eager,
                workers=args.workers,
                threads=args.threads,
            ) as portal:
                portal.workdir.mkdir(parents=True, exist_ok=True)
                portal.start(worker=2 in args.parts, wait=False)  # boots during the setup
                if 2 in args.parts:
                    results["end_to_end"] = bench_end_to_end(
                        portal,
                        nodes=args.e2e_nodes,
                        repeats=args.e2e_repeats,
                        poll_interval=args.poll_interval,
                    )
                    print_end_to_end(results["end_to_end"])
                if 3 in args.parts:
                    results["poll"] = bench_poll(
                        portal,
                        fleet=args.nodes,
                        interval=args.node_interval,
                        duration=args.duration,
                        warmup=args.warmup,
                        concurrency=args.concurrency,
                    )
                    print_poll(results["poll"])
    except (BenchmarkError, subprocess.TimeoutExpired) as exc:
        print(f"\nbenchmark error: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
