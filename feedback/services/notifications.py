"""Author notifications: a Notification row per message, sent by the ``feedback.send_notification``
task after the commit (enqueued by name: services never import ``tasks``), and a resend sweep."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.jobs import enqueue

from ..models import Comment, FeedbackItem, Notification, Status

log = logging.getLogger(__name__)


def _queue(notification: Notification) -> None:
    enqueue("feedback.send_notification", notification.pk)


def _item_link(item: FeedbackItem) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + item.get_absolute_url()


def _author_to_notify(item: FeedbackItem, actor):
    author = item.author
    if author is None or not author.is_active or not author.email:
        return None
    if actor is not None and author.pk == getattr(actor, "pk", None):
        return None
    return author


def _notify_status(*, item: FeedbackItem, actor, before: str, note: str) -> None:
    author = _author_to_notify(item, actor)
    if author is None:
        return
    context = {
        "item": item,
        "before": Status(before).label,
        "after": item.get_status_display(),
        "note": note,
        "actor": actor,
        "link": _item_link(item),
    }
    notification = Notification.objects.create(
        item=item,
        recipient=author,
        kind=Notification.Kind.STATUS,
        subject=f"[OPTIMA feedback #{item.pk}] {item.get_status_display()}: {item.title}"[:200],
        body=render_to_string("feedback/email/status.txt", context),
    )
    _queue(notification)


def _notify_reply(*, item: FeedbackItem, comment: Comment, actor) -> None:
    author = _author_to_notify(item, actor)
    if author is None:
        return
    notification = Notification.objects.create(
        item=item,
        recipient=author,
        kind=Notification.Kind.REPLY,
        subject=f"[OPTIMA feedback #{item.pk}] New reply: {item.title}"[:200],
        body=render_to_string(
            "feedback/email/reply.txt",
            {"item": item, "comment": comment, "actor": actor, "link": _item_link(item)},
        ),
    )
    _queue(notification)


def notification_send(*, notification_id: int) -> bool:
    """Send one notification once (idempotent: a sent row is not sent again)."""
    from django.core.mail import send_mail

    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update()
            .select_related("recipient")
            .filter(pk=notification_id, sent_at__isnull=True)
            .first()
        )
        if notification is None:
            return False
        try:
            send_mail(notification.subject, notification.body, None, [notification.recipient.email])
        except Exception as exc:
            notification.error = str(exc)[:2000]
            notification.save(update_fields=["error"])
            raise
        notification.sent_at = timezone.now()
        notification.error = ""
        notification.save(update_fields=["sent_at", "error"])
    return True


def notifications_resend(*, older_than_minutes: int = 10, limit: int = 200) -> int:
    """Send what the after-commit task did not (worker down, mail server failing); at most ``limit``."""
    cutoff = timezone.now() - timedelta(minutes=older_than_minutes)
    pending = Notification.objects.filter(sent_at__isnull=True, created_at__lt=cutoff).order_by(
        "created_at"
    )
    sent = 0
    for notification_id in pending.values_list("pk", flat=True)[:limit]:
        try:
            sent += int(notification_send(notification_id=notification_id))
        except Exception:  # the error is kept on the row; try the others
            log.warning("Feedback notification %s not sent", notification_id, exc_info=True)
    return sent
