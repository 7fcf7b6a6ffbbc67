"""Feedback sections of the personal dashboard."""

from __future__ import annotations

from django.urls import reverse

from accounts.dashboard import Item, Section

from . import permissions
from .models import OPEN_STATUSES, FeedbackItem, Status


def sections(user) -> list[Section]:
    if not getattr(user, "is_authenticated", False):
        return []
    result = []
    if permissions.is_platform_team(user):
        waiting = (
            FeedbackItem.objects.filter(status__in=[Status.NEW, Status.REOPENED])
            .select_related("site")
            .order_by("created_at")[:10]
        )
        result.append(
            Section(
                "Feedback to triage",
                [
                    Item(
                        f"#{i.pk} {i.title}",
                        i.get_absolute_url(),
                        f"{i.site.name}, {i.get_status_display().lower()}",
                    )
                    for i in waiting
                ]
                + [Item("Feedback dashboard", reverse("feedback:dashboard"))],
                "No feedback waits for triage.",
                order=40,
            )
        )
        mine = (
            FeedbackItem.objects.filter(
                assignee=user, status__in=[Status.TRIAGED, Status.IN_PROGRESS]
            )
            .select_related("site")
            .order_by("created_at")[:10]
        )
        result.append(
            Section(
                "Feedback assigned to you",
                [
                    Item(f"#{i.pk} {i.title}", i.get_absolute_url(), i.get_status_display())
                    for i in mine
                ],
                "Nothing is assigned to you.",
                order=41,
            )
        )
    if permissions.test_site_ids(user):
        own = FeedbackItem.objects.filter(author=user).order_by("-updated_at")[:5]
        result.append(
            Section(
                "Your feedback",
                [
                    Item(
                        f"#{i.pk} {i.title}",
                        i.get_absolute_url(),
                        i.get_status_display() + ("" if i.status in OPEN_STATUSES else " (closed)"),
                    )
                    for i in own
                ]
                + [Item("Give feedback", reverse("feedback:new"))],
                "You have not given feedback yet.",
                order=60,
            )
        )
    return result
