"""The clinician's recent evaluations; for platform admins, pathway versions that need attention."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone

from accounts.dashboard import Item, Section

from . import selectors
from .models import PathwayVersion, PathwayVersionStatus
from .permissions import can_manage_pathways, restrict


def sections(user) -> list[Section]:
    if not getattr(user, "is_authenticated", False):
        return []
    evaluations = selectors.evaluation_list_own(user=user, limit=5)
    result = [
        Section(
            "Decision support: your recent evaluations",
            [
                Item(
                    f"{e.pathway_version.pathway.slug}: {e.label}",
                    e.get_absolute_url(),
                    # the portal's time zone, as on every page (stated in the footer)
                    timezone.localtime(e.created_at).strftime("%Y-%m-%d %H:%M"),
                )
                for e in evaluations
            ]
            + [Item("Evaluate a pathway", reverse("cds:home"))],
            order=60,
        )
    ]
    if can_manage_pathways(user):
        drafts = (
            restrict(PathwayVersion.objects.all(), user, "manage")
            .filter(status=PathwayVersionStatus.DRAFT)
            .select_related("pathway")[:10]
        )
        result.append(
            Section(
                "Pathway versions waiting (draft)",
                [
                    Item(
                        str(v),
                        reverse("cds:manage"),
                        "self-tests fail" if v.self_test_failures else "ready to activate",
                    )
                    for v in drafts
                ],
                "No draft pathway version.",
                order=85,
            )
        )
    return result
