"""E-mails to the other side of a lifecycle transition, sent once the transaction commits."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.models import OrganisationKind, Role

from .models import Dataset

SUBJECTS = {
    "submitted": "Dataset submitted for review: {title}",
    "changes_requested": "Changes requested for your dataset: {title}",
    "published": "Your dataset was published: {title}",
    "retired": "Your dataset was retired: {title}",
    "overdue": "Data update overdue: {title}",
}


def _emails(users) -> list[str]:
    return sorted({u.email for u in users if u.email})


_muted: ContextVar[bool] = ContextVar("catalogue_notifications_muted", default=False)


@contextmanager
def muted():
    """No e-mails inside the block (demo seeding)."""
    token = _muted.set(True)
    try:
        yield
    finally:
        _muted.reset(token)


def _send(event: str, dataset: Dataset, recipients: list[str], actor, **extra) -> None:
    if not recipients or _muted.get():
        return
    context = {
        "event": event,
        "dataset": dataset,
        "actor": actor,
        **extra,
        "url": settings.PORTAL_BASE_URL.rstrip("/")
        + reverse("catalogue:detail", args=[dataset.identifier]),
    }
    subject = SUBJECTS[event].format(title=dataset.title)
    body = render_to_string(f"catalogue/email/{event}.txt", context)
    transaction.on_commit(lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients))


def notify_curators(event: str, dataset: Dataset, *, actor) -> None:
    curators = get_user_model().objects.filter(
        is_active=True,
        memberships__roles__name=Role.CURATOR,
        memberships__organisation__kind=OrganisationKind.PLATFORM,
    )
    _send(event, dataset, _emails(curators), actor)


def notify_stewards(event: str, dataset: Dataset, *, actor) -> None:
    stewards = get_user_model().objects.filter(
        is_active=True,
        memberships__organisation_id=dataset.publisher_id,
        memberships__roles__name=Role.DATA_STEWARD,
    )
    _send(event, dataset, _emails(stewards), actor)


def notify_overdue(dataset: Dataset, freshness) -> None:
    """The agreed update interval ran out: the publisher's data stewards and site admins."""
    users = get_user_model().objects.filter(
        is_active=True,
        memberships__organisation_id=dataset.publisher_id,
        memberships__roles__name__in=[Role.DATA_STEWARD, Role.SITE_ADMIN],
    )
    _send("overdue", dataset, _emails(users), None, freshness=freshness)
