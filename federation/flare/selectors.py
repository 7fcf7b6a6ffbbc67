"""Reads of federated learning, through the federation app's one choke point
(:data:`federation.permissions.restrict`, which holds the rules for FLARE jobs and trained models)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Prefetch, QuerySet

from accounts.permissions import get_for_user_or_404

from ..models import FlJob, FlJobStatus, Node, TrainedModel
from ..permissions import restrict

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

    User = AbstractBaseUser | AnonymousUser


def _base() -> QuerySet[FlJob]:
    return FlJob.objects.select_related("analysis__researcher", "trained_model").prefetch_related(
        Prefetch("nodes", Node.objects.select_related("organisation")),
        "analysis__datasets",
    )


def fl_job_list(*, user: User, action: str = "view") -> QuerySet[FlJob]:
    return restrict(_base(), user, action).order_by("-created_at")


def fl_job_get(*, user: User, pk: int | str, action: str = "view") -> FlJob:
    return get_for_user_or_404(fl_job_list(user=user, action=action), pk=pk)


def release_queue(*, user: User) -> QuerySet[FlJob]:
    return fl_job_list(user=user, action="release").filter(status=FlJobStatus.AWAITING_RELEASE)


def model_list(*, user: User) -> QuerySet[TrainedModel]:
    return restrict(
        TrainedModel.objects.select_related("fl_job__analysis", "released_by").prefetch_related(
            "datasets"
        ),
        user,
    )


def model_get(*, user: User, pk: int | str) -> TrainedModel:
    return get_for_user_or_404(model_list(user=user), pk=pk)
