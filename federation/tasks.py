"""Thin, idempotent Celery tasks: each loads rows and calls a service (the rows are the truth)."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="federation.advance_analysis")
def advance_analysis(analysis_id: int) -> str | None:
    analysis = services.analysis_advance(analysis_id=analysis_id)
    return analysis.status if analysis else None


@shared_task(name="federation.expire_runs")
def expire_runs() -> dict[str, int]:
    """Deadlines and leases; also nudges analyses whose round ended while no worker ran."""
    return {
        "expired": services.runs_expire_overdue(),
        "leases": services.leases_expire(),
        "nudged": services.analyses_advance_stuck(),
    }


@shared_task(name="federation.node_liveness")
def node_liveness() -> dict[str, int]:
    return services.nodes_check_liveness()


@shared_task(name="federation.prune_heartbeats")
def prune_heartbeats() -> int:
    return services.heartbeats_prune()


# --- federated learning on FLARE ------------------------------------------------------------------


@shared_task(name="federation.fl_submit")
def fl_submit(fl_job_id: int) -> str:
    from django.conf import settings

    from .flare import services as fl

    fl_job = fl.fl_submit(fl_job_id=fl_job_id)
    if fl_job.is_open and not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        fl_monitor.apply_async((fl_job_id,), countdown=fl_monitor_interval())
    return fl_job.status


def fl_monitor_interval() -> float:
    from django.conf import settings

    return float(getattr(settings, "FLARE_MONITOR_INTERVAL_SECONDS", 5.0))


@shared_task(name="federation.fl_monitor")
def fl_monitor(fl_job_id: int) -> str:
    """Poll once; while the job is open, poll again later (never in eager mode: no recursion)."""
    from django.conf import settings

    from .flare import services as fl

    fl_job = fl.fl_poll(fl_job_id=fl_job_id)
    if fl_job.is_open and not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        fl_monitor.apply_async((fl_job_id,), countdown=fl_monitor_interval())
    return fl_job.status


@shared_task(name="federation.fl_monitor_open")
def fl_monitor_open() -> int:
    """Beat sweep: poll every open job (covers a lost monitor chain after a worker restart) and
    resubmit jobs whose submission task was lost (same folder and token: FLARE does not duplicate)."""
    from datetime import timedelta

    from django.utils import timezone

    from .flare import services as fl
    from .models import OPEN_FL_STATUSES, FlJob, FlJobStatus

    stuck = FlJob.objects.filter(
        status=FlJobStatus.SUBMITTING, created_at__lt=timezone.now() - timedelta(minutes=2)
    ).values_list("pk", flat=True)
    for pk in list(stuck):
        fl.fl_submit(fl_job_id=pk)
    ids = list(FlJob.objects.filter(status__in=OPEN_FL_STATUSES).values_list("pk", flat=True))
    for pk in ids:
        fl.fl_poll(fl_job_id=pk)
    return len(ids)
