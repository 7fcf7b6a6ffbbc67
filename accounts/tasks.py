from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from . import notifications
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


@shared_task(bind=True, name="accounts.send_notification_emails", max_retries=3)
def send_notification_emails(self, notification_ids: list[int]) -> int:
    """E-mail these notifications; retry the failed ones with backoff (1, 2, 4 minutes).

    Each row records its attempts and last error, and a sent row is never sent again, so retries
    and the sweep below can overlap safely. After the last retry the sweep keeps trying.
    """
    result = notifications.send_pending(notification_ids)
    if result.failed and self.request.retries < self.max_retries:
        raise self.retry(args=[result.failed], countdown=60 * 2**self.request.retries)
    return len(result.sent)


@shared_task(name="accounts.resend_notification_emails")
def resend_notification_emails() -> int:
    """Beat sweep: send the notifications still unsent a minute after they were written."""
    return notifications.resend_unsent()
