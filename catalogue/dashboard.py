"""Catalogue sections of the dashboard: a steward's drafts, a curator's review queue."""

from __future__ import annotations

from django.urls import reverse

from accounts.dashboard import Item, Section

from . import permissions
from .models import Dataset, Status


def _url(dataset: Dataset, suffix: str = "?view=draft") -> str:
    return reverse("catalogue:detail", args=[dataset.identifier]) + suffix


def sections(user) -> list[Section]:
    result = []
    steward_orgs = permissions.steward_org_ids(user)
    if steward_orgs:
        open_items = (
            permissions.restrict(Dataset.objects.all(), user, "steward")
            .filter(status__in=[Status.DRAFT, Status.CHANGES_REQUESTED])
            .select_related("publisher")
            .order_by("-status", "-updated_at")[:10]
        )
        result.append(
            Section(
                "Dataset drafts",
                [
                    Item(
                        d.title,
                        _url(d),
                        "Changes requested by a curator"
                        if d.status == Status.CHANGES_REQUESTED
                        else f"Draft of {d.publisher.name}",
                    )
                    for d in open_items
                ],
                "No dataset draft is waiting for you.",
                order=30,
            )
        )
    if permissions.can_review(user):
        queue = (
            permissions.restrict(Dataset.objects.filter(status=Status.SUBMITTED), user, "review")
            .select_related("publisher")
            .order_by("updated_at")[:10]
        )
        result.append(
            Section(
                "Datasets to review",
                [Item(d.title, _url(d), f"Submitted by {d.publisher.name}") for d in queue],
                "No dataset is waiting for review.",
                order=20,
            )
        )
    return result
