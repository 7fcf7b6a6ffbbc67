"""The ground every app's access control stands on.

Roles come from memberships (a role is held *in* an organisation); object-level grants come from
django-guardian. Each domain app has its own ``permissions.py`` with ``restrict(queryset, user,
action)`` built from these helpers, and every view, API view and export goes through it. Objects a
user may not see answer 404, never 403, so an id reveals nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.core.exceptions import ValidationError
from django.db import DataError
from django.db.models import Model, QuerySet
from django.http import Http404

from .models import Organisation, OrganisationKind, Role
from .roles import forget_roles as forget_roles  # re-exported: callers use permissions.<name>
from .roles import roles_by_org as roles_by_org


def is_platform_admin(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active and user.is_staff)


def member_org_ids(user) -> set[int]:
    return set(roles_by_org(user))


def org_ids_with_role(user, *roles: str) -> set[int]:
    wanted = set(roles)
    return {org for org, held in roles_by_org(user).items() if held & wanted}


def has_role(user, organisation: Organisation | int | None, *roles: str) -> bool:
    if organisation is None:
        return False
    org_id = organisation if isinstance(organisation, int) else organisation.pk
    return bool(roles_by_org(user).get(org_id, frozenset()) & set(roles))


def has_any_role(user, *roles: str) -> bool:
    return bool(org_ids_with_role(user, *roles))


def is_curator(user) -> bool:
    """Curators review the catalogue: a platform role held in the platform operator organisation."""
    if is_platform_admin(user):
        return True
    org_ids = org_ids_with_role(user, Role.CURATOR)
    return (
        bool(org_ids)
        and Organisation.objects.filter(pk__in=org_ids, kind=OrganisationKind.PLATFORM).exists()
    )


def get_for_user_or_404(restricted: QuerySet, **lookup) -> Model:
    """Fetch one object from an already restricted queryset; anything else is a 404.

    A malformed or out-of-range key (``/items/99999999999999999999999/``) is a 404 too, never a
    server error (found by the API fuzzer: SQLite overflows, PostgreSQL raises a DataError)."""
    try:
        obj = restricted.filter(**lookup).first()
    except (TypeError, ValueError, OverflowError, ValidationError, DataError) as exc:
        raise Http404("No such object.") from exc
    if obj is None:
        raise Http404("No such object.")
    return obj


class Restrictor:
    """Maps ``action`` names to queryset filters for one model: an app's single choke point.

    ``rules`` maps an action to ``f(queryset, user) -> queryset``. Platform administrators see
    everything unless an action is listed in ``admin_bypass_excluded``.
    """

    def __init__(
        self,
        rules: dict[str, Callable[[QuerySet, object], QuerySet]],
        *,
        admin_bypass_excluded: Iterable[str] = (),
    ) -> None:
        self.rules = rules
        self.admin_bypass_excluded = set(admin_bypass_excluded)

    def __call__(self, queryset: QuerySet, user, action: str = "view") -> QuerySet:
        if action not in self.rules:
            raise ValueError(f"unknown action {action!r}; known: {sorted(self.rules)}")
        if is_platform_admin(user) and action not in self.admin_bypass_excluded:
            return queryset
        return self.rules[action](queryset, user)
