"""Reads of the federation app, always through ``permissions``."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Prefetch, QuerySet
from django.utils import timezone

from catalogue import selectors as catalogue_selectors
from optima_node.schemas import AnalysisType

from .models import (
    Analysis,
    AnalysisStatus,
    LinkStatus,
    Node,
    NodeDataset,
    NodeHeartbeat,
    NodeStatus,
    Run,
    RunStatus,
)
from .permissions import restrict

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

    from catalogue.models import Dataset

    User = AbstractBaseUser | AnonymousUser

AVAILABILITY_DAYS = 7


# --- datasets (always through the catalogue's selectors) ---------------------------------------


def _served_ids() -> QuerySet[NodeDataset]:
    return NodeDataset.objects.serving().values("dataset_id")


def analysable_datasets(
    *, user: User, access_mode: str = "federated_analytics"
) -> QuerySet[Dataset]:
    """Published datasets the user holds a usable ``access_mode`` entitlement for and an approved
    node serves: what the analysis forms offer (nothing the user could not start)."""
    from governance.selectors import entitled_dataset_ids

    return (
        catalogue_selectors.dataset_list_for_user(
            user=user,
            ids=entitled_dataset_ids(user=user, access_mode=access_mode),
            published_only=True,
        )
        .filter(pk__in=_served_ids())
        .order_by("title", "pk")
    )


def analysis_datasets_by_ids(*, user: User, ids: Iterable[int]) -> dict[int, Dataset]:
    """The datasets among ``ids`` an analysis may name: published ones the user can see. Unknown
    and invisible ids are both absent (the caller answers the same for both)."""
    return catalogue_selectors.dataset_list_by_ids(user=user, ids=ids, published_only=True)


def stewarded_served_datasets(*, user: User) -> QuerySet[Dataset]:
    """Datasets the user stewards that an approved node serves (the metadata refresh)."""
    return (
        catalogue_selectors.dataset_list_for_user(user=user, action="edit")
        .filter(pk__in=_served_ids())
        .order_by("title", "pk")
    )


def analysis_list(*, user: User) -> QuerySet[Analysis]:
    return restrict(
        Analysis.objects.select_related("researcher")
        .annotate(run_count=Count("runs"))
        .order_by("-created_at"),
        user,
    )


def analysis_get_for_user(*, user: User, pk: int, action: str = "view") -> Analysis:
    from accounts.permissions import get_for_user_or_404

    runs = Run.objects.select_related("node__organisation").order_by(
        "round", "node__organisation__name", "node__name"
    )
    qs = restrict(
        Analysis.objects.select_related("researcher").prefetch_related(Prefetch("runs", runs)),
        user,
        action,
    )
    return get_for_user_or_404(qs, pk=pk)


def node_list(*, user: User, action: str = "view") -> QuerySet[Node]:
    return restrict(Node.objects.select_related("organisation"), user, action)


def node_get_for_user(*, user: User, pk: int, action: str = "view") -> Node:
    from accounts.permissions import get_for_user_or_404

    return get_for_user_or_404(node_list(user=user, action=action), pk=pk)


def node_metrics(nodes: list[Node], *, now: datetime | None = None) -> dict[int, dict[str, Any]]:
    """Seven-day availability and median turnaround per node, in two queries for the whole list."""
    now = now or timezone.now()
    since = now - timedelta(days=AVAILABILITY_DAYS)
    ids = [n.pk for n in nodes]
    minutes = dict(
        NodeHeartbeat.objects.filter(node_id__in=ids, minute__gte=since)
        .values("node_id")
        .annotate(n=Count("pk"))
        .values_list("node_id", "n")
    )
    turnarounds: dict[int, list[float]] = {}
    for node_id, created, answered in Run.objects.filter(
        node_id__in=ids, answered_at__isnull=False, answered_at__gte=since
    ).values_list("node_id", "created_at", "answered_at"):
        turnarounds.setdefault(node_id, []).append((answered - created).total_seconds())
    out = {}
    for node in nodes:
        start = max(since, node.approved_at or node.created_at)
        window = max((now - start).total_seconds() / 60.0, 1.0)
        seen = minutes.get(node.pk, 0)
        availability = min(1.0, seen / window) if node.first_seen_at else None
        times = turnarounds.get(node.pk)
        out[node.pk] = {
            "availability": availability,
            "median_turnaround_seconds": statistics.median(times) if times else None,
            "liveness": node.liveness(now),
        }
    return out


def review_queue(*, user: User) -> QuerySet[Run]:
    """Runs at the user's nodes waiting for their approval or release."""
    return restrict(
        Run.objects.filter(
            status__in=(RunStatus.AWAITING_APPROVAL, RunStatus.AWAITING_RELEASE)
        ).select_related("analysis__researcher", "node__organisation"),
        user,
        "review",
    ).order_by("deadline")


def run_get_for_review(*, user: User, pk: int) -> Run:
    from accounts.permissions import get_for_user_or_404

    return get_for_user_or_404(
        restrict(
            Run.objects.select_related("analysis__researcher", "node__organisation"),
            user,
            "review",
        ),
        pk=pk,
    )


# --- which node serves a dataset ---------------------------------------------------------------


def node_choices(*, organisation_ids: Iterable[int]) -> QuerySet[Node]:
    """The approved nodes of these organisations: what a steward may choose for a dataset."""
    return (
        Node.objects.filter(organisation_id__in=list(organisation_ids), status=NodeStatus.APPROVED)
        .select_related("organisation")
        .order_by("organisation__name", "name")
    )


def dataset_links(*, dataset: Dataset) -> list[NodeDataset]:
    return list(
        NodeDataset.objects.filter(dataset=dataset)
        .select_related("node__organisation")
        .order_by("node__name")
    )


def proposed_links(*, user: User) -> QuerySet[NodeDataset]:
    """Links stewards proposed at nodes the user manages: the site admin's confirmation tasks."""
    return (
        NodeDataset.objects.filter(
            status=LinkStatus.PROPOSED,
            node__in=restrict(Node.objects.filter(status=NodeStatus.APPROVED), user, "manage"),
        )
        .select_related("node", "dataset")
        .order_by("created_at")
    )


def not_analysable_reasons(
    *, user: User, dataset: Dataset, access_mode: str = "federated_analytics"
) -> dict[str, str]:
    """Why ``user`` cannot analyse ``dataset`` (empty: they can), by cause, in the researcher's
    words: ``not_published``, ``not_served``, ``awaiting_confirmation``, ``no_entitlement``."""
    from governance.selectors import missing_entitlements

    reasons = {}
    if not dataset.is_public:
        reasons["not_published"] = "not published"
    links = [link for link in dataset_links(dataset=dataset) if link.node.is_active]
    if not any(link.status == LinkStatus.CONFIRMED for link in links):
        waiting = [link.node.name for link in links if link.status == LinkStatus.PROPOSED]
        if waiting:
            reasons["awaiting_confirmation"] = (
                f"its node ({', '.join(waiting)}) awaits the site admin's confirmation"
            )
        else:
            reasons["not_served"] = "not served by any node yet"
    if missing_entitlements(user=user, datasets=[dataset], access_mode=access_mode):
        reasons["no_entitlement"] = "no entitlement for federated analytics: request access"
    return reasons


def entitled_but_not_analysable(
    *, user: User, access_mode: str = "federated_analytics"
) -> list[tuple[Dataset, dict[str, str]]]:
    """Datasets the user holds an entitlement for that analyses cannot use yet, with why."""
    from governance.selectors import entitled_dataset_ids

    analysable = analysable_datasets(user=user, access_mode=access_mode).values("pk")
    entitled = (
        catalogue_selectors.dataset_list_for_user(
            user=user, ids=entitled_dataset_ids(user=user, access_mode=access_mode)
        )
        .exclude(pk__in=analysable)
        .order_by("title", "pk")
    )
    return [
        (d, not_analysable_reasons(user=user, dataset=d, access_mode=access_mode)) for d in entitled
    ]


def profile_attach_targets(*, user: User, analysis: Analysis) -> QuerySet[Dataset]:
    """The datasets of a completed, whole database profile that ``user`` may attach it to."""
    profile = AnalysisType.DATABASE_PROFILE.value
    if analysis.type != profile or analysis.status != AnalysisStatus.COMPLETED or analysis.partial:
        return catalogue_selectors.dataset_list_for_user(user=user, action="edit").none()
    return (
        catalogue_selectors.dataset_list_for_user(user=user, action="edit")
        .filter(pk__in=analysis.datasets.values("pk"))
        .order_by("title", "pk")
    )
