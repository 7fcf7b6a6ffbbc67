"""`make run`: migrate, seed the demo, then run the portal, a Celery worker with beat and the demo
node agents in the foreground. Ctrl-C stops every process it started.

``PORTAL_BASE_URL`` follows ``PORT`` unless it is set, so e-mail links and DCAT URIs point at the
port served. The seeded demo's e-mails are discarded (``accounts.demo.seed_mail_discarded``), so
the ready banner with the URL and logins is the last thing printed.

Each app can add long-running demo processes with ``processes() -> list[(name, argv, env)]`` in its
``demo.py`` (the federation app starts its node agents that way).
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def _manage(*args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, check=True)


def _extra_processes(port: int) -> list[tuple[str, list[str], dict]]:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "optima_portal.settings")
    django.setup()
    extra = []
    for label in ("catalogue", "cds", "feedback", "governance", "federation", "central"):
        try:
            module = importlib.import_module(f"{label}.demo")
        except ModuleNotFoundError:
            continue
        if hasattr(module, "processes"):
            extra.extend(module.processes(portal_url=f"http://127.0.0.1:{port}"))
    return extra


def _wait_ready(url: str, timeout: float = 90) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (local URL)
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.5)
    return False


def _environment(port: int, environ: dict[str, str]) -> dict[str, str]:
    """What ``make run`` adds to the environment of everything it starts: links in e-mails and
    DCAT URIs point at the port it serves, unless ``PORTAL_BASE_URL`` is set (production)."""
    if environ.get("PORTAL_BASE_URL"):
        return {}
    return {"PORTAL_BASE_URL": f"http://127.0.0.1:{port}"}


def banner(*, url: str, ready: bool, started: list[str]) -> str:
    """The last thing ``make run`` prints: where the portal is, who can log in, how to stop."""
    from accounts.demo import DEMO_PASSWORD, PERSONA_LOGINS
    from accounts.otp import DEMO_TOTP_BASE32

    lines = [
        "",
        "=" * 72,
        f"OPTIMA Portal {'is ready' if ready else 'is starting (not ready yet)'} at {url}",
        f"API docs: {url}api/docs/   readiness: {url}readyz",
        f"Demo logins (password for all: {DEMO_PASSWORD}):",
        *(f"  {persona:<36} {username}" for persona, username in PERSONA_LOGINS),
        "admin and dac.* also need a two-factor code: add the demo secret "
        f"{DEMO_TOTP_BASE32} to an authenticator app, or run "
        "`.venv/bin/python manage.py demo_totp admin`.",
        "Started: " + ", ".join(started) + ". Press Ctrl-C to stop them all.",
        "=" * 72,
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    os.environ.update(_environment(port, dict(os.environ)))
    _manage("migrate", "--noinput", "-v", "0")
    _manage("seed_demo", "--quiet-logins")
    procs: list[tuple[str, subprocess.Popen]] = []

    def start(name: str, argv: list[str], env: dict | None = None) -> None:
        procs.append(
            (
                name,
                subprocess.Popen(
                    argv, cwd=ROOT, env={**os.environ, **(env or {})}, start_new_session=True
                ),
            )
        )

    start("web", [PY, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"])
    start(
        "worker",
        [
            PY,
            "-m",
            "celery",
            "-A",
            "optima_portal",
            "worker",
            "--beat",
            "--loglevel=WARNING",
            "--concurrency=2",
            "--schedule",
            str(ROOT / "var" / "celerybeat-schedule"),
        ],
    )
    for name, argv, env in _extra_processes(port):
        start(name, argv, env)

    def stop(*_):
        for _, p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for _, p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    url = f"http://127.0.0.1:{port}/"
    try:
        ready = _wait_ready(url + "readyz")
        print(banner(url=url, ready=ready, started=[name for name, _ in procs]), flush=True)
        while True:
            for name, p in procs:
                if p.poll() is not None:
                    print(
                        f"{name} exited with status {p.returncode}; stopping everything.",
                        file=sys.stderr,
                    )
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nStopping…")
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
