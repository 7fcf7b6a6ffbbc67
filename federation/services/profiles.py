"""Database profiles for the catalogue: a data steward asks the nodes serving a dataset for their
CDM's profile (``database_profile`` v1, a run like any other: each site's review before release
applies), then attaches the released, pooled profile to the dataset through
``catalogue.services.dataset_profile_attach``. A weekly job repeats the request for every dataset
that has a profile, on behalf of the steward who attached it, and attaches the new one once every
node has released it."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.audit import record, write_transaction
from optima_node.schemas import AnalysisType

from ..analysis_types import validate_params
from ..models import Analysis, AnalysisStatus, NodeDataset, NodeStatus
from .analyses import analysis_start

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

    from catalogue.models import Dataset, DatasetProfile

log = logging.getLogger(__name__)
PROFILE = AnalysisType.DATABASE_PROFILE.value
PROVENANCE_KEYS = ("partial", "nodes", "missing_nodes")
SCHEDULE_DAYS = 7


def _serving_nodes(dataset: Dataset) -> list:
    return [
        link.node
        for link in NodeDataset.objects.filter(
            dataset=dataset, node__status=NodeStatus.APPROVED
        ).select_related("node")
    ]


@write_transaction
def dataset_profile_request(
    *, steward: AbstractBaseUser, dataset: Dataset, auto_attach: bool = False
) -> Analysis:
    """Ask every approved node serving ``dataset`` for its database profile (stewards only)."""
    from catalogue import permissions as catalogue_permissions

    if not catalogue_permissions.allows(dataset, steward, "edit"):
        raise PermissionDenied("Only data stewards of the dataset's publisher profile it.")
    nodes = _serving_nodes(dataset)
    if not nodes:
        raise ValidationError({"datasets": [f"{dataset} is not served by any approved node."]})
    analysis = analysis_start(
        researcher=steward,
        analysis_type=PROFILE,
        version=1,
        params=validate_params(PROFILE, 1, {}),
        nodes=nodes,
        title=f"Database profile: {dataset}"[:200],
    )
    analysis.state = {"profile_dataset": dataset.pk, "auto_attach": auto_attach}
    analysis.save(update_fields=["state"])
    analysis.datasets.set([dataset])
    record(
        "dataset.profile_requested",
        actor=steward,
        obj=analysis,
        organisation=dataset.publisher,
        payload={"dataset": dataset.pk, "scheduled": auto_attach},
    )
    return analysis


@write_transaction
def dataset_profile_attach_from_analysis(
    *, steward: AbstractBaseUser, analysis: Analysis, dataset: Dataset
) -> DatasetProfile:
    """Attach a completed profile analysis' pooled result to one of its datasets."""
    from catalogue.services import dataset_profile_attach

    if analysis.type != PROFILE or analysis.status != AnalysisStatus.COMPLETED:
        raise ValidationError({"analysis": ["Only a completed database profile can be attached."]})
    if analysis.partial:
        raise ValidationError(
            {"analysis": ["Not every node serving the dataset released its profile."]}
        )
    if not analysis.datasets.filter(pk=dataset.pk).exists():
        raise ValidationError({"dataset": ["The profile was not computed for this dataset."]})
    profile = {k: v for k, v in analysis.result.items() if k not in PROVENANCE_KEYS}
    profile["nodes"] = [n["node"] for n in analysis.result.get("nodes", [])]
    return dataset_profile_attach(
        dataset=dataset,
        profile=profile,
        actor=steward,
        computed_at=analysis.finished_at,
        source=f"Analysis #{analysis.pk}",
    )


def apply_profile(analysis: Analysis) -> None:
    """A scheduled profile, once pooled: attached for the steward who asked (or why not)."""
    if not (analysis.state or {}).get("auto_attach"):
        return
    dataset = analysis.datasets.first()
    try:
        dataset_profile_attach_from_analysis(
            steward=analysis.researcher, analysis=analysis, dataset=dataset
        )
    except (ValidationError, PermissionDenied) as exc:
        analysis.reason = f"Profile not attached: {'; '.join(_messages(exc))}"
    else:
        analysis.reason = "The profile was attached to the dataset."
    analysis.save(update_fields=["reason"])


def _messages(exc: Exception) -> list[str]:
    return list(getattr(exc, "messages", None) or [str(exc)])


def profiles_request_scheduled(*, now: Any = None) -> int:
    """The weekly job: a new profile for each dataset whose attached one is a week old, unless
    one is already running. Returns the number of requests made."""
    from catalogue.models import DatasetProfile

    now = now or timezone.now()
    due = DatasetProfile.objects.filter(
        computed_at__lte=now - timedelta(days=SCHEDULE_DAYS), attached_by__isnull=False
    ).select_related("dataset", "attached_by")
    made = 0
    for attached in due:
        running = Analysis.objects.filter(
            type=PROFILE, status=AnalysisStatus.RUNNING, datasets=attached.dataset
        ).exists()
        if running:
            continue
        try:
            dataset_profile_request(
                steward=attached.attached_by, dataset=attached.dataset, auto_attach=True
            )
        except (ValidationError, PermissionDenied) as exc:
            log.info("no scheduled profile for %s: %s", attached.dataset, _messages(exc))
            continue
        made += 1
    return made
