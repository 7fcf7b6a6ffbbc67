"""A thin, bounded wrapper around FLARE's admin API (``nvflare.fuel.flare_api``).

The portal holds an admin startup kit (setting ``FLARE_ADMIN_STARTUP_KIT``, user
``FLARE_ADMIN_USER``); each call opens a secure session, does one thing and closes it, so that a
worker never keeps a half-dead connection. Connection and command timeouts are bounded.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import FlareError, FlareUnavailable, require_nvflare


@dataclass(frozen=True)
class AdminKit:
    username: str
    startup_kit: str
    connect_timeout: float = 15.0
    command_timeout: float = 30.0


# One admin session per process and kit, reused for up to SESSION_MAX_AGE seconds: logging in
# (mTLS plus FLARE's challenge round trip) costs about a second, a command a few milliseconds.
SESSION_MAX_AGE = 300.0
_sessions: dict[AdminKit, tuple[Any, float]] = {}
_lock = threading.Lock()


def _open(kit: AdminKit) -> Any:
    from nvflare.fuel.flare_api.flare_api import new_secure_session

    if not Path(kit.startup_kit).is_dir():
        raise FlareUnavailable(f"FLARE admin startup kit not found: {kit.startup_kit}")
    try:
        return new_secure_session(
            kit.username,
            kit.startup_kit,
            timeout=kit.connect_timeout,
            command_timeout=kit.command_timeout,
        )
    except Exception as exc:
        raise FlareUnavailable(f"cannot connect to the FLARE server: {exc}") from exc


def _close(sess: Any) -> None:
    with contextlib.suppress(Exception):  # closing must not mask the result
        sess.close()


def close_all() -> None:
    with _lock:
        for sess, _ in _sessions.values():
            _close(sess)
        _sessions.clear()


@contextmanager
def session(kit: AdminKit) -> Iterator[Any]:
    """A live admin session; on any error inside the block it is closed and forgotten, so the
    next call logs in afresh. Calls are serialised per process (the session is not thread-safe)."""
    require_nvflare()
    with _lock:
        cached = _sessions.pop(kit, None)
        if cached and time.monotonic() - cached[1] > SESSION_MAX_AGE:
            _close(cached[0])
            cached = None
        sess, opened = cached if cached else (_open(kit), time.monotonic())
        try:
            yield sess
        except BaseException:
            _close(sess)
            raise
        _sessions[kit] = (sess, opened)


def submit(kit: AdminKit, job_folder: str | Path, token: str | None = None) -> str:
    """Submit the job folder; with ``token`` a retried submission returns the same FLARE job."""
    with session(kit) as sess:
        try:
            return str(sess.submit_job(str(job_folder), submit_token=token))
        except Exception as exc:
            raise FlareError(f"FLARE refused the job: {exc}") from exc


def job_meta(kit: AdminKit, job_id: str) -> dict[str, Any]:
    with session(kit) as sess:
        try:
            return dict(sess.get_job_meta(job_id))
        except Exception as exc:
            raise FlareError(f"cannot read job {job_id}: {exc}") from exc


def poll(kit: AdminKit, job_id: str, *, with_report: bool = True) -> tuple[dict, dict | None]:
    """Job meta and, while it runs, the controller's report, in one session."""
    with session(kit) as sess:
        try:
            meta = dict(sess.get_job_meta(job_id))
        except Exception as exc:
            raise FlareError(f"cannot read job {job_id}: {exc}") from exc
        report = None
        if with_report and str(meta.get("status", "")).upper() in {"RUNNING", "DISPATCHED"}:
            try:
                report = extract_report(sess.show_stats(job_id, "server"))
            except Exception:
                report = None
    return meta, report


def server_report(kit: AdminKit, job_id: str) -> dict[str, Any] | None:
    """The OptimaFedAvg controller's report (rounds, per-site metrics) while the job runs."""
    with session(kit) as sess:
        try:
            stats = sess.show_stats(job_id, "server")
        except Exception:
            return None
    return extract_report(stats)


def extract_report(stats: Any) -> dict[str, Any] | None:
    """Find ``{"optima": {"report": "<json>"}}`` anywhere in a show_stats answer."""
    if isinstance(stats, dict):
        optima = stats.get("optima")
        if isinstance(optima, dict) and isinstance(optima.get("report"), str):
            try:
                return json.loads(optima["report"])
            except ValueError:
                return None
        for value in stats.values():
            found = extract_report(value)
            if found is not None:
                return found
    return None


def abort(kit: AdminKit, job_id: str) -> None:
    with session(kit) as sess:
        try:
            sess.abort_job(job_id)
        except Exception as exc:
            raise FlareError(f"cannot abort job {job_id}: {exc}") from exc


def download_result(kit: AdminKit, job_id: str, destination: str | Path) -> Path:
    """Download the job's result folder into ``destination`` (replaced)."""
    destination = Path(destination)
    with session(kit) as sess:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(sess.download_job_result(job_id, destination=tmp))
                if destination.exists():
                    shutil.rmtree(destination)
                shutil.copytree(path, destination)
        except Exception as exc:
            raise FlareError(f"cannot download the result of job {job_id}: {exc}") from exc
    return destination


def find_file(root: str | Path, name: str) -> Path | None:
    matches = sorted(Path(root).rglob(name))
    return matches[0] if matches else None
