"""The tamper-evident audit trail: a hash chain over canonical JSON.

Every governance or analysis state change calls :func:`record` inside the transaction that makes
the change, so the event and the change commit together or not at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from .models import AuditChainHead, AuditEvent, Organisation

GENESIS_HASH = "0" * 64


def canonical_json(data: Any) -> str:
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder
    )


def _normalise(payload: Any) -> Any:
    # Store exactly what is hashed: a JSON round trip turns dates, UUIDs and decimals into strings.
    return json.loads(canonical_json(payload or {}))


def event_digest(event: AuditEvent) -> str:
    body = {
        "seq": event.seq,
        "timestamp": event.timestamp.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor_repr": event.actor_repr,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "organisation_id": event.organisation_id,
        "payload": event.payload,
        "prev_hash": event.prev_hash,
    }
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def _object_ref(obj: models.Model | None) -> tuple[str, str]:
    if obj is None:
        return "", ""
    return obj._meta.label_lower, str(obj.pk)


def record(
    action: str,
    *,
    actor=None,
    obj: models.Model | None = None,
    organisation: Organisation | None = None,
    payload: dict | None = None,
    object_type: str = "",
    object_id: str = "",
) -> AuditEvent:
    """Append one event to the chain. Concurrent writers are serialised on the chain head row."""
    if obj is not None:
        object_type, object_id = _object_ref(obj)
    actor_obj = actor if getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        # The UPDATE takes a row lock on PostgreSQL and the write lock on SQLite before we read
        # the head, so no two writers can chain onto the same predecessor.
        AuditChainHead.objects.filter(pk=1).update(seq=models.F("seq"))
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
        event = AuditEvent(
            seq=head.seq + 1,
            timestamp=timezone.now(),
            actor=actor_obj,
            actor_repr=(
                actor_obj.get_username() if actor_obj else (str(actor) if actor else "system")
            )[:200],
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            organisation=organisation,
            payload=_normalise(payload),
            prev_hash=head.hash,
        )
        event.hash = event_digest(event)
        event.save()
        AuditChainHead.objects.filter(pk=1).update(seq=event.seq, hash=event.hash)
    return event


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    count: int
    broken_seq: int | None = None
    broken_id: int | None = None
    reason: str = ""


def _iter_chain(batch: int = 2000) -> Iterator[AuditEvent]:
    last = 0
    while True:
        rows = list(AuditEvent.objects.filter(seq__gt=last).order_by("seq")[:batch])
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify_chain() -> ChainReport:
    """Walk the chain in order; report the first event that was altered, inserted or removed."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    for event in _iter_chain():
        if event.seq != expected_seq:
            return ChainReport(
                False,
                count,
                event.seq,
                event.pk,
                f"sequence gap: expected #{expected_seq} (an event was deleted or inserted)",
            )
        if event.prev_hash != expected_prev:
            return ChainReport(
                False, count, event.seq, event.pk, "prev_hash does not match the previous event"
            )
        if event_digest(event) != event.hash:
            return ChainReport(
                False, count, event.seq, event.pk, "content does not match its hash (altered)"
            )
        expected_prev = event.hash
        expected_seq += 1
        count += 1
    head = AuditChainHead.objects.filter(pk=1).first()
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if head_seq != count or head_hash != expected_prev:
        return ChainReport(
            False,
            count,
            head_seq,
            None,
            f"chain head names #{head_seq} but the chain ends at #{count} (events removed at the end)",
        )
    return ChainReport(True, count)
