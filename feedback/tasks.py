from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(
    name="feedback.send_notification",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def send_notification(notification_id: int) -> bool:
    """Send one author notification; a row already sent is left alone, so retries are safe."""
    return services.notification_send(notification_id=notification_id)


@shared_task(name="feedback.resend_notifications")
def resend_notifications() -> int:
    """Send notifications still unsent a few minutes after they were queued (broker or mail down)."""
    return services.notifications_resend()
