"""Key the audit chain: rehash every existing event with HMAC-SHA256 under AUDIT_HMAC_KEY.

Until now each hash was plain SHA-256, which anyone with database write access could recompute.
This migration first verifies the unkeyed chain (and stops if it is broken), then rechains it with
the key and appends an ``audit.chain_keyed`` event naming the old (unkeyed) head hash, so copies of
it kept elsewhere (backups, exports) still tie the history to its keyed form.

Set ``AUDIT_REKEY_ACCEPT_BROKEN=1`` to key a chain that does not verify anyway; the break is then
recorded in the ``audit.chain_keyed`` event. The helpers below are frozen copies of
``accounts.audit`` as of this migration.
"""

import hashlib
import hmac
import json
import os
from datetime import UTC

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import migrations
from django.utils import timezone

GENESIS_HASH = "0" * 64


def _body(event) -> bytes:
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
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder
    ).encode()


def _legacy_break(AuditEvent, AuditChainHead) -> str:
    expected_prev, expected_seq = GENESIS_HASH, 1
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=2000):
        if event.seq != expected_seq:
            return f"#{event.seq}: sequence gap (expected #{expected_seq})"
        if event.prev_hash != expected_prev:
            return f"#{event.seq}: prev_hash does not match the previous event"
        if hashlib.sha256(_body(event)).hexdigest() != event.hash:
            return f"#{event.seq}: content does not match its hash"
        expected_prev, expected_seq = event.hash, expected_seq + 1
    head = AuditChainHead.objects.filter(pk=1).first()
    if head and (head.seq != expected_seq - 1 or head.hash != expected_prev):
        return f"chain head names #{head.seq} but the chain ends at #{expected_seq - 1}"
    return ""


def key_the_chain(apps, schema_editor):
    AuditEvent = apps.get_model("accounts", "AuditEvent")
    AuditChainHead = apps.get_model("accounts", "AuditChainHead")
    if not AuditEvent.objects.exists():
        return
    broken = _legacy_break(AuditEvent, AuditChainHead)
    if broken and os.environ.get("AUDIT_REKEY_ACCEPT_BROKEN") != "1":
        raise RuntimeError(
            f"The audit chain is broken at {broken}; refusing to key a history that does not "
            "verify. Investigate (manage.py audit_verify of the previous release), or set "
            "AUDIT_REKEY_ACCEPT_BROKEN=1 to key it anyway with the break on record."
        )
    key = settings.AUDIT_HMAC_KEY.encode()
    unkeyed_head = AuditEvent.objects.order_by("-seq").values_list("hash", flat=True).first()
    prev, batch = GENESIS_HASH, []
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=2000):
        event.prev_hash = prev
        event.hash = prev = hmac.new(key, _body(event), hashlib.sha256).hexdigest()
        batch.append(event)
        if len(batch) >= 1000:
            AuditEvent.objects.bulk_update(batch, ["prev_hash", "hash"])
            batch = []
    AuditEvent.objects.bulk_update(batch, ["prev_hash", "hash"])
    last_seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    marker = AuditEvent(
        seq=last_seq + 1,
        timestamp=timezone.now(),
        actor_repr="system",
        action="audit.chain_keyed",
        payload={
            "algorithm": "HMAC-SHA256",
            "events": last_seq,
            "unkeyed_head": unkeyed_head,
            "unkeyed_verification": broken or "intact",
        },
        prev_hash=prev,
    )
    marker.hash = hmac.new(key, _body(marker), hashlib.sha256).hexdigest()
    marker.save()
    AuditChainHead.objects.update_or_create(
        pk=1, defaults={"seq": marker.seq, "hash": marker.hash}
    )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_apitoken_scope")]
    operations = [migrations.RunPython(key_the_chain, migrations.RunPython.noop)]
