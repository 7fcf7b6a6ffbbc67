"""Versions: a new upload replaces the served one, the previous stays until retired, retiring drops
its data; the agreed update interval drives reminders; a retired dataset keeps no copy."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.models import AuditEvent, Notification
from catalogue.models import Status
from central import services
from central.models import DatasetVersion, VersionStatus
from central.tasks import refresh_reminders, retire_versions_of_retired_datasets

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_versions(send, api_as, steward_a, central_dataset, demo_zip):
    client = api_as(steward_a)
    send(client, demo_zip, dataset=central_dataset)
    send(client, demo_zip, dataset=central_dataset, filename="refresh.zip")
    return list(DatasetVersion.objects.order_by("number"))


def test_a_new_upload_replaces_the_served_version(two_versions):
    first, second = two_versions
    assert (first.number, first.status) == (1, VersionStatus.PREVIOUS)
    assert (second.number, second.status) == (2, VersionStatus.SERVED)
    assert Path(first.location).exists() and Path(second.location).exists()


def test_retiring_a_version_drops_its_data(api_as, steward_a, two_versions):
    first, second = two_versions
    response = api_as(steward_a).post(f"/api/central/versions/{first.pk}/retire/")

    assert response.status_code == 200
    assert response.json()["status"] == VersionStatus.RETIRED
    assert not Path(first.location).exists()
    assert Path(second.location).exists()
    actions = AuditEvent.objects.filter(
        object_type="central.datasetversion", object_id=str(first.pk)
    )
    assert list(actions.order_by("seq").values_list("action", flat=True)) == [
        "central.version_retired",
        "central.schema_dropped",
    ]
    again = api_as(steward_a).post(f"/api/central/versions/{first.pk}/retire/")
    assert again.status_code == 400


def test_retiring_the_served_version_serves_the_previous_one(api_as, steward_a, two_versions):
    first, second = two_versions
    api_as(steward_a).post(f"/api/central/versions/{second.pk}/retire/")
    first.refresh_from_db()
    assert first.status == VersionStatus.SERVED


def test_only_stewards_of_the_publisher_retire(
    api_as, steward_b, researcher, platform_admin, two_versions
):
    first, _ = two_versions
    for user in (steward_b, researcher):
        assert api_as(user).get(f"/api/central/versions/{first.pk}/").status_code == 404
        assert api_as(user).post(f"/api/central/versions/{first.pk}/retire/").status_code == 404
    # The operators see the versions, but the data is the provider's to retire.
    assert api_as(platform_admin).get(f"/api/central/versions/{first.pk}/").status_code == 200
    assert (
        api_as(platform_admin).post(f"/api/central/versions/{first.pk}/retire/").status_code == 404
    )


def test_a_retired_dataset_keeps_no_central_copy(two_versions, central_dataset):
    central_dataset.status = Status.RETIRED
    central_dataset.save()
    assert retire_versions_of_retired_datasets.delay().get() == 2
    assert set(DatasetVersion.objects.values_list("status", flat=True)) == {VersionStatus.RETIRED}
    assert not any(Path(v.location).exists() for v in two_versions)


def test_the_update_interval_drives_one_reminder(
    send, api_as, steward_a, dac_a, central_dataset, demo_zip
):
    send(api_as(steward_a), demo_zip, dataset=central_dataset)
    version = DatasetVersion.objects.get()
    assert refresh_reminders.delay().get() == 0  # loaded just now, 90 days to go

    DatasetVersion.objects.filter(pk=version.pk).update(
        loaded_at=timezone.now() - timedelta(days=central_dataset.update_interval_days + 1)
    )
    assert refresh_reminders.delay().get() == 1
    reminded = Notification.objects.filter(verb="central.refresh_due")
    assert list(reminded.values_list("recipient", flat=True)) == [steward_a.pk]
    assert f"/central/datasets/{central_dataset.pk}/" in reminded.get().url
    assert services.refresh_reminders_send() == 0  # once per version
    assert AuditEvent.objects.filter(action="central.refresh_reminded").count() == 1


def test_an_abandoned_upload_fails_and_its_chunks_go(
    send, api_as, steward_a, central_dataset, demo_zip, settings
):
    from central import vault
    from central.models import Upload, UploadStatus
    from central.tasks import expire_abandoned_uploads

    send(api_as(steward_a), demo_zip, dataset=central_dataset, complete=False)
    upload = Upload.objects.get()
    assert vault.path_for(upload.token).exists()
    assert expire_abandoned_uploads.delay().get() == 0
    Upload.objects.filter(pk=upload.pk).update(
        updated_at=timezone.now() - timedelta(days=settings.CENTRAL_UPLOAD_ABANDON_DAYS, hours=1)
    )
    assert expire_abandoned_uploads.delay().get() == 1
    upload.refresh_from_db()
    assert upload.status == UploadStatus.FAILED and "Abandoned" in upload.error
    assert not vault.path_for(upload.token).exists()
    assert AuditEvent.objects.filter(action="central.upload_failed").count() == 1


def test_the_beat_schedule_runs_the_central_jobs():
    from optima_portal.celery import app

    app.loader.import_default_modules()
    app.finalize()
    from optima_portal.celery import _collect_beat_schedules

    _collect_beat_schedules(app)
    central = {
        e["task"] for e in app.conf.beat_schedule.values() if e["task"].startswith("central.")
    }
    assert central == {
        "central.refresh_reminders",
        "central.retire_versions_of_retired_datasets",
        "central.expire_abandoned_uploads",
        "central.recover_stalled_uploads",
    }
    assert central <= set(app.tasks)
