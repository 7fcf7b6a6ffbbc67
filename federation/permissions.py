"""The federation app's one access choke point.

- Nodes: site and organisation admins of the node's organisation see them; site admins manage
  them (register, rotate, revoke); only platform admins approve.
- Analyses: the researcher who started one sees and cancels it; platform admins see all.
- Runs: site admins of the node's organisation review them (approval and release gates); this is
  never bypassed by platform admins, because a hospital's release decision is the hospital's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet

from accounts.models import Role
from accounts.permissions import (
    Restrictor,
    has_any_role,
    has_role,
    is_platform_admin,
    org_ids_with_role,
)

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

    from accounts.models import Organisation

    User = AbstractBaseUser | AnonymousUser


def _site_admin_orgs(user: User) -> set[int]:
    return org_ids_with_role(user, Role.SITE_ADMIN)


def _node_view(qs: QuerySet, user: User) -> QuerySet:
    return qs.filter(organisation_id__in=org_ids_with_role(user, Role.SITE_ADMIN, Role.ORG_ADMIN))


def _node_manage(qs: QuerySet, user: User) -> QuerySet:
    return qs.filter(organisation_id__in=_site_admin_orgs(user))


restrict_nodes = Restrictor(
    {"view": _node_view, "manage": _node_manage, "approve": lambda qs, user: qs.none()}
)


def _own_analyses(qs: QuerySet, user: User) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    return qs.filter(researcher=user)


restrict_analyses = Restrictor({"view": _own_analyses, "cancel": _own_analyses})


def _run_view(qs: QuerySet, user: User) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    return qs.filter(
        Q(analysis__researcher=user) | Q(node__organisation_id__in=_site_admin_orgs(user))
    )


def _run_review(qs: QuerySet, user: User) -> QuerySet:
    return qs.filter(node__organisation_id__in=_site_admin_orgs(user))


restrict_runs = Restrictor(
    {"view": _run_view, "review": _run_review}, admin_bypass_excluded={"review"}
)


def can_register_node(user: User, organisation: Organisation) -> bool:
    return is_platform_admin(user) or has_role(user, organisation, Role.SITE_ADMIN)


def sees_node_registry(user: User) -> bool:
    return is_platform_admin(user) or has_any_role(user, Role.SITE_ADMIN, Role.ORG_ADMIN)


def reviews_runs(user: User) -> bool:
    return has_any_role(user, Role.SITE_ADMIN)
