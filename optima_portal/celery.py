"""The Celery app. Each Django app may declare periodic jobs in ``<app>/beat.py`` as ``SCHEDULE``."""

from __future__ import annotations

import importlib
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "optima_portal.settings")

app = Celery("optima_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _collect_beat_schedules(sender: Celery, **_: object) -> None:
    from django.conf import settings

    schedule = dict(settings.CELERY_BEAT_SCHEDULE)
    for label in (
        "accounts",
        "catalogue",
        "cds",
        "feedback",
        "governance",
        "federation",
        "central",
    ):
        try:
            module = importlib.import_module(f"{label}.beat")
        except ModuleNotFoundError:
            continue
        schedule.update(getattr(module, "SCHEDULE", {}))
    sender.conf.beat_schedule = schedule
