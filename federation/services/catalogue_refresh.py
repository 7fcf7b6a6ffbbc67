"""Catalogue metadata from a characterisation, at the data steward's request: the nodes serving
the dataset characterise everyone with a cancer diagnosis; when the analysis completes
(:mod:`.advance`), the dataset's working copy gets the number of individuals and typical ages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError

from accounts.audit import record, write_transaction

from ..analysis_types import validate_params
from ..models import Analysis, NodeDataset
from .analyses import analysis_start

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

    from catalogue.models import Dataset


ANY_CANCER_CONCEPT = 443392  # "Malignant neoplastic disease"; descendants cover every cancer
TYPICAL_AGE_QUANTILES = (0.05, 0.95)


def _band_bounds(label: str) -> tuple[int, int]:
    if label.endswith("+"):
        low = int(label[:-1])
        return low, low + 9
    low, high = label.split("-")
    return int(low), int(high)


def typical_ages(by_age_group: list[dict[str, Any]]) -> tuple[int, int] | None:
    """The age bands holding the central 90% of the released counts: (lowest age, highest age)."""
    bands = sorted(
        (_band_bounds(row["age_group"]), int(row["count"] or 0))
        for row in by_age_group
        if row.get("age_group")
    )
    total = sum(count for _, count in bands)
    if total == 0:
        return None
    low_q, high_q = TYPICAL_AGE_QUANTILES
    cumulative, low, high = 0, None, None
    for (band_low, band_high), count in bands:
        cumulative += count
        if low is None and cumulative >= low_q * total:
            low = band_low
        if high is None and cumulative >= high_q * total:
            high = band_high
    return low, high


@write_transaction
def dataset_metadata_refresh(*, steward: AbstractBaseUser, dataset: Dataset) -> Analysis:
    """A data steward asks the nodes serving their dataset for a characterisation of everyone
    with a cancer diagnosis; when it completes, the dataset's working copy gets the number of
    individuals and the typical ages (the steward reviews and publishes as usual)."""
    from catalogue import permissions as catalogue_permissions

    if not catalogue_permissions.allows(dataset, steward, "edit"):
        raise PermissionDenied("Only data stewards of the dataset's publisher refresh it.")
    nodes = [
        link.node
        for link in NodeDataset.objects.serving().filter(dataset=dataset).select_related("node")
    ]
    if not nodes:
        raise ValidationError({"datasets": [f"{dataset} is not served by any approved node."]})
    params = validate_params(
        "characterisation",
        1,
        {"cohort": {"condition_concept_ids": [ANY_CANCER_CONCEPT], "include_descendants": True}},
    )
    analysis = analysis_start(
        researcher=steward,
        analysis_type="characterisation",
        version=1,
        params=params,
        nodes=nodes,
        title=f"Catalogue metadata refresh: {dataset}"[:200],
        terms_min_cell_count=dataset.published_min_cell_count,
    )
    analysis.state = {"refresh_dataset": dataset.pk}
    analysis.save(update_fields=["state"])
    analysis.datasets.set([dataset])
    record(
        "dataset.metadata_refresh_requested",
        actor=steward,
        obj=analysis,
        organisation=dataset.publisher,
        payload={"dataset": dataset.pk},
    )
    return analysis


def apply_characterisation(analysis: Analysis) -> None:
    """The completed refresh's numbers into the dataset's working copy (or why not, as reason)."""
    from catalogue.services import dataset_update

    dataset = analysis.datasets.first()
    if dataset is None or analysis.partial:
        analysis.reason = "Catalogue metadata not updated: not every node answered."
        analysis.save(update_fields=["reason"])
        return
    result = analysis.result
    if result["person_count"].get("count") is None:  # suppressed by pooled disclosure control
        analysis.reason = "Catalogue metadata not updated: the person count is suppressed."
        analysis.save(update_fields=["reason"])
        return
    data: dict[str, Any] = {"number_of_individuals": int(result["person_count"]["count"])}
    ages = typical_ages(result.get("by_age_group", []))
    if ages:
        data["min_typical_age"], data["max_typical_age"] = ages
    try:
        dataset_update(user=analysis.researcher, dataset=dataset, data=data)
    except (ValidationError, PermissionDenied) as exc:
        analysis.reason = f"Catalogue metadata not updated: {exc}"
    else:
        analysis.reason = (
            "The dataset's working copy was updated ("
            + ", ".join(f"{k} {v}" for k, v in data.items())
            + "); review and publish it in the catalogue."
        )
    analysis.save(update_fields=["reason"])
