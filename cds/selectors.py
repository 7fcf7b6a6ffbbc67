"""Reads for the CDS app; every queryset goes through ``cds.permissions.restrict``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Count, Prefetch, QuerySet

from accounts.permissions import get_for_user_or_404

from .models import Evaluation, Pathway, PathwayVersion, PathwayVersionStatus
from .permissions import restrict

if TYPE_CHECKING:
    from uuid import UUID

    from django.contrib.auth.models import User


def pathway_version_list_active(*, user: User) -> QuerySet[PathwayVersion]:
    """The active edition of each pathway the user may use, one query."""
    return (
        restrict(PathwayVersion.objects.all(), user, "view")
        .filter(status=PathwayVersionStatus.ACTIVE)  # admins may view every version
        .select_related("pathway")
        .order_by("pathway__disease", "pathway__slug")
    )


def pathway_version_get_active(*, user: User, slug: str) -> PathwayVersion:
    return get_for_user_or_404(pathway_version_list_active(user=user), pathway__slug=slug)


def evaluation_list_own(*, user: User, limit: int | None = 20) -> QuerySet[Evaluation]:
    """The evaluations ``user`` made, newest first: what "your evaluations" lists, for a platform
    admin too (who may open anyone's, but whose own lists show their own)."""
    queryset = (
        restrict(Evaluation.objects.all(), user, "view")
        .filter(user_id=getattr(user, "pk", None))
        .select_related("pathway_version__pathway")
        .order_by("-created_at")
    )
    return queryset[:limit] if limit else queryset


def evaluation_get_for_user(*, user: User, pk: UUID | str, action: str = "view") -> Evaluation:
    queryset = restrict(Evaluation.objects.all(), user, action).select_related(
        "pathway_version__pathway", "user"
    )
    return get_for_user_or_404(queryset, pk=pk)


def pathway_admin_list(*, user: User) -> QuerySet[Pathway]:
    """Every pathway with all its versions (staff only), in two queries."""
    versions = PathwayVersion.objects.annotate(evaluation_count=Count("evaluations")).order_by(
        "-loaded_at", "-pk"
    )
    return restrict(Pathway.objects.all(), user, "manage").prefetch_related(
        Prefetch("versions", queryset=versions)
    )


def pathway_admin_get(*, user: User, slug: str) -> Pathway:
    return get_for_user_or_404(pathway_admin_list(user=user), slug=slug)


def pathway_version_admin_get(*, user: User, pk: int) -> PathwayVersion:
    queryset = restrict(PathwayVersion.objects.all(), user, "manage").select_related("pathway")
    return get_for_user_or_404(queryset, pk=pk)
