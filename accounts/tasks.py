from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from .models import WorkerHeartbeat


@shared_task(name="accounts.worker_heartbeat")
def worker_heartbeat(name: str = "celery") -> str:
    """Record that a worker is alive; /readyz shows when it last ran."""
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(name=name, defaults={"seen_at": now})
    return now.isoformat()
