"""The CDS app's one access choke point.

- Pathways (active versions) are public to every logged-in user; drafts, retired versions and the
  pathway admin pages are for staff (platform admins).
- An evaluation is visible to the person who made it and to platform admins; anyone else gets 404.
"""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.permissions import ModelRestrictor, Restrictor, is_platform_admin

from .models import Evaluation, HookFeedback, Pathway, PathwayVersion, PathwayVersionStatus


def _nothing(queryset: QuerySet, user) -> QuerySet:
    return queryset.none()


def _logged_in(queryset: QuerySet, user) -> QuerySet:
    return queryset if getattr(user, "is_authenticated", False) else queryset.none()


def _active_versions(queryset: QuerySet, user) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return queryset.none()
    return queryset.filter(status=PathwayVersionStatus.ACTIVE)


def _own(queryset: QuerySet, user) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return queryset.none()
    return queryset.filter(user=user)


def _own_feedback(queryset: QuerySet, user) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return queryset.none()
    return queryset.filter(evaluation__user=user)


# Every read of a CDS object goes through here; platform admins see everything.
restrict = ModelRestrictor(
    {
        Pathway: Restrictor({"view": _logged_in, "manage": _nothing}),
        PathwayVersion: Restrictor({"view": _active_versions, "manage": _nothing}),
        # "evaluate" is the same rule as "view": only the author may add an opinion to their advice.
        Evaluation: Restrictor({"view": _own, "evaluate": _own}),
        HookFeedback: Restrictor({"view": _own_feedback}),
    }
)
allows = restrict.allows


def can_manage_pathways(user) -> bool:
    return is_platform_admin(user)
