"""The catalogue's one access choke point.

- ``view``: anyone sees listed (published, not retired) datasets; members of the publisher and
  curators also see drafts, submitted and retired ones. Everyone else gets a 404.
- ``edit``: data stewards of the publisher (the working copy, restore, submit).
- ``review``: curators (request changes, publish, retire).
- ``working_copy``: members of the publisher and curators see drafts and submitted working copies.
- ``steward``: data stewards of the publisher, retired datasets included (their own list).

- ``federated_analytics``, ``federated_learning``, ``central_copy`` (the access modes): the
  datasets on which ``user`` holds the django-guardian object permission for that mode. Governance
  writes those permissions exactly while an entitlement is active and reads them back here (its
  entitlement checks ask this restrict too); platform admins get no bypass.

Search entries are the published face, the same for everyone.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from accounts import permissions as base
from accounts.models import Organisation, Role

from .models import PERMISSION_FOR_MODE, Dataset, SearchEntry, Status

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


def _object_permission(permission: str):
    def rule(qs: QuerySet, user) -> QuerySet:
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return qs.none()
        # One subquery on guardian's table: direct grants only (no groups, no global permissions).
        return get_objects_for_user(
            user,
            permission,
            klass=qs,
            use_groups=False,
            with_superuser=False,
            accept_global_perms=False,
        )

    return rule


restrict = base.ModelRestrictor(
    {
        Dataset: base.Restrictor(
            {
                "view": _view,
                "edit": _edit,
                "review": _review,
                "working_copy": _working_copy,
                "steward": _steward,
                **{mode: _object_permission(perm) for mode, perm in PERMISSION_FOR_MODE.items()},
            },
            # Staff are curators already (accounts.permissions.is_curator); editing, the stewards'
            # own list and the use of data (an entitlement each) stay with those who hold them.
            admin_bypass_excluded={"edit", "steward", *PERMISSION_FOR_MODE},
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
