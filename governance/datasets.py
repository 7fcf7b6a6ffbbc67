"""The few facts about catalogue datasets governance needs, read in one place."""

from __future__ import annotations

from django.db.models import QuerySet

from catalogue import selectors as catalogue_selectors
from catalogue.models import AccessMode, Dataset

ACCESS_MODE_LABELS = dict(AccessMode.choices)


def published() -> object:
    """Datasets readers can see and request (published, not retired)."""
    return catalogue_selectors.dataset_list_published()


def visible_to(user, *, ids=None, published_only: bool = False) -> QuerySet[Dataset]:
    """Datasets ``user`` may see in the catalogue (the catalogue's visibility rules; among ``ids``,
    a list or subquery, when given): drafts of other organisations are not among them, so
    governance never shows their titles."""
    return catalogue_selectors.dataset_list_for_user(
        user=user, ids=ids, published_only=published_only
    )


def title(dataset: Dataset) -> str:
    version = dataset.current_version if dataset.current_version_id else None
    return version.title if version else dataset.title


def offered_modes(dataset: Dataset) -> list[str]:
    version = dataset.current_version if dataset.current_version_id else None
    return list((version.access_modes if version else dataset.access_modes) or [])


def custodian_id(dataset: Dataset) -> int:
    """The organisation whose data access committee decides on requests for the dataset."""
    return dataset.data_access_committee_id or dataset.publisher_id


def current_terms(dataset: Dataset):
    return dataset.current_terms_of_use
