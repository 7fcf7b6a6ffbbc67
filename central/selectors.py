"""Reads of the central app, each through ``permissions.restrict``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet
from django.http import Http404

from accounts.permissions import get_for_user_or_404
from catalogue import selectors as catalogue_selectors
from catalogue.models import AccessMode, Dataset, Status
from optima_node.policy import Policy

from . import permissions
from .models import CentralNode, CentralPolicy, DatasetVersion, Upload, VersionStatus

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def central_datasets(*, user: User) -> list[Dataset]:
    """The user's stewarded datasets offered as a central copy."""
    return [
        d
        for d in catalogue_selectors.steward_datasets(user=user)
        if AccessMode.CENTRAL_COPY in (d.access_modes or [])
    ]


def upload_list(*, user: User, dataset: Dataset | None = None) -> QuerySet[Upload]:
    qs = permissions.restrict(Upload.objects.select_related("dataset", "uploaded_by"), user)
    return qs.filter(dataset=dataset) if dataset is not None else qs


def upload_get_for_user(*, user: User, pk: object, action: str = "view") -> Upload:
    qs = Upload.objects.select_related("dataset", "dataset__publisher", "uploaded_by")
    return get_for_user_or_404(permissions.restrict(qs, user, action), pk=pk)


def version_list(*, user: User, dataset: Dataset | None = None) -> QuerySet[DatasetVersion]:
    qs = permissions.restrict(DatasetVersion.objects.select_related("dataset", "upload"), user)
    return qs.filter(dataset=dataset) if dataset is not None else qs


def version_get_for_user(*, user: User, pk: object, action: str = "view") -> DatasetVersion:
    qs = DatasetVersion.objects.select_related("dataset", "dataset__publisher", "upload")
    return get_for_user_or_404(permissions.restrict(qs, user, action), pk=pk)


def served_version(*, dataset: Dataset) -> DatasetVersion | None:
    """The version the central node serves (for callers already authorised for the dataset)."""
    return DatasetVersion.objects.filter(dataset=dataset, status=VersionStatus.SERVED).first()


def central_node() -> CentralNode | None:
    """The platform's central node (there is at most one)."""
    return CentralNode.objects.order_by("pk").first()


def policy_of(dataset: Dataset) -> dict:
    """The provider's policy for its central copy; the node's default policy until one is set."""
    try:
        stored = dataset.central_policy  # select_related by served_versions()
    except CentralPolicy.DoesNotExist:
        stored = None
    return stored.policy if stored and stored.policy else Policy().model_dump(mode="json")


def served_versions() -> QuerySet[DatasetVersion]:
    """Every served central copy of a dataset that is not retired (what the central node serves;
    for the central node's credential only)."""
    return (
        DatasetVersion.objects.filter(status=VersionStatus.SERVED)
        .exclude(dataset__status=Status.RETIRED)
        .select_related("dataset__publisher", "dataset__central_policy")
        .order_by("dataset_id")
    )


def dataset_for_policy(*, user: User, pk: object) -> Dataset:
    """A central-copy dataset whose policy the user sets (site admins of its publisher; 404)."""
    dataset = get_for_user_or_404(
        permissions.restrict(Dataset.objects.all(), user, "set_policy"), pk=pk
    )
    if AccessMode.CENTRAL_COPY not in (dataset.access_modes or []):
        raise Http404("No central copy.")
    return dataset
