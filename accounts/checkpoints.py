"""Signed checkpoints of the audit chain, kept outside the database.

A checkpoint is one small JSON file ``{format, seq, head, created_at, signature}`` naming the
chain's newest event and its hash at that time, signed with HMAC-SHA256 under a key derived from
``AUDIT_HMAC_KEY``. Files are only ever created (never rewritten) in ``AUDIT_CHECKPOINT_DIR``,
which in production is a place the database role cannot write (a WORM bucket mount, another host):
whoever rewrites or truncates history before a checkpoint, even with the key, is caught by
``manage.py audit_verify`` comparing the chain with every checkpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from . import audit
from .models import AuditChainHead

FORMAT = 1
_FIELDS = ("format", "seq", "head", "created_at")


class CheckpointRefused(Exception):
    """The chain does not verify against the newest checkpoint: no new checkpoint is written."""


@dataclass(frozen=True)
class Checkpoint:
    name: str
    seq: int
    head: str
    created_at: str

    def __str__(self) -> str:
        return f"{self.name} (#{self.seq}, {self.created_at})"


def directory() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_DIR)


def _signature(body: dict) -> str:
    # A key of its own (derived), so a checkpoint signature can never pass as an event hash.
    key = hmac.new(audit.chain_key(), b"optima audit checkpoint v1", hashlib.sha256).digest()
    return hmac.new(key, audit.canonical_json(body).encode(), hashlib.sha256).hexdigest()


def load(where: Path | None = None) -> tuple[list[Checkpoint], list[str]]:
    """Every checkpoint in ``where``, by sequence number, and a problem for each bad file."""
    where = where or directory()
    checkpoints: list[Checkpoint] = []
    problems: list[str] = []
    if not where.is_dir():
        return checkpoints, problems
    for path in sorted(where.glob("*.json")):
        try:
            data = json.loads(path.read_text())
            body = {name: data[name] for name in _FIELDS}
            signature = str(data["signature"])
            seq, head = int(body["seq"]), str(body["head"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"checkpoint {path.name} is unreadable ({exc.__class__.__name__})")
            continue
        if not hmac.compare_digest(signature, _signature(body)):
            problems.append(
                f"checkpoint {path.name}: the signature does not verify "
                "(forged, altered, or signed with another key)"
            )
            continue
        checkpoints.append(Checkpoint(path.name, seq, head, str(body["created_at"])))
    checkpoints.sort(key=lambda c: (c.seq, c.created_at))
    return checkpoints, problems


def compare(report: audit.ChainReport, checkpoints: list[Checkpoint]) -> list[str]:
    """Problems between a verified chain (``remember`` = the checkpoints' seqs) and checkpoints."""
    problems = []
    for checkpoint in checkpoints:
        if checkpoint.seq > report.count:
            if report.ok:
                problems.append(
                    f"checkpoint {checkpoint} names event #{checkpoint.seq} but the chain ends at "
                    f"#{report.count}: events after #{report.count} were removed"
                )
            continue  # the chain broke before it; that break is reported already
        if checkpoint.seq and not hmac.compare_digest(
            report.hashes.get(checkpoint.seq, ""), checkpoint.head
        ):
            problems.append(
                f"event #{checkpoint.seq} does not match checkpoint {checkpoint}: "
                "the history up to it was rewritten"
            )
    return problems


def check(*, upto: int | None = None) -> tuple[audit.ChainReport, list[Checkpoint], list[str]]:
    """Verify the keyed chain and compare it with every checkpoint: (report, checkpoints, problems)."""
    found, problems = load()
    report = audit.verify_chain(upto=upto, remember={c.seq for c in found})
    return report, found, problems + compare(report, found)


def write() -> Checkpoint | None:
    """Verify the whole chain against every checkpoint, then sign and store a new one.

    Returns ``None`` when nothing was appended since the newest checkpoint. Raises
    :class:`CheckpointRefused` naming each problem when anything does not verify (a checkpoint
    must never vouch for a rewritten history), so the periodic task doubles as an alarm.
    """
    head = AuditChainHead.objects.filter(pk=1).values_list("seq", "hash").first()
    head_seq, head_hash = head or (0, audit.GENESIS_HASH)
    report, found, problems = check(upto=head_seq)
    if not report.ok:
        problems.insert(0, f"audit chain broken at event #{report.broken_seq}: {report.reason}")
    elif not hmac.compare_digest(report.head_hash, head_hash):
        problems.append(f"the chain head row does not match event #{head_seq}")
    if problems:
        raise CheckpointRefused("; ".join(problems))
    if head_seq == 0 or (found and found[-1].seq == head_seq):
        return None
    now = timezone.now().astimezone(UTC)
    body = {
        "format": FORMAT,
        "seq": head_seq,
        "head": head_hash,
        "created_at": now.isoformat(timespec="seconds"),
    }
    body["signature"] = _signature(body)
    where = directory()
    where.mkdir(parents=True, exist_ok=True)
    name = f"{head_seq:012d}-{now:%Y%m%dT%H%M%S%fZ}.json"
    # "x": create only; a checkpoint is never overwritten.
    with open(where / name, "x", encoding="utf-8") as handle:
        handle.write(json.dumps(body, indent=1) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return Checkpoint(name, head_seq, head_hash, body["created_at"])
