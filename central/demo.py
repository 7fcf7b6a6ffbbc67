"""The demo's central node: ``seed()`` (run by ``manage.py seed_demo``) enrols it once and keeps
its credential in ``var/central-node/credential`` (0600); ``processes()`` has ``make run`` start
``optima-node central`` with it, so a central copy a demo steward uploads (several demo datasets
offer the access mode) is served as soon as its load completes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from django.conf import settings

from . import services
from .models import CentralNode

LIST_INTERVAL_SECONDS = "10"


def _paths() -> dict[str, Path]:
    base = Path(settings.VAR_DIR) / "central-node"
    return {"base": base, "credential": base / "credential", "state": base / "state"}


def seed(stdout=None) -> CentralNode:
    paths = _paths()
    if paths["credential"].exists():
        # Kept only while it still works against this database (var/ may hold another one's).
        node = CentralNode.authenticate(paths["credential"].read_text(encoding="utf-8").strip())
        if node is not None:
            return node
    node, raw = services.central_node_enrol(actor="seed_demo")
    paths["base"].mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(paths["credential"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(raw + "\n")
    if stdout is not None:
        stdout.write("Central node enrolled (credential in var/central-node/).")
    return node


def processes(portal_url: str) -> list[tuple[str, list[str], dict]]:
    """The central node's supervisor, once seeded (``make run`` starts and stops it)."""
    paths = _paths()
    if not paths["credential"].exists():
        return []
    env = {
        "PORTAL_URL": portal_url,
        "CENTRAL_NODE_TOKEN_FILE": str(paths["credential"]),
        "CENTRAL_STATE_DIR": str(paths["state"]),
        "CENTRAL_POLL_INTERVAL": LIST_INTERVAL_SECONDS,
    }
    if settings.CENTRAL_OMOP_DATABASE_URL:
        env["CENTRAL_OMOP_DATABASE_URL"] = settings.CENTRAL_OMOP_DATABASE_URL
    return [("central-node", [sys.executable, "-m", "optima_node.cli", "central"], env)]
