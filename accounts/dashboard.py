"""The dashboard lists each person's next actions, gathered from every app.

An app contributes by defining ``sections(user) -> list[Section]`` in its own ``dashboard.py``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from django.urls import reverse

from . import permissions
from .models import Invitation, Role

APPS = ("accounts", "catalogue", "governance", "federation", "central", "cds", "feedback")


@dataclass
class Item:
    label: str
    url: str = ""
    detail: str = ""


@dataclass
class Section:
    title: str
    items: list[Item] = field(default_factory=list)
    empty_text: str = "Nothing to do here."
    order: int = 50


def sections(user) -> list[Section]:
    org_admin_orgs = permissions.org_ids_with_role(user, Role.ORG_ADMIN)
    result = []
    if org_admin_orgs:
        pending = Invitation.objects.filter(
            organisation_id__in=org_admin_orgs, accepted_at__isnull=True
        ).select_related("organisation")[:10]
        result.append(
            Section(
                "Open invitations",
                [
                    Item(
                        f"{inv.email}",
                        reverse("accounts:organisation", args=[inv.organisation.slug]),
                        f"to {inv.organisation.name}",
                    )
                    for inv in pending
                ],
                "No invitation is waiting for an answer.",
                order=90,
            )
        )
    return result


def collect(user) -> list[Section]:
    gathered: list[Section] = []
    for label in APPS:
        try:
            module = importlib.import_module(f"{label}.dashboard")
        except ModuleNotFoundError:
            continue
        gathered.extend(module.sections(user))
    return sorted(gathered, key=lambda s: s.order)
