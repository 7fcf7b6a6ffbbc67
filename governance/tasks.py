"""Thin Celery tasks: load rows, call a service or send mail. Safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone

from .models import Notification


@shared_task(name="governance.send_notification_emails")
def send_notification_emails(notification_ids: list[int]) -> int:
    from django.conf import settings

    from .notifications import absolute

    sent = 0
    rows = Notification.objects.filter(pk__in=notification_ids, emailed_at__isnull=True)
    for n in rows.select_related("user"):
        if not n.user.email:
            continue
        ctx = {"user": n.user, "notification": n, "link": absolute(n.url) if n.url else ""}
        message = EmailMultiAlternatives(
            subject=f"[OPTIMA] {n.title}",
            body=render_to_string("governance/email/notification.txt", ctx),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[n.user.email],
        )
        message.attach_alternative(
            render_to_string("governance/email/notification.html", ctx), "text/html"
        )
        message.send()
        Notification.objects.filter(pk=n.pk).update(emailed_at=timezone.now())
        sent += 1
    return sent


def _job(name: str):
    def run() -> int:
        from . import jobs

        return getattr(jobs, name)()

    run.__name__ = name
    run.__doc__ = f"Beat job governance.jobs.{name} (idempotent)."
    return shared_task(name=f"governance.{name}")(run)


agreements_remind_expiry = _job("agreements_remind_expiry")
agreements_expire = _job("agreements_expire")
requests_remind = _job("requests_remind")
entitlements_expire = _job("entitlements_expire")
entitlements_remind = _job("entitlements_remind")
entitlements_check_terms = _job("entitlements_check_terms")
