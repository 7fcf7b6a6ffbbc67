import itertools
import threading

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import close_old_connections, connection

from accounts import audit
from accounts.models import AuditChainHead, AuditEvent


def _verify_exit_code(capsys) -> tuple[int, str]:
    try:
        call_command("audit_verify")
    except SystemExit as exc:
        return exc.code, capsys.readouterr().err
    return 0, capsys.readouterr().out


@pytest.fixture
def chain(db, steward_a, hospital_a):
    return [
        audit.record("test.event", actor=steward_a, organisation=hospital_a, payload={"n": i})
        for i in range(5)
    ]


def test_it_links_each_event_to_the_previous_one(chain):
    assert chain[0].prev_hash == audit.GENESIS_HASH
    for before, after in itertools.pairwise(chain):
        assert after.prev_hash == before.hash
        assert after.seq == before.seq + 1
    head = AuditChainHead.objects.get(pk=1)
    assert (head.seq, head.hash) == (chain[-1].seq, chain[-1].hash)


def test_it_verifies_an_intact_chain(chain, capsys):
    code, out = _verify_exit_code(capsys)
    assert code == 0
    assert "5 events verified" in out


def test_it_names_an_event_altered_in_the_database(chain, capsys):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_auditevent SET payload = %s WHERE seq = 3", ['{"n": 99}'])
    code, err = _verify_exit_code(capsys)
    assert code == 1
    assert "#3" in err and "altered" in err


def test_it_notices_a_deleted_event(chain, capsys):
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_auditevent WHERE seq = 2")
    code, err = _verify_exit_code(capsys)
    assert code == 1
    assert "#3" in err


def test_it_notices_the_last_event_removed(chain, capsys):
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_auditevent WHERE seq = 5")
    code, err = _verify_exit_code(capsys)
    assert code == 1
    assert "removed at the end" in err


def test_it_notices_an_inserted_event(chain, capsys):
    forged = AuditEvent(
        seq=6, timestamp=chain[-1].timestamp, action="forged", prev_hash="f" * 64, hash="e" * 64
    )
    forged.save()
    code, err = _verify_exit_code(capsys)
    assert code == 1
    assert "#6" in err


def test_it_refuses_updates_and_deletes_through_the_orm(chain):
    event = chain[0]
    event.action = "changed"
    with pytest.raises(ValidationError):
        event.save()
    with pytest.raises(ValidationError):
        event.delete()
    with pytest.raises(ValidationError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(ValidationError):
        AuditEvent.objects.all().delete()


def test_it_stores_exactly_what_it_hashed(db):
    import datetime
    import decimal
    import uuid

    event = audit.record(
        "test.types",
        payload={
            "when": datetime.date(2026, 1, 2),
            "d": decimal.Decimal("1.5"),
            "u": uuid.UUID(int=1),
        },
    )
    reloaded = AuditEvent.objects.get(pk=event.pk)
    assert audit.event_digest(reloaded) == reloaded.hash


@pytest.mark.django_db(transaction=True)
def test_it_stays_linear_with_parallel_writers():
    """Eight threads, each with its own database connection, append at once."""
    writers, per_writer = 8, 15
    errors = []
    barrier = threading.Barrier(writers)

    def write(worker: int) -> None:
        try:
            barrier.wait()
            for i in range(per_writer):
                audit.record("test.parallel", payload={"worker": worker, "i": i})
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    report = audit.verify_chain()
    assert report.ok, report
    assert report.count == writers * per_writer
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == list(
        range(1, writers * per_writer + 1)
    )


# --- Keying an unkeyed chain (migration 0004) -------------------------------------------------
def _as_previous_release_wrote_it(count: int) -> list[str]:
    """Events hashed with plain SHA-256, as before the chain was keyed; returns their hashes."""
    import hashlib

    for i in range(count):
        audit.record("test.legacy", payload={"n": i})
    prev, hashes = audit.GENESIS_HASH, []
    with connection.cursor() as cursor:
        for event in AuditEvent.objects.order_by("seq"):
            event.prev_hash = prev
            prev = hashlib.sha256(audit.event_body(event)).hexdigest()
            hashes.append(prev)
            cursor.execute(
                "UPDATE accounts_auditevent SET prev_hash = %s, hash = %s WHERE id = %s",
                [event.prev_hash, prev, event.pk],
            )
        cursor.execute("UPDATE accounts_auditchainhead SET hash = %s WHERE id = 1", [prev])
    return hashes


def _key_the_chain() -> None:
    import importlib

    from django.db.migrations.executor import MigrationExecutor

    migration = importlib.import_module("accounts.migrations.0005_audit_chain_keyed")
    state = MigrationExecutor(connection).loader.project_state(
        ("accounts", "0005_audit_chain_keyed")
    )
    migration.key_the_chain(state.apps, None)


def test_the_migration_keys_an_unkeyed_chain_and_records_its_old_head(db):
    legacy = _as_previous_release_wrote_it(3)
    assert not audit.verify_chain().ok  # unkeyed hashes do not pass the keyed check
    _key_the_chain()
    report = audit.verify_chain()
    assert report.ok and report.count == 4
    marker = AuditEvent.objects.get(seq=4)
    assert marker.action == "audit.chain_keyed"
    assert marker.payload["unkeyed_head"] == legacy[-1]
    assert marker.payload["unkeyed_verification"] == "intact"
    assert AuditChainHead.objects.get(pk=1).hash == marker.hash


def test_the_migration_refuses_to_key_a_broken_chain(db, monkeypatch):
    _as_previous_release_wrote_it(3)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_auditevent SET payload = %s WHERE seq = 2", ['{"n": 9}'])
    with pytest.raises(RuntimeError, match="broken at #2"):
        _key_the_chain()
    monkeypatch.setenv("AUDIT_REKEY_ACCEPT_BROKEN", "1")
    _key_the_chain()
    assert audit.verify_chain().ok
    assert "#2" in AuditEvent.objects.get(seq=4).payload["unkeyed_verification"]


def test_the_migration_leaves_an_empty_trail_empty(db):
    _key_the_chain()
    assert not AuditEvent.objects.exists()
