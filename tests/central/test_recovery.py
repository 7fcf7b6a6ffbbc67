"""A worker that dies during the check or the load: the beat job central.recover_stalled_uploads
queues the upload again (the task claims only a queued upload, so it runs once), and after
CENTRAL_UPLOAD_MAX_ATTEMPTS fails it with a clear error, its encrypted file and the half-written
SQLite file of the lost attempt deleted. The dead worker is simulated by the row it leaves behind:
a processing status and an old heartbeat (``updated_at``), no sleeps."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from central import services, vault, warehouse
from central.models import DatasetVersion, Upload, UploadStatus
from central.tasks import process_upload, recover_stalled_uploads

from .conftest import upload_actions

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(send, api_as, steward_a, central_dataset, demo_zip, django_capture_on_commit_callbacks):
    """An upload whose chunks are in and whose check and load were queued, not yet run."""
    client = api_as(steward_a)
    created = send(client, demo_zip, dataset=central_dataset, complete=False)
    upload_id = created.json()["id"]
    with django_capture_on_commit_callbacks(execute=False):  # the message never reaches a worker
        assert client.post(f"/api/central/uploads/{upload_id}/complete/").status_code == 202
    upload = Upload.objects.get(pk=upload_id)
    assert (upload.status, upload.attempts) == (UploadStatus.QUEUED, 1)
    return upload


@pytest.fixture
def lost_messages(monkeypatch):
    """Every worker that would take the re-queued job dies at once: the message goes nowhere."""
    sent: list[tuple] = []
    monkeypatch.setattr(process_upload, "delay", lambda *args: sent.append(args))
    return sent


def _worker_dies(upload: Upload, status: str, *, minutes: int, partial: bool = False) -> Path:
    """Leave the row as a worker that died while checking or loading leaves it."""
    location = warehouse.location_for(upload.dataset_id, 1)
    left = Path(location).with_name(f"ds_{upload.dataset_id}_v1.attempt{upload.attempts}.partial")
    fields = {"status": status, "stage": "Loading", "progress": 40}
    if partial:
        left.parent.mkdir(parents=True, exist_ok=True)
        left.write_bytes(b"half a SQLite file")
        fields["location"] = location
    Upload.objects.filter(pk=upload.pk).update(
        updated_at=timezone.now() - timedelta(minutes=minutes), **fields
    )
    return left


def test_it_leaves_an_upload_alone_while_its_worker_makes_progress(queued, settings):
    _worker_dies(queued, UploadStatus.LOADING, minutes=settings.CENTRAL_UPLOAD_STALL_MINUTES - 1)

    assert recover_stalled_uploads.delay().get() == 0
    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == (UploadStatus.LOADING, 1)
    assert "central.upload_requeued" not in upload_actions(queued)


def test_it_requeues_a_load_whose_worker_died_and_the_next_attempt_loads_it(
    queued, settings, django_capture_on_commit_callbacks
):
    left = _worker_dies(
        queued,
        UploadStatus.LOADING,
        minutes=settings.CENTRAL_UPLOAD_STALL_MINUTES + 1,
        partial=True,
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert recover_stalled_uploads.delay().get() == 1

    queued.refresh_from_db()
    assert not left.exists()  # the lost attempt's half-written file went before the next one ran
    assert (queued.status, queued.attempts, queued.progress) == (UploadStatus.LOADED, 2, 100)
    assert DatasetVersion.objects.get(upload=queued).number == 1
    assert not vault.path_for(queued.token).exists()
    assert upload_actions(queued) == [
        "central.upload_started",
        "central.upload_completed",
        "central.upload_requeued",
        "central.check_passed",
        "central.load_started",
        "central.load_completed",
    ]
    requeued = AuditEvent.objects.get(action="central.upload_requeued")
    assert requeued.payload["attempt"] == 2 and requeued.payload["stalled_in"] == "loading"


def test_it_fails_the_upload_after_the_last_attempt_and_deletes_its_files(
    queued, settings, lost_messages, client_as, steward_a, django_capture_on_commit_callbacks
):
    settings.CENTRAL_UPLOAD_MAX_ATTEMPTS = 3
    stale = settings.CENTRAL_UPLOAD_STALL_MINUTES + 1
    # Attempt 1: the message was lost while queued; attempts 2 and 3: the worker died loading.
    _worker_dies(queued, UploadStatus.QUEUED, minutes=stale)
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert services.uploads_stalled_recover() == 1
        queued.refresh_from_db()
        assert queued.status == UploadStatus.QUEUED
        left = _worker_dies(queued, UploadStatus.LOADING, minutes=stale, partial=True)
    assert queued.attempts == 3 and len(lost_messages) == 2
    assert vault.path_for(queued.token).exists() and left.exists()

    with django_capture_on_commit_callbacks(execute=True):
        assert services.uploads_stalled_recover() == 1

    queued.refresh_from_db()
    assert queued.status == UploadStatus.FAILED and queued.finished_at
    assert "stopped without finishing 3 times" in queued.error
    assert not vault.path_for(queued.token).exists()
    assert not left.exists() and not Path(queued.location).exists()
    assert not DatasetVersion.objects.exists()
    assert len(lost_messages) == 2  # failed, not queued a fourth time
    assert upload_actions(queued)[-3:] == [
        "central.upload_requeued",
        "central.upload_requeued",
        "central.upload_failed",
    ]
    failed = AuditEvent.objects.get(action="central.upload_failed")
    assert failed.payload["stalled_in"] == "loading"
    # The steward reads why on the upload's page and through the API.
    page = client_as(steward_a).get(f"/central/uploads/{queued.pk}/").content.decode()
    assert "stopped without finishing 3 times" in page
    assert services.uploads_stalled_recover() == 0  # nothing left to recover


def test_a_worker_given_up_for_lost_stops_at_its_next_write(queued, settings, lost_messages):
    claimed = Upload.objects.filter(pk=queued.pk).update(status=UploadStatus.CHECKING)
    attempt = services.Attempt(Upload.objects.get(pk=queued.pk))
    assert claimed and attempt.number == 1
    attempt.set(progress=1)  # it owns the row
    _worker_dies(queued, UploadStatus.CHECKING, minutes=settings.CENTRAL_UPLOAD_STALL_MINUTES + 1)
    assert services.uploads_stalled_recover() == 1

    with pytest.raises(services.Superseded):
        attempt.set(progress=50)
    queued.refresh_from_db()
    assert (queued.status, queued.attempts, queued.progress) == (UploadStatus.QUEUED, 2, 0)
    # The slow worker's failure does not fail the upload that the next attempt now owns.
    assert not services._fail(queued, "boom", attempt=attempt)
    queued.refresh_from_db()
    assert queued.status == UploadStatus.QUEUED and not queued.error


@pytest.mark.parametrize("phase", [UploadStatus.CHECKING, UploadStatus.LOADING])
def test_a_slow_worker_given_up_for_lost_neither_fails_nor_loads_the_upload(
    queued, settings, monkeypatch, lost_messages, phase
):
    """The beat job gives the running attempt up while it checks (or loads); the attempt stops at
    its next write, leaves nothing behind, and the next attempt loads the upload once."""
    from central import quality

    monkeypatch.setattr(services, "HEARTBEAT_SECONDS", 0)
    monkeypatch.setattr(quality, "HEARTBEAT_ROWS", 50)
    real_set = services.Attempt.set
    given_up: list[int] = []

    def set_then_lose(self, **fields):
        real_set(self, **fields)
        if not given_up and Upload.objects.get(pk=self.upload_pk).status == phase:
            _worker_dies(queued, phase, minutes=settings.CENTRAL_UPLOAD_STALL_MINUTES + 1)
            given_up.append(services.uploads_stalled_recover())

    monkeypatch.setattr(services.Attempt, "set", set_then_lose)
    first = process_upload(queued.pk)
    monkeypatch.setattr(services.Attempt, "set", real_set)

    assert given_up == [1] and first == UploadStatus.QUEUED
    queued.refresh_from_db()
    assert (queued.status, queued.attempts, queued.error) == (UploadStatus.QUEUED, 2, "")
    assert not DatasetVersion.objects.exists()
    # The given-up attempt removed its own partial file; nothing else was written.
    assert not list((Path(settings.CENTRAL_DIR) / "omop").glob("*"))

    assert process_upload(queued.pk) == UploadStatus.LOADED
    assert DatasetVersion.objects.get(upload=queued).number == 1
    actions = upload_actions(queued)
    assert "central.upload_failed" not in actions
    assert actions.count("central.load_completed") == 1
