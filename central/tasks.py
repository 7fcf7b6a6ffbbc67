"""Thin Celery tasks of the central app: each calls one service."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="central.process_upload")
def process_upload(upload_id: int) -> str:
    return services.upload_process(upload_id=upload_id).status


@shared_task(name="central.refresh_reminders")
def refresh_reminders() -> int:
    return services.refresh_reminders_send()


@shared_task(name="central.retire_versions_of_retired_datasets")
def retire_versions_of_retired_datasets() -> int:
    return services.versions_of_retired_datasets_retire()


@shared_task(name="central.expire_abandoned_uploads")
def expire_abandoned_uploads() -> int:
    return services.uploads_abandoned_expire()


@shared_task(name="central.recover_stalled_uploads")
def recover_stalled_uploads() -> int:
    return services.uploads_stalled_recover()
