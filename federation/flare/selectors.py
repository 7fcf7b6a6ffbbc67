"""Reads of federated learning, through one choke point (:data:`restrict_fl_jobs`).

- A FLARE job: its researcher sees and aborts it; site admins of a participating node's
  organisation see it and decide its release; platform admins (reviewers) see and release all.
- The model registry: every signed-in user sees the entries (name, card, metrics); the download
  needs an active federated-learning entitlement on every training dataset (services.can_download).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Prefetch, Q, QuerySet

from accounts.models import Role
from accounts.permissions import Restrictor, get_for_user_or_404, org_ids_with_role

from ..models import FlJob, FlJobStatus, Node, TrainedModel

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

    User = AbstractBaseUser | AnonymousUser


def _authenticated(user: User) -> bool:
    return bool(getattr(user, "is_authenticated", False))


def _view(qs: QuerySet[FlJob], user: User) -> QuerySet[FlJob]:
    if not _authenticated(user):
        return qs.none()
    orgs = org_ids_with_role(user, Role.SITE_ADMIN)
    return qs.filter(Q(analysis__researcher=user) | Q(nodes__organisation_id__in=orgs)).distinct()


def _abort(qs: QuerySet[FlJob], user: User) -> QuerySet[FlJob]:
    return qs.filter(analysis__researcher=user) if _authenticated(user) else qs.none()


def _release(qs: QuerySet[FlJob], user: User) -> QuerySet[FlJob]:
    if not _authenticated(user):
        return qs.none()
    return qs.filter(nodes__organisation_id__in=org_ids_with_role(user, Role.SITE_ADMIN)).distinct()


restrict_fl_jobs = Restrictor({"view": _view, "abort": _abort, "release": _release})


def _base() -> QuerySet[FlJob]:
    return FlJob.objects.select_related("analysis__researcher", "trained_model").prefetch_related(
        Prefetch("nodes", Node.objects.select_related("organisation")),
        "analysis__datasets",
    )


def fl_job_list(*, user: User, action: str = "view") -> QuerySet[FlJob]:
    return restrict_fl_jobs(_base(), user, action).order_by("-created_at")


def fl_job_get(*, user: User, pk: int | str, action: str = "view") -> FlJob:
    return get_for_user_or_404(fl_job_list(user=user, action=action), pk=pk)


def release_queue(*, user: User) -> QuerySet[FlJob]:
    return fl_job_list(user=user, action="release").filter(status=FlJobStatus.AWAITING_RELEASE)


def model_list(*, user: User) -> QuerySet[TrainedModel]:
    if not _authenticated(user):
        return TrainedModel.objects.none()
    return TrainedModel.objects.select_related("fl_job__analysis", "released_by").prefetch_related(
        "datasets"
    )


def model_get(*, user: User, pk: int | str) -> TrainedModel:
    return get_for_user_or_404(model_list(user=user), pk=pk)
