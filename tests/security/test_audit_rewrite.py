"""Probe finding: the audit trail could be rewritten by anyone with database write access.

The probe altered an event, recomputed the whole chain with the public (unkeyed) digest function
and updated the chain head; ``audit_verify`` passed. The chain is now keyed (HMAC under
``AUDIT_HMAC_KEY``, outside the database) and anchored by signed checkpoints outside the database.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.management import call_command
from django.db import connection

from accounts import audit, checkpoints
from accounts.models import AuditEvent

pytestmark = pytest.mark.django_db

KEY = "production-like-audit-key-" + "q" * 40


@pytest.fixture(autouse=True)
def _key(settings):
    settings.AUDIT_HMAC_KEY = KEY


@pytest.fixture
def chain(steward_a, hospital_a):
    return [
        audit.record("test.event", actor=steward_a, organisation=hospital_a, payload={"n": i})
        for i in range(5)
    ]


def _run(capsys, command: str = "audit_verify", *args: str) -> tuple[int, str]:
    try:
        call_command(command, *args)
    except SystemExit as exc:
        captured = capsys.readouterr()
        return exc.code, captured.err + captured.out
    captured = capsys.readouterr()
    return 0, captured.out + captured.err


def _rechain(digest, *, from_seq: int = 1) -> None:
    """The attacker's rewrite: recompute every hash from ``from_seq`` on and move the head."""
    prev = (
        AuditEvent.objects.filter(seq=from_seq - 1).values_list("hash", flat=True).first()
        or audit.GENESIS_HASH
    )
    with connection.cursor() as cursor:
        for event in AuditEvent.objects.filter(seq__gte=from_seq).order_by("seq"):
            event.prev_hash = prev
            prev = digest(event)
            cursor.execute(
                "UPDATE accounts_auditevent SET prev_hash = %s, hash = %s WHERE id = %s",
                [event.prev_hash, prev, event.pk],
            )
        last = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
        cursor.execute(
            "UPDATE accounts_auditchainhead SET seq = %s, hash = %s WHERE id = 1", [last, prev]
        )


def _alter_payload(seq: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_auditevent SET payload = %s WHERE seq = %s", ['{"n": 99}', seq]
        )


def _unkeyed(event) -> str:
    """The digest the chain used before: SHA-256 of the public canonical form."""
    return hashlib.sha256(audit.event_body(event)).hexdigest()


def test_the_probes_rewrite_with_the_public_digest_is_detected(chain, capsys):
    _alter_payload(3)
    _rechain(_unkeyed)
    code, out = _run(capsys)
    assert code == 1
    assert "#1" in out and "keyed hash" in out


def test_a_rewrite_with_a_guessed_key_is_detected(chain, capsys):
    _alter_payload(3)
    guessed = b"dev-insecure-audit-chain-key-only-for-local-development"
    _rechain(lambda event: audit.event_digest(event, key=guessed))
    code, out = _run(capsys)
    assert code == 1 and "#1" in out


def test_a_key_holder_rewriting_before_a_checkpoint_is_detected(chain, steward_a, capsys):
    assert _run(capsys, "audit_checkpoint")[0] == 0
    audit.record("test.later", actor=steward_a)
    _alter_payload(2)
    _rechain(audit.event_digest, from_seq=2)  # with the real key: the chain itself verifies
    assert audit.verify_chain().ok
    code, out = _run(capsys)
    assert code == 1
    assert "event #5 does not match checkpoint" in out and "rewritten" in out
    # The checkpoint writer refuses to vouch for the rewritten history.
    code, out = _run(capsys, "audit_checkpoint")
    assert code == 1 and "No checkpoint written" in out
    assert len(list(checkpoints.directory().glob("*.json"))) == 1


def test_truncating_events_after_a_checkpoint_is_detected(chain, capsys):
    assert _run(capsys, "audit_checkpoint")[0] == 0
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_auditevent WHERE seq > 3")
        cursor.execute(
            "UPDATE accounts_auditchainhead SET seq = 3, hash = %s WHERE id = 1", [chain[2].hash]
        )
    assert audit.verify_chain().ok  # the remaining chain is consistent...
    code, out = _run(capsys)
    assert code == 1  # ...but the checkpoint remembers #5
    assert "names event #5 but the chain ends at #3" in out and "removed" in out
    assert _run(capsys, "audit_checkpoint")[0] == 1


def test_a_forged_checkpoint_is_refused(chain, capsys):
    assert _run(capsys, "audit_checkpoint")[0] == 0
    _alter_payload(3)
    _rechain(audit.event_digest)
    # Someone without the key drops a checkpoint matching the rewritten history.
    forged = {
        "format": 1,
        "seq": 5,
        "head": AuditEvent.objects.get(seq=5).hash,
        "created_at": "2030-01-01T00:00:00+00:00",
        "signature": "0" * 64,
    }
    (checkpoints.directory() / "000000000005-20300101T000000000000Z.json").write_text(
        json.dumps(forged)
    )
    code, out = _run(capsys)
    assert code == 1
    assert "signature does not verify" in out and "does not match checkpoint" in out


def test_an_intact_chain_matches_its_checkpoints(chain, steward_a, capsys):
    assert "5 events verified; no checkpoint" in _run(capsys)[1]
    assert _run(capsys, "audit_verify", "--require-checkpoint")[0] == 1
    code, out = _run(capsys, "audit_checkpoint")
    assert code == 0 and "#5" in out
    assert "Nothing new" in _run(capsys, "audit_checkpoint")[1]
    audit.record("test.later", actor=steward_a)
    assert _run(capsys, "audit_checkpoint")[0] == 0
    code, out = _run(capsys, "audit_verify", "--require-checkpoint")
    assert code == 0, out
    assert "6 events verified; 2 checkpoint(s) match" in out


def test_the_beat_task_writes_checkpoints(chain):
    from accounts.beat import SCHEDULE
    from accounts.tasks import audit_checkpoint

    assert SCHEDULE["audit-checkpoint"]["task"] == "accounts.audit_checkpoint"
    assert audit_checkpoint.delay().get().startswith("000000000005-")
    assert audit_checkpoint.delay().get() == "unchanged"
    _alter_payload(3)
    assert audit_checkpoint.delay().get().startswith("refused: audit chain broken at event #3")
