from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from .models import WorkerHeartbeat

logger = logging.getLogger(__name__)


@shared_task(name="accounts.worker_heartbeat")
def worker_heartbeat(name: str = "celery") -> str:
    """Record that a worker is alive; /readyz shows when it last ran."""
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(name=name, defaults={"seen_at": now})
    return now.isoformat()


@shared_task(name="accounts.audit_checkpoint")
def audit_checkpoint() -> str:
    """Write a signed checkpoint of the audit chain (nothing when no event was added since)."""
    from .checkpoints import CheckpointRefused, write

    try:
        checkpoint = write()
    except CheckpointRefused as exc:
        logger.error("Audit checkpoint refused: %s. Run manage.py audit_verify.", exc)
        return f"refused: {exc}"
    return str(checkpoint) if checkpoint else "unchanged"
