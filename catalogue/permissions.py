"""The catalogue's one access choke point.

- ``view``: anyone sees listed (published, not retired) datasets; members of the publisher and
  curators also see drafts, submitted and retired ones. Everyone else gets a 404.
- ``edit``: data stewards of the publisher (the working copy, restore, submit).
- ``review``: curators (request changes, publish, retire).
- ``working_copy``: members of the publisher and curators see drafts and submitted working copies.
- ``steward``: data stewards of the publisher, retired datasets included (their own list).

Search entries are the published face, the same for everyone.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts import permissions as base
from accounts.models import Organisation, Role

from .models import Dataset, SearchEntry, Status

_CURATOR_ATTR = "_optima_is_curator"


def is_curator(user) -> bool:
    """accounts.permissions.is_curator, remembered on the user object for the request."""
    if not getattr(user, "is_authenticated", False):
        return False
    cached = getattr(user, _CURATOR_ATTR, None)
    if cached is None:
        cached = base.is_curator(user)
        setattr(user, _CURATOR_ATTR, cached)
    return cached


PUBLIC = Q(current_version__isnull=False) & ~Q(status=Status.RETIRED)


def _view(qs: QuerySet, user) -> QuerySet:
    if is_curator(user):
        return qs
    orgs = base.member_org_ids(user)
    return qs.filter(PUBLIC | Q(publisher_id__in=orgs)) if orgs else qs.filter(PUBLIC)


def _edit(qs: QuerySet, user) -> QuerySet:
    orgs = base.org_ids_with_role(user, Role.DATA_STEWARD)
    return qs.filter(publisher_id__in=orgs).exclude(status=Status.RETIRED)


def _review(qs: QuerySet, user) -> QuerySet:
    return qs if is_curator(user) else qs.none()


def _working_copy(qs: QuerySet, user) -> QuerySet:
    if is_curator(user):
        return qs
    return qs.filter(publisher_id__in=base.member_org_ids(user))


def _steward(qs: QuerySet, user) -> QuerySet:
    return qs.filter(publisher_id__in=base.org_ids_with_role(user, Role.DATA_STEWARD))


def _everyone(qs: QuerySet, user) -> QuerySet:
    return qs


restrict = base.ModelRestrictor(
    {
        Dataset: base.Restrictor(
            {
                "view": _view,
                "edit": _edit,
                "review": _review,
                "working_copy": _working_copy,
                "steward": _steward,
            },
            # Staff are curators already (accounts.permissions.is_curator); editing and the
            # stewards' own list stay with stewards.
            admin_bypass_excluded={"edit", "steward"},
        ),
        # Entries exist only for listed versions: nothing to filter, but every search passes here.
        SearchEntry: base.Restrictor({"view": _everyone}),
    }
)
allows = restrict.allows


def can_create_for(user, organisation: Organisation | int) -> bool:
    return base.has_role(user, organisation, Role.DATA_STEWARD)


def steward_org_ids(user) -> set[int]:
    return base.org_ids_with_role(user, Role.DATA_STEWARD)


def can_review(user) -> bool:
    return is_curator(user)
