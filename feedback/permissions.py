"""The feedback app's one access choke point.

An item is seen by its author, its site (the author's organisation) and the platform team (staff
users and members of the platform-operator organisation). A shared item is also seen by the people
of the other test sites, who may comment on it and vote for it. Attachments follow the item.
Workflow changes (triage, start, resolve, won't fix, duplicate) are the platform team's; the author
and the platform team may reopen. Everything else answers 404.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts import permissions as base
from accounts.models import Organisation, OrganisationKind

from .models import Attachment, FeedbackItem

_CACHE_ATTR = "_optima_feedback_facts"


def _facts(user) -> tuple[bool, frozenset[int]]:
    """(is platform team, ids of the test sites the user belongs to), one query per user object."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False, frozenset()
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        org_ids = base.member_org_ids(user)
        rows = (
            Organisation.objects.filter(pk__in=org_ids).values_list("pk", "kind", "is_test_site")
            if org_ids
            else []
        )
        team = base.is_platform_admin(user) or any(
            kind == OrganisationKind.PLATFORM for _, kind, _ in rows
        )
        cached = (team, frozenset(pk for pk, _, test in rows if test))
        setattr(user, _CACHE_ATTR, cached)
    return cached


def is_platform_team(user) -> bool:
    return _facts(user)[0]


def test_site_ids(user) -> frozenset[int]:
    """The implementation test sites ``user`` belongs to (the sites they may report for)."""
    return _facts(user)[1]


def can_give_feedback(user) -> bool:
    return bool(test_site_ids(user)) or is_platform_team(user)


def _visible(queryset: QuerySet, user) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return queryset.none()
    if is_platform_team(user):
        return queryset
    own = Q(author=user) | Q(site_id__in=base.member_org_ids(user))
    if test_site_ids(user):
        own |= Q(shared=True)
    return queryset.filter(own)


def _team_only(queryset: QuerySet, user) -> QuerySet:
    return queryset if is_platform_team(user) else queryset.none()


def _author_or_team(queryset: QuerySet, user) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return queryset.none()
    if is_platform_team(user):
        return queryset
    return queryset.filter(author=user)


def _site_or_team(queryset: QuerySet, user) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return queryset.none()
    if is_platform_team(user):
        return queryset
    return queryset.filter(Q(author=user) | Q(site_id__in=base.member_org_ids(user)))


_items = base.Restrictor(
    {
        "view": _visible,
        "comment": _visible,
        "vote": _visible,
        "download": _visible,
        "export": _visible,
        "attach": _site_or_team,
        "edit": _author_or_team,
        "reopen": _author_or_team,
        "triage": _team_only,
        "dashboard": _team_only,
    }
)


def _attachments(action: str):
    def rule(queryset: QuerySet, user) -> QuerySet:
        return queryset.filter(item__in=_items(FeedbackItem.objects.all(), user, action))

    return rule


# Attachments follow their item ("view" and "download" are the item's "download").
restrict = base.ModelRestrictor(
    {
        FeedbackItem: _items,
        Attachment: base.Restrictor({"view": _attachments("download")}),
    }
)


def allows(item, user, action: str) -> bool:
    """Whether ``user`` may do ``action`` on one item already loaded, without a query: the same
    rules as :data:`restrict` (``tests/feedback/test_allows_matches_restrict.py`` holds them equal),
    evaluated in memory because lists ask it for every row and every transition."""
    if not getattr(user, "is_authenticated", False):
        return False
    team = is_platform_team(user)
    if action == "triage" or action == "dashboard":
        return team
    if team:
        return True
    is_author = item.author_id == user.pk
    in_site = item.site_id in base.member_org_ids(user)
    if action in ("edit", "reopen"):
        return is_author
    if action == "attach":
        return is_author or in_site
    if action in ("view", "comment", "vote", "download", "export"):
        return is_author or in_site or (item.shared and bool(test_site_ids(user)))
    raise ValueError(f"unknown action {action!r}")
