"""Thin Celery tasks: load rows, call a service or send mail. Safe to run twice.

Services never import this module: they enqueue a task by its name (``accounts.jobs.enqueue``),
and Celery beat names the periodic ones (``beat.py``). The names below are that contract.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone

from . import jobs
from .models import Notification
from .notifications import absolute


@shared_task(name="governance.send_notification_emails")
def send_notification_emails(notification_ids: list[int]) -> int:
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


# --- Beat jobs (scheduled in beat.py); each is idempotent -------------------------------------


@shared_task(name="governance.agreements_remind_expiry")
def agreements_remind_expiry() -> int:
    return jobs.agreements_remind_expiry()


@shared_task(name="governance.agreements_expire")
def agreements_expire() -> int:
    return jobs.agreements_expire()


@shared_task(name="governance.requests_remind")
def requests_remind() -> int:
    return jobs.requests_remind()


@shared_task(name="governance.entitlements_expire")
def entitlements_expire() -> int:
    return jobs.entitlements_expire()


@shared_task(name="governance.entitlements_remind")
def entitlements_remind() -> int:
    return jobs.entitlements_remind()


@shared_task(name="governance.entitlements_check_terms")
def entitlements_check_terms() -> int:
    return jobs.entitlements_check_terms()
