"""Who is told about a dataset's lifecycle: the curators of a submission, the publisher's data
stewards of a review's outcome. In-app and by e-mail, through ``accounts.notifications``."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

from django.contrib.auth import get_user_model
from django.template.loader import render_to_string
from django.urls import reverse

from accounts import notifications
from accounts.models import OrganisationKind, Role

from .models import Dataset

SUBJECTS = {
    "submitted": "Dataset submitted for review: {title}",
    "changes_requested": "Changes requested for your dataset: {title}",
    "published": "Your dataset was published: {title}",
    "retired": "Your dataset was retired: {title}",
    "overdue": "Data update overdue: {title}",
}

_muted: ContextVar[bool] = ContextVar("catalogue_notifications_muted", default=False)


@contextmanager
def muted():
    """No notifications inside the block (demo seeding)."""
    token = _muted.set(True)
    try:
        yield
    finally:
        _muted.reset(token)


def _notify(event: str, dataset: Dataset, recipients, actor, **extra) -> None:
    if _muted.get():
        return
    notifications.notify(
        recipients=[u for u in recipients if u != actor],
        verb=f"dataset.{event}",
        subject=SUBJECTS[event].format(title=dataset.title),
        body=render_to_string(
            f"catalogue/notifications/{event}.txt", {"dataset": dataset, "actor": actor, **extra}
        ).strip(),
        url=reverse("catalogue:detail", args=[dataset.identifier]),
        organisation=dataset.publisher,
        obj=dataset,
    )


def notify_curators(event: str, dataset: Dataset, *, actor) -> None:
    curators = get_user_model().objects.filter(
        is_active=True,
        memberships__roles__name=Role.CURATOR,
        memberships__organisation__kind=OrganisationKind.PLATFORM,
    )
    _notify(event, dataset, curators.distinct(), actor)


def notify_stewards(event: str, dataset: Dataset, *, actor) -> None:
    stewards = get_user_model().objects.filter(
        is_active=True,
        memberships__organisation_id=dataset.publisher_id,
        memberships__roles__name=Role.DATA_STEWARD,
    )
    _notify(event, dataset, stewards.distinct(), actor)


def notify_overdue(dataset: Dataset, freshness) -> None:
    """The agreed update interval ran out: the publisher's data stewards and site admins."""
    users = get_user_model().objects.filter(
        is_active=True,
        memberships__organisation_id=dataset.publisher_id,
        memberships__roles__name__in=[Role.DATA_STEWARD, Role.SITE_ADMIN],
    )
    _notify("overdue", dataset, users.distinct(), None, freshness=freshness)
