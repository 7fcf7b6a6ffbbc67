"""The federation app's one access choke point.

- Nodes: site and organisation admins of the node's organisation see them; site admins manage
  them (register, rotate, revoke); only platform admins approve.
- Analyses: the researcher who started one sees and cancels it; platform admins see all.
- Runs: site admins of the node's organisation review them (approval and release gates); this is
  never bypassed by platform admins, because a hospital's release decision is the hospital's.
- FLARE jobs: the researcher sees and aborts one; site admins of a participating node's
  organisation see it and decide its release; platform admins (reviewers) see and release all.
- Trained models (the registry): every signed-in user sees the entries; the download needs an
  active federated-learning entitlement on every training dataset (flare.services.can_download).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet

from accounts.models import Role
from accounts.permissions import (
    ModelRestrictor,
    Restrictor,
    has_any_role,
    has_role,
    is_platform_admin,
    org_ids_with_role,
)

from .models import Analysis, FlJob, Node, Run, TrainedModel

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


def _nothing(qs: QuerySet, user: User) -> QuerySet:
    return qs.none()


def _own_analyses(qs: QuerySet, user: User) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    return qs.filter(researcher=user)


def _run_view(qs: QuerySet, user: User) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    return qs.filter(
        Q(analysis__researcher=user) | Q(node__organisation_id__in=_site_admin_orgs(user))
    )


def _run_review(qs: QuerySet, user: User) -> QuerySet:
    return qs.filter(node__organisation_id__in=_site_admin_orgs(user))


def _authenticated(user: User) -> bool:
    return bool(getattr(user, "is_authenticated", False))


def _fl_job_view(qs: QuerySet, user: User) -> QuerySet:
    if not _authenticated(user):
        return qs.none()
    orgs = org_ids_with_role(user, Role.SITE_ADMIN)
    return qs.filter(Q(analysis__researcher=user) | Q(nodes__organisation_id__in=orgs)).distinct()


def _fl_job_abort(qs: QuerySet, user: User) -> QuerySet:
    return qs.filter(analysis__researcher=user) if _authenticated(user) else qs.none()


def _fl_job_release(qs: QuerySet, user: User) -> QuerySet:
    if not _authenticated(user):
        return qs.none()
    return qs.filter(nodes__organisation_id__in=org_ids_with_role(user, Role.SITE_ADMIN)).distinct()


def _signed_in(qs: QuerySet, user: User) -> QuerySet:
    return qs if _authenticated(user) else qs.none()


restrict = ModelRestrictor(
    {
        Node: Restrictor({"view": _node_view, "manage": _node_manage, "approve": _nothing}),
        Analysis: Restrictor({"view": _own_analyses, "cancel": _own_analyses}),
        Run: Restrictor(
            {"view": _run_view, "review": _run_review}, admin_bypass_excluded={"review"}
        ),
        FlJob: Restrictor(
            {"view": _fl_job_view, "abort": _fl_job_abort, "release": _fl_job_release}
        ),
        TrainedModel: Restrictor({"view": _signed_in}),
    }
)
allows = restrict.allows


def can_register_node(user: User, organisation: Organisation) -> bool:
    return is_platform_admin(user) or has_role(user, organisation, Role.SITE_ADMIN)


def sees_node_registry(user: User) -> bool:
    return is_platform_admin(user) or has_any_role(user, Role.SITE_ADMIN, Role.ORG_ADMIN)


def reviews_runs(user: User) -> bool:
    return has_any_role(user, Role.SITE_ADMIN)
