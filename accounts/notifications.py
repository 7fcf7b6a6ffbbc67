"""One way to tell people something: a ``Notification`` row per recipient, listed in-app and e-mailed.

Each app keeps its own audience rules (who is told, in its own ``notifications`` module) and calls
``notify(...)`` inside its transaction. The rows are written with the change; the e-mail task
``accounts.send_notification_emails`` is enqueued by name after commit, and the beat sweep
``accounts.resend_notification_emails`` picks up what it could not send. ``send_pending`` claims a
row with a conditional update before sending, so a row is never e-mailed twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import models, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from .jobs import enqueue
from .models import Notification

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from .models import Organisation

log = logging.getLogger(__name__)

SEND_TASK = "accounts.send_notification_emails"
MAX_ATTEMPTS = 5  # per row, the task's retries and the sweep's together
RESEND_AFTER = timedelta(minutes=1)  # younger rows may still be on their way through the broker
RESEND_WITHIN = timedelta(days=2)  # an older unsent e-mail is stale: it stays in-app only


@transaction.atomic
def notify(
    *,
    recipients: Iterable[User | None],
    verb: str,
    subject: str,
    body: str = "",
    url: str = "",
    organisation: Organisation | None = None,
    email: bool = True,
    obj: models.Model | None = None,
) -> list[Notification]:
    """Write one notification per active recipient (duplicates and ``None`` dropped) and e-mail
    those with an address once the caller's transaction commits."""
    people = {u.pk: u for u in recipients if u is not None and u.is_active}
    now = timezone.now()
    rows = Notification.objects.bulk_create(
        [
            Notification(
                recipient=user,
                verb=verb,
                subject=subject[:250],
                body=body,
                url=url[:300],
                organisation=organisation,
                object_type=obj._meta.label_lower if obj is not None else "",
                object_id=str(obj.pk) if obj is not None else "",
                created_at=now,
                email=email and bool(user.email),
            )
            for _, user in sorted(people.items())
        ]
    )
    to_send = [n.pk for n in rows if n.email]
    if to_send:
        enqueue(SEND_TASK, to_send)
    return rows


@transaction.atomic
def mark_read(*, user: User, ids: Iterable[int] | None = None, all: bool = False) -> int:
    """Mark the user's own notifications read (the ``ids`` given, or ``all``); others' are ignored."""
    unread = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if not all:
        unread = unread.filter(pk__in=list(ids or []))
    return unread.update(read_at=timezone.now())


@dataclass
class SendResult:
    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def absolute(url: str) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + url if url.startswith("/") else url


def _message(n: Notification) -> EmailMultiAlternatives:
    ctx = {
        "user": n.recipient,
        "notification": n,
        "link": absolute(n.url) if n.url else "",
        "all_link": absolute(reverse("accounts:notifications")),
    }
    message = EmailMultiAlternatives(
        subject=f"[OPTIMA] {n.subject}",
        body=render_to_string("accounts/email/notification.txt", ctx),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[n.recipient.email],
    )
    message.attach_alternative(
        render_to_string("accounts/email/notification.html", ctx), "text/html"
    )
    return message


def _send_one(pk: int) -> bool | None:
    """Send one row: True when sent now, False when it failed (recorded), None when not due."""
    with transaction.atomic():
        # The conditional update is the claim: it locks the row (PostgreSQL) or the database
        # (SQLite) until commit, so a concurrent sender waits and then finds ``sent_at`` set.
        claimed = Notification.objects.filter(
            pk=pk, email=True, sent_at__isnull=True, attempts__lt=MAX_ATTEMPTS
        ).update(attempts=F("attempts") + 1)
        if not claimed:
            return None
        n = Notification.objects.select_related("recipient").get(pk=pk)
        try:
            _message(n).send()
        except Exception as exc:  # any mail failure is kept on the row and retried
            n.error = f"{type(exc).__name__}: {exc}"[:2000]
            n.save(update_fields=["error"])
            log.warning("Notification %s not e-mailed (attempt %s): %s", pk, n.attempts, exc)
            return False
        n.sent_at = timezone.now()
        n.error = ""
        n.save(update_fields=["sent_at", "error"])
        return True


def send_pending(ids: Iterable[int]) -> SendResult:
    """E-mail the rows among ``ids`` that are due; rows already sent are left alone."""
    result = SendResult()
    for pk in ids:
        outcome = _send_one(pk)
        if outcome is True:
            result.sent.append(pk)
        elif outcome is False:
            result.failed.append(pk)
    return result


def unsent_ids(*, now=None, limit: int = 200) -> list[int]:
    """Rows the sweep should try again: due an e-mail, unsent, not given up, neither too fresh
    (the task may still be on its way) nor stale."""
    now = now or timezone.now()
    return list(
        Notification.objects.filter(
            email=True,
            sent_at__isnull=True,
            attempts__lt=MAX_ATTEMPTS,
            created_at__lt=now - RESEND_AFTER,
            created_at__gte=now - RESEND_WITHIN,
        )
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def resend_unsent(*, now=None) -> int:
    """The beat sweep: send what the after-commit task did not (worker down, mail server failing)."""
    return len(send_pending(unsent_ids(now=now)).sent)
