"""A throwaway portal for the benchmarks: gunicorn, a Celery worker, its database, and HTTP."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .common import PY, ROOT, BenchmarkError


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
