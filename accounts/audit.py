"""The tamper-evident audit trail: a keyed hash chain over canonical JSON.

Every governance or analysis state change calls :func:`record` inside the transaction that makes
the change, so the event and the change commit together or not at all. Each event's ``hash`` is
HMAC-SHA256 under ``settings.AUDIT_HMAC_KEY`` (kept outside the database) of the event and the
previous event's hash, so rewriting history needs the key as well as the database; signed
checkpoints outside the database (``accounts.checkpoints``) catch even a key holder rewriting or
truncating what they cover.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
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


def chain_key() -> bytes:
    return settings.AUDIT_HMAC_KEY.encode()


def event_body(event: AuditEvent) -> bytes:
    """What the chain authenticates: every field of the event and the previous event's hash."""
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
    return canonical_json(body).encode()


def event_digest(event: AuditEvent, *, key: bytes | None = None) -> str:
    """HMAC-SHA256 of :func:`event_body` under the chain key."""
    return hmac.new(
        chain_key() if key is None else key, event_body(event), hashlib.sha256
    ).hexdigest()


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


def take_write_lock() -> None:
    """On SQLite, start a write transaction by writing: take the audit chain head now.

    A SQLite transaction that reads first and writes later fails at once ("database is locked",
    no busy wait) when another connection committed in between; node agents, the worker and the
    web server write concurrently. Writing first takes the lock (and waits for it). Every such
    transaction appends to the audit chain anyway, so they serialise on its head row: take it
    now. On PostgreSQL ``select_for_update`` does the job and nothing is needed.
    """
    if connection.vendor == "sqlite":
        AuditChainHead.objects.filter(pk=1).update(seq=models.F("seq"))


_P = ParamSpec("_P")
_R = TypeVar("_R")


def write_transaction(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """``transaction.atomic`` that takes the audit chain head first (:func:`take_write_lock`)."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with transaction.atomic():
            take_write_lock()
            return func(*args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    count: int
    broken_seq: int | None = None
    broken_id: int | None = None
    reason: str = ""
    head_hash: str = GENESIS_HASH
    # Hashes of the events asked for with ``remember`` (to compare with checkpoints).
    hashes: dict[int, str] = field(default_factory=dict)


def _iter_chain(upto: int | None = None, batch: int = 2000) -> Iterator[AuditEvent]:
    last = 0
    while True:
        rows = AuditEvent.objects.filter(seq__gt=last).order_by("seq")
        if upto is not None:
            rows = rows.filter(seq__lte=upto)
        rows = list(rows[:batch])
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify_chain(*, upto: int | None = None, remember: Collection[int] = ()) -> ChainReport:
    """Walk the chain in order; report the first event that was altered, inserted or removed.

    ``upto`` stops at that event (a head read earlier, while writers may append) instead of
    comparing the end with the chain head row; ``remember`` collects the hashes of those events.
    """
    key = chain_key()
    expected_prev, expected_seq = GENESIS_HASH, 1
    count = 0
    wanted = set(remember)
    hashes: dict[int, str] = {}
    for event in _iter_chain(upto=upto):
        if event.seq != expected_seq:
            return ChainReport(
                False,
                count,
                event.seq,
                event.pk,
                f"sequence gap: expected #{expected_seq} (an event was deleted or inserted)",
                expected_prev,
                hashes,
            )
        if event.prev_hash != expected_prev:
            return ChainReport(
                False,
                count,
                event.seq,
                event.pk,
                "prev_hash does not match the previous event",
                expected_prev,
                hashes,
            )
        if not hmac.compare_digest(event_digest(event, key=key), event.hash):
            return ChainReport(
                False,
                count,
                event.seq,
                event.pk,
                "content does not match its keyed hash (altered, or rechained without the key)",
                expected_prev,
                hashes,
            )
        if event.seq in wanted:
            hashes[event.seq] = event.hash
        expected_prev = event.hash
        expected_seq += 1
        count += 1
    if upto is not None:
        if count != upto:
            return ChainReport(
                False, count, upto, None, f"the chain ends at #{count}", expected_prev, hashes
            )
        return ChainReport(True, count, head_hash=expected_prev, hashes=hashes)
    head = AuditChainHead.objects.filter(pk=1).first()
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if head_seq != count or head_hash != expected_prev:
        return ChainReport(
            False,
            count,
            head_seq,
            None,
            f"chain head names #{head_seq} but the chain ends at #{count} (events removed at the end)",
            expected_prev,
            hashes,
        )
    return ChainReport(True, count, head_hash=expected_prev, hashes=hashes)
