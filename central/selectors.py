"""Reads of the central app, each through ``permissions.restrict``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from accounts.permissions import get_for_user_or_404
from catalogue import selectors as catalogue_selectors
from catalogue.models import AccessMode, Dataset

from . import permissions
from .models import DatasetVersion, Upload, VersionStatus

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
