"""The shared live-network harness of the client tests (Python, R, the notebook).

``live_network`` (session-scoped) starts a real network the way ``make run`` does, but private to
the test session: a temporary directory with its own SQLite database, migrated and seeded with the
demo data (``manage.py seed_demo``), the portal served by ``manage.py runserver`` on a free port, a
Celery worker (with beat) on a filesystem broker inside that directory, and one ``optima-node run``
agent per demo hospital. It waits for the portal's /readyz and for every agent's heartbeat, yields a
:class:`LiveNetwork` and stops everything at the end. Nothing is shared with the test database of
pytest-django, so the client tests are slow checks that do not depend on it (``slow_check``).

When the start fails, or a test using the network fails, the tails of the processes' logs are
printed (the start) or attached to the test report (a section per process).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO_NODES = ("de-hospital", "fr-hospital", "nl-hospital", "se-hospital")
RESEARCHER = "researcher"
DEMO_PASSWORD = "optima-demo-2026"  # accounts.demo.DEMO_PASSWORD
# Environment of the developer or CI that must not leak into the private network.
NOT_INHERITED = (
    "DATABASE_URL",
    "TEST_DATABASE_NAME",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "CACHE_URL",
    "OPTIMA_VAR_DIR",
    "PORTAL_BASE_URL",
    "AUDIT_CHECKPOINT_DIR",
    "MEDIA_ROOT",
    "STATIC_ROOT",
    "PYTEST_CURRENT_TEST",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "PORT",
)
STARTUP_TIMEOUT = float(os.environ.get("OPTIMA_LIVE_NETWORK_TIMEOUT", "240"))


@dataclass
class LiveNetwork:
    """A running portal with its worker and demo node agents.

    ``url`` ends with ``/`` (``url + "api/"`` is the API root); ``token`` is an API token of the
    demo ``researcher``, who holds federated-analytics entitlements on the lung datasets
    ``lung_dataset_ids`` (and on some breast ones); ``unentitled_lung_dataset_ids`` are published
    lung datasets served by nodes on which the researcher holds no such entitlement. ``env`` is
    what a client process (an R session, a Jupyter kernel) needs: ``OPTIMA_URL``/``OPTIMA_TOKEN``.
    """

    url: str
    token: str
    directory: Path
    database_path: Path
    server_env: dict[str, str]
    lung_dataset_ids: list[int] = field(default_factory=list)
    unentitled_lung_dataset_ids: list[int] = field(default_factory=list)
    logs: dict[str, Path] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The environment of a client process: the current one plus OPTIMA_URL/OPTIMA_TOKEN."""
        return {**os.environ, "OPTIMA_URL": self.url, "OPTIMA_TOKEN": self.token}

    def api(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        """One JSON call to the portal's API as the researcher (or ``token``): (status, body)."""
        request = urllib.request.Request(
            self.url + "api/" + path.lstrip("/"),
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Token {token or self.token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def web_session(self, username: str = RESEARCHER, password: str = DEMO_PASSWORD):
        """A ``requests`` session logged in to the web UI as a demo user (the pages, the CSV
        downloads of results), to compare a client's result with what the web UI shows."""
        import requests

        session = requests.Session()
        login = self.url + "accounts/login/"
        session.get(login, timeout=30).raise_for_status()
        response = session.post(
            login,
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": login},
            timeout=30,
        )
        response.raise_for_status()
        if "sessionid" not in session.cookies:
            raise RuntimeError(f"{username} could not log in to the web UI")
        return session

    def manage(self, *args: str) -> str:
        """Run ``manage.py`` against the network's database; its standard output."""
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.server_env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def token_for(self, username: str) -> str:
        """A new API token of another demo user (the last line ``create_api_token`` prints)."""
        return self.manage("create_api_token", username).strip().splitlines()[-1]

    def log_tails(self, lines: int = 40) -> str:
        parts = []
        for name, path in self.logs.items():
            text = path.read_text(errors="replace").splitlines() if path.exists() else []
            parts.append(f"----- {name} ({path}) -----\n" + "\n".join(text[-lines:]))
        return "\n".join(parts)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _environment(directory: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env.update(
        OPTIMA_VAR_DIR=str(directory / "var"),
        DATABASE_URL=f"sqlite:///{directory / 'portal.sqlite3'}",
        PORTAL_BASE_URL=f"http://127.0.0.1:{port}",
        PYTHONUNBUFFERED="1",
        # The clients' tests send many polls a minute; the limits are tested elsewhere.
        API_USER_RATE="100000/min",
        API_ANON_RATE="100000/min",
        NODE_API_RATE="100000/min",
        AXES_ENABLED="0",
        LOG_LEVEL="WARNING",
    )
    return env


def _wait(condition, *, timeout: float, what: str, processes: dict[str, subprocess.Popen]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with status {process.returncode}")
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "readyz", timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


def _heartbeats(database: Path) -> int:
    """Approved demo nodes that have reported since their agent started (read from SQLite)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM federation_node "
            "WHERE status = 'approved' AND last_seen_at IS NOT NULL"
        ).fetchone()
    return count


def _lung_datasets(network: LiveNetwork) -> tuple[list[int], list[int]]:
    status, body = network.api("GET", "datasets/?indication=lung&per_page=100")
    if status != 200:
        raise RuntimeError(f"catalogue search answered {status}: {body}")
    lung = {d["id"] for d in body["results"] if "federated_analytics" in d["access_modes"]}
    status, entitlements = network.api("GET", "entitlements/?status=active")
    if status != 200:
        raise RuntimeError(f"entitlements answered {status}: {entitlements}")
    rows = entitlements["results"] if isinstance(entitlements, dict) else entitlements
    entitled = {
        e["dataset"]["id"] for e in rows if e["access_mode"] == "federated_analytics"
    } & lung
    return sorted(entitled), sorted(lung - entitled)


def _start(name: str, argv: list[str], env: dict, logs: dict[str, Path], directory: Path):
    logs[name] = directory / f"{name}.log"
    log = open(logs[name], "w")  # noqa: SIM115 (the child holds it; closed with the process)
    try:
        return subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        log.close()


def _stop_all(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


@pytest.fixture(scope="session")
def live_network(tmp_path_factory) -> Iterator[LiveNetwork]:
    directory = tmp_path_factory.mktemp("live-network")
    port = _free_port()
    env = _environment(directory, port)
    network = LiveNetwork(
        url=f"http://127.0.0.1:{port}/",
        token="",
        directory=directory,
        database_path=directory / "portal.sqlite3",
        server_env=env,
    )
    processes: dict[str, subprocess.Popen] = {}
    py = sys.executable
    try:
        network.manage("migrate", "--noinput", "-v", "0")
        network.manage("seed_demo", "--quiet-logins")
        network.token = network.token_for(RESEARCHER)
        processes["web"] = _start(
            "web",
            [py, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            env,
            network.logs,
            directory,
        )
        processes["worker"] = _start(
            "worker",
            [
                *(py, "-m", "celery", "-A", "optima_portal", "worker", "--beat"),
                *("--pool=solo", "--loglevel=INFO", "--without-gossip", "--without-mingle"),
                *("--schedule", str(directory / "celerybeat-schedule")),
            ],
            env,
            network.logs,
            directory,
        )
        _wait(
            lambda: _ready(network.url),
            timeout=STARTUP_TIMEOUT,
            what="the portal's /readyz",
            processes=processes,
        )
        nodes = directory / "var" / "nodes"
        for slug in DEMO_NODES:
            processes[f"node-{slug}"] = _start(
                f"node-{slug}",
                [py, "-m", "optima_node.cli", "run", "--config", str(nodes / f"{slug}.toml")],
                {
                    **env,
                    "PORTAL_URL": network.url.rstrip("/"),
                    "NODE_TOKEN_FILE": str(nodes / f"{slug}.token"),
                },
                network.logs,
                directory,
            )
        _wait(
            lambda: _heartbeats(network.database_path) >= len(DEMO_NODES),
            timeout=STARTUP_TIMEOUT,
            what=f"{len(DEMO_NODES)} node heartbeats",
            processes=processes,
        )
        network.lung_dataset_ids, network.unentitled_lung_dataset_ids = _lung_datasets(network)
        if not network.lung_dataset_ids:
            raise RuntimeError("the demo researcher holds no entitlement on a lung dataset")
    except BaseException:
        _stop_all(processes)
        sys.stderr.write(f"\nThe live network did not start.\n{network.log_tails()}\n")
        raise
    try:
        yield network
    finally:
        _stop_all(processes)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that used the live network carries the tails of the processes' logs."""
    outcome = yield
    report = outcome.get_result()
    network = item.funcargs.get("live_network") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(network, LiveNetwork):
        report.sections.append(("live network logs", network.log_tails()))
