"""The periodic governance jobs (scheduled in ``beat.py``). Each is idempotent: running it twice on
the same day changes nothing the second time."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from .models import (
    OPEN_STATUSES,
    WAITING_DECISIONS,
    Agreement,
    AgreementStatus,
    Decision,
    Entitlement,
    EntitlementStatus,
)
from .notifications import notify
from .services import entitlements as entitlement_services
from .services.agreements import agreement_expire

if TYPE_CHECKING:
    from datetime import date, datetime

AGREEMENT_REMINDER_DAYS = (30, 7)
ENTITLEMENT_REMINDER_DAYS = 14


def request_reminder_days() -> int:
    return int(getattr(settings, "GOVERNANCE_REQUEST_REMINDER_DAYS", 14))


def agreements_remind_expiry(*, today: date | None = None) -> int:
    """Tell the parties' org admins and signatories 30 and 7 days before an agreement expires."""
    today = today or timezone.localdate()
    sent = 0
    for agreement in Agreement.objects.filter(
        status=AgreementStatus.ACTIVE,
        expiry_date__gt=today,
        expiry_date__lte=today + timedelta(days=max(AGREEMENT_REMINDER_DAYS)),
    ):
        days_left = (agreement.expiry_date - today).days
        due = [
            d
            for d in AGREEMENT_REMINDER_DAYS
            if days_left <= d and d not in agreement.reminders_sent
        ]
        if not due:
            continue
        with transaction.atomic():
            # One reminder for the nearest threshold; skipped thresholds are marked as done.
            agreement.reminders_sent = sorted({*agreement.reminders_sent, *due})
            agreement.save(update_fields=["reminders_sent"])
            notify(
                "agreement.expiry_reminder",
                agreement=agreement,
                days=days_left,
                url=reverse("governance:agreement_detail", args=[agreement.pk]),
            )
        sent += 1
    return sent


def agreements_expire(*, today: date | None = None) -> int:
    today = today or timezone.localdate()
    return sum(
        agreement_expire(agreement=a, today=today)
        for a in Agreement.objects.filter(status=AgreementStatus.ACTIVE, expiry_date__lte=today)
    )


def requests_remind(*, now: datetime | None = None) -> int:
    """Remind a custodian's DAC of a decision waiting longer than the configured delay (once per delay)."""
    now = now or timezone.now()
    delay = timedelta(days=request_reminder_days())
    sent = 0
    waiting = Decision.objects.filter(
        status__in=WAITING_DECISIONS,
        request__status__in=OPEN_STATUSES,
        waiting_since__lte=now - delay,
    ).select_related("request", "custodian")
    for decision in waiting:
        if decision.last_reminded_at and decision.last_reminded_at > now - delay:
            continue
        with transaction.atomic():
            decision.last_reminded_at = now
            decision.save(update_fields=["last_reminded_at"])
            notify(
                "request.reminder",
                access_request=decision.request,
                custodian=decision.custodian,
                days=(now - decision.waiting_since).days,
                url=reverse("governance:request_detail", args=[decision.request_id]),
            )
        sent += 1
    return sent


def entitlements_expire(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    return sum(
        entitlement_services.entitlement_expire(entitlement=e, now=now)
        for e in Entitlement.objects.filter(
            status__in=(EntitlementStatus.ACTIVE, EntitlementStatus.SUSPENDED), ends_at__lte=now
        )
    )


def entitlements_remind(*, now: datetime | None = None) -> int:
    """14 days before the end, offer the holder a one-click renewal."""
    now = now or timezone.now()
    sent = 0
    for entitlement in Entitlement.objects.filter(
        status=EntitlementStatus.ACTIVE,
        reminded_at__isnull=True,
        ends_at__gt=now,
        ends_at__lte=now + timedelta(days=ENTITLEMENT_REMINDER_DAYS),
    ).select_related("dataset", "holder"):
        with transaction.atomic():
            entitlement.reminded_at = now
            entitlement.save(update_fields=["reminded_at"])
            notify(
                "entitlement.expiry_reminder",
                entitlement=entitlement,
                days=max((entitlement.ends_at - now).days, 0),
                body="Ask for a renewal with one click: the request is prefilled from the original.",
                url=reverse("governance:entitlement_renew", args=[entitlement.pk]),
            )
        sent += 1
    return sent


def entitlements_check_terms() -> int:
    return entitlement_services.entitlements_check_terms()


def run_all() -> dict:
    return {
        "agreements_reminded": agreements_remind_expiry(),
        "agreements_expired": agreements_expire(),
        "requests_reminded": requests_remind(),
        "entitlements_expired": entitlements_expire(),
        "entitlements_reminded": entitlements_remind(),
        "entitlements_terms_suspended": entitlements_check_terms(),
    }
