"""Analyses: the checks every start makes, starting an analysis (its first round of runs),
cancelling it and writing its end. Pooling a finished round is :mod:`.advance`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.audit import record, write_transaction

from ..analysis_types import (
    AnalysisKind,
    get_kind,
    kind_of,
    validate_params,
)
from ..models import (
    OPEN_RUN_STATUSES,
    Analysis,
    AnalysisStatus,
    Node,
    NodeDataset,
    RunStatus,
)
from .runs import create_round, run_transition
from .secure import SECURE, aggregation_mode, round_open, rounds_abandon

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

    from catalogue.models import Dataset


def require_entitled_and_served(
    *, researcher: AbstractBaseUser, datasets: Sequence[Dataset], access_mode: str
) -> list[NodeDataset]:
    """The approved node links serving ``datasets``, after the two checks every start makes:
    403 (PermissionDenied) naming each dataset without an active entitlement for ``access_mode``,
    400 (ValidationError) naming each dataset no approved node serves."""
    from governance.datasets import title
    from governance.selectors import missing_entitlements

    missing = missing_entitlements(user=researcher, datasets=datasets, access_mode=access_mode)
    if missing:
        # The published title: callers pass datasets the researcher can see (their selectors).
        names = "; ".join(f"{title(d)} (id {d.pk})" for d in missing)
        raise PermissionDenied(
            f"You hold no active entitlement for {access_mode.replace('_', ' ')} on: {names}. "
            "Request access to these datasets first."
        )
    links = list(
        NodeDataset.objects.serving()
        .filter(dataset__in=datasets)
        .select_related("node__organisation")
    )
    served = {link.dataset_id for link in links}
    unserved = [d for d in datasets if d.pk not in served]
    if unserved:
        raise ValidationError(
            {
                "datasets": [
                    f"{title(d)} (id {d.pk}) is not served by any approved node." for d in unserved
                ]
            }
        )
    return links


def datasets_and_nodes(
    *, researcher: AbstractBaseUser, datasets: Sequence[Dataset], access_mode: str
) -> tuple[list[Dataset], list[Node]]:
    """The shared start of a federated analysis and of a federated-learning job: each dataset
    once (at least one), then :func:`require_entitled_and_served`. Returns the datasets and the
    nodes serving them (by primary key)."""
    datasets = list(dict.fromkeys(datasets))
    if not datasets:
        raise ValidationError({"datasets": ["Choose at least one dataset."]})
    links = require_entitled_and_served(
        researcher=researcher, datasets=datasets, access_mode=access_mode
    )
    return datasets, sorted({link.node for link in links}, key=lambda n: n.pk)


def analysis_prepare(
    *, researcher: AbstractBaseUser, kind: AnalysisKind, params: Any, datasets: Sequence[Dataset]
) -> tuple[dict[str, Any], list[Dataset], list[Node]]:
    """The start every kind shares (a node analysis, a federated-learning job): the kind's
    parameters checked (400), then :func:`datasets_and_nodes` for the kind's access mode (403
    without an entitlement, 400 for datasets no node serves). Returns the normalised parameters,
    the datasets and the nodes serving them."""
    normalised = validate_params(kind.type, kind.version, params)
    datasets, nodes = datasets_and_nodes(
        researcher=researcher, datasets=datasets, access_mode=kind.access_mode
    )
    return normalised, datasets, nodes


def analysis_open(
    *,
    researcher: AbstractBaseUser,
    kind: AnalysisKind,
    params: dict[str, Any],
    min_nodes: int,
    title: str = "",
    audit: dict[str, Any] | None = None,
    **fields: Any,
) -> Analysis:
    """The analysis row of any kind and its ``analysis.created`` audit event (``audit`` adds to
    its payload); ``fields`` are further columns (state, deadline)."""
    analysis = Analysis.objects.create(
        researcher=researcher,
        title=title,
        type=kind.type,
        version=kind.version,
        params=params,
        min_nodes=min_nodes,
        **fields,
    )
    record(
        "analysis.created",
        actor=researcher,
        obj=analysis,
        payload={"type": kind.type, "version": kind.version, "params": params, **(audit or {})},
    )
    return analysis


def terms_min_cell_count(datasets: Sequence[Dataset]) -> int | None:
    """The strictest minimum cell count the datasets' published terms of use set (or None)."""
    values = [d.published_min_cell_count for d in datasets]
    found = [int(v) for v in values if v]
    return max(found) if found else None


@write_transaction
def analysis_create(
    *,
    researcher: AbstractBaseUser,
    analysis_type: str,
    version: int,
    params: Any,
    datasets: Sequence[Dataset],
    min_nodes: int | None = None,
    title: str = "",
    run_deadline_hours: int = 24,
) -> Analysis:
    """Start an analysis on the nodes serving ``datasets``: one run per node, dispatched at once.

    403 (PermissionDenied) names every dataset the researcher lacks a federated-analytics
    entitlement for; 400 (ValidationError) for bad parameters or datasets no node serves.
    """
    from governance.selectors import entitlement_projects

    kind = _node_kind(analysis_type, version)
    normalised, datasets, nodes = analysis_prepare(
        researcher=researcher, kind=kind, params=params, datasets=datasets
    )
    analysis = analysis_start(
        researcher=researcher,
        analysis_type=analysis_type,
        version=version,
        params=normalised,
        nodes=nodes,
        min_nodes=min_nodes,
        title=title,
        run_deadline_hours=run_deadline_hours,
        terms_min_cell_count=terms_min_cell_count(datasets),
    )
    analysis.datasets.set(datasets)
    analysis.project_ids = entitlement_projects(
        user=researcher, datasets=datasets, access_mode=kind.access_mode
    )
    analysis.save(update_fields=["project_ids"])
    return analysis


def _node_kind(analysis_type: str, version: int) -> AnalysisKind:
    """A kind the nodes compute; 400 on ``type`` for any other (unknown, or a FLARE job)."""
    kind = get_kind(analysis_type, version)
    if kind is None or not kind.runs_on_nodes:
        raise ValidationError({"type": [f"Unknown analysis {analysis_type!r} version {version}."]})
    return kind


@write_transaction
def analysis_start(
    *,
    researcher: AbstractBaseUser,
    analysis_type: str,
    version: int,
    params: dict[str, Any],
    nodes: Sequence[Node],
    min_nodes: int | None = None,
    title: str = "",
    run_deadline_hours: int = 24,
    terms_min_cell_count: int | None = None,
) -> Analysis:
    """Create the analysis and its first round of runs (parameters already validated).

    Count, characterisation and Kaplan–Meier analyses are pooled by secure aggregation when
    every node can take part (``secure.aggregation_mode``), else per site, and say why.
    """
    kind = _node_kind(analysis_type, version)
    # Fresh rows: dispatch decides on what the nodes reported last.
    nodes = list(Node.objects.filter(pk__in=[n.pk for n in nodes]).select_related("organisation"))
    if not nodes:
        raise ValidationError({"datasets": ["No approved node serves these datasets."]})
    if min_nodes is None:
        min_nodes = len(nodes)
    if not 1 <= min_nodes <= len(nodes):
        raise ValidationError(
            {"min_nodes": [f"Choose between 1 and {len(nodes)} (the nodes serving the datasets)."]}
        )
    state = kind.initial_state(params)
    mode, mode_reason = aggregation_mode(analysis_type=analysis_type, params=params, nodes=nodes)
    analysis = analysis_open(
        researcher=researcher,
        kind=kind,
        params=params,
        min_nodes=min_nodes,
        title=title,
        audit={
            "nodes": [n.pk for n in nodes],
            "min_nodes": min_nodes,
            "aggregation": mode,
            "aggregation_reason": mode_reason,
            "terms_min_cell_count": terms_min_cell_count,
        },
        state=state,
        run_deadline_hours=run_deadline_hours,
        terms_min_cell_count=terms_min_cell_count,
        aggregation=mode,
        aggregation_reason=mode_reason[:300],
    )
    if mode == SECURE:
        round_open(analysis, nodes)
    create_round(analysis, nodes, round_=1, state=state)
    return analysis


@write_transaction
def analysis_cancel(*, actor: AbstractBaseUser, analysis: Analysis) -> Analysis:
    """The researcher stops the analysis: its open runs are cancelled, it ends cancelled."""
    analysis = Analysis.objects.select_for_update().get(pk=analysis.pk)
    kind = kind_of(analysis)
    if kind and kind.cancel_refusal:
        raise ValidationError(kind.cancel_refusal)
    if analysis.is_finished:
        raise ValidationError(f"The analysis is already {analysis.get_status_display().lower()}.")
    for run in analysis.runs.filter(status__in=OPEN_RUN_STATUSES).select_related(
        "node__organisation"
    ):
        run_transition(run, RunStatus.CANCELLED, actor=actor, reason="cancelled by the researcher")
    rounds_abandon(analysis, reason="cancelled by the researcher")
    analysis_finish(
        analysis, AnalysisStatus.CANCELLED, actor=actor, reason="Cancelled by the researcher."
    )
    return analysis


def analysis_finish(
    analysis: Analysis,
    status: str,
    *,
    actor: AbstractBaseUser | None = None,
    reason: str = "",
    result: dict[str, Any] | None = None,
) -> None:
    """Write the analysis' end (status, reason, result) and audit it."""
    analysis.status = status
    analysis.reason = reason
    analysis.result = result
    analysis.finished_at = timezone.now()
    analysis.save()
    record(
        f"analysis.{status}",
        actor=actor,
        obj=analysis,
        payload={"reason": reason, "partial": analysis.partial, "round": analysis.current_round},
    )
