"""Celery tasks of federated learning on FLARE: thin and idempotent, each calls a service.

The task names keep the ``federation.`` prefix (beat schedules and queued messages use them).
Registered because ``federation.tasks`` (what Celery's autodiscovery imports) imports this module.
"""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from ..models import OPEN_FL_STATUSES, FlJob, FlJobStatus
from . import services as fl


def fl_monitor_interval() -> float:
    return float(getattr(settings, "FLARE_MONITOR_INTERVAL_SECONDS", 5.0))


def _monitor_later(fl_job: FlJob) -> None:
    """While the job is open, poll again later (never in eager mode: no recursion)."""
    if fl_job.is_open and not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        fl_monitor.apply_async((fl_job.pk,), countdown=fl_monitor_interval())


@shared_task(name="federation.fl_submit")
def fl_submit(fl_job_id: int) -> str:
    fl_job = fl.fl_submit(fl_job_id=fl_job_id)
    _monitor_later(fl_job)
    return fl_job.status


@shared_task(name="federation.fl_monitor")
def fl_monitor(fl_job_id: int) -> str:
    """Poll once; while the job is open, poll again later."""
    fl_job = fl.fl_poll(fl_job_id=fl_job_id)
    _monitor_later(fl_job)
    return fl_job.status


@shared_task(name="federation.fl_monitor_open")
def fl_monitor_open() -> int:
    """Beat sweep: poll every open job (covers a lost monitor chain after a worker restart) and
    resubmit jobs whose submission task was lost (same folder and token: FLARE does not duplicate)."""
    stuck = FlJob.objects.filter(
        status=FlJobStatus.SUBMITTING, created_at__lt=timezone.now() - timedelta(minutes=2)
    ).values_list("pk", flat=True)
    for pk in list(stuck):
        fl.fl_submit(fl_job_id=pk)
    ids = list(FlJob.objects.filter(status__in=OPEN_FL_STATUSES).values_list("pk", flat=True))
    for pk in ids:
        fl.fl_poll(fl_job_id=pk)
    return len(ids)
