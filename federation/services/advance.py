"""Orchestration: when every run of an analysis' round has ended, pool the results and finish,
or (logistic regression) start the next round. Idempotent: it reads the rows afresh and can run
any number of times, so a restarted worker carries on from what the database says."""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError
from django.db.models import Q

from accounts.audit import record, write_transaction

from .. import stats
from ..analysis_types import kind_of
from ..models import OPEN_RUN_STATUSES, Analysis, AnalysisStatus, Run, RunStatus
from .analyses import analysis_finish
from .catalogue_refresh import apply_characterisation
from .profiles import apply_profile
from .runs import create_round
from .secure_advance import secure_advance

log = logging.getLogger(__name__)


def _describe(run: Run) -> str:
    return f"{run.node.name}: {run.get_status_display().lower()}" + (
        f" ({run.reason})" if run.reason else ""
    )


@write_transaction
def analysis_advance(*, analysis_id: int) -> Analysis | None:
    """Look at the current round; when every run has ended, pool, finish or start the next round.

    Idempotent: nothing happens while any run of the round is still open, or once finished.
    """
    analysis = Analysis.objects.select_for_update().filter(pk=analysis_id).first()
    if analysis is None or analysis.is_finished:
        return analysis
    if analysis.is_secure:
        secure_advance(analysis)
        return analysis
    runs = list(
        analysis.runs.filter(round=analysis.current_round)
        .select_related("node__organisation")
        .order_by("node__organisation__name", "node__name")
    )
    if not runs or any(r.is_open for r in runs):
        return analysis
    done = [r for r in runs if r.status == RunStatus.COMPLETED]
    first_round_nodes = analysis.runs.filter(round=1).count()
    missing = [r for r in runs if r.status != RunStatus.COMPLETED]
    if analysis.current_round > 1:
        # Nodes dropped in earlier rounds are missing too.
        answered = {r.node_id for r in runs}
        missing += [
            r
            for r in analysis.runs.filter(round=1).select_related("node__organisation")
            if r.node_id not in answered
        ]
    if len(done) < analysis.min_nodes:
        analysis_finish(
            analysis,
            AnalysisStatus.FAILED,
            reason=(
                f"Only {len(done)} of {first_round_nodes} nodes answered; at least "
                f"{analysis.min_nodes} were required. " + "; ".join(_describe(r) for r in missing)
            ),
        )
        return analysis
    analysis.partial = len(done) < first_round_nodes
    provenance = {
        "partial": analysis.partial,
        "nodes": [{"node": r.node.name, "organisation": r.node.organisation.name} for r in done],
        "missing_nodes": [
            {"node": r.node.name, "status": r.status, "reason": r.reason} for r in missing
        ],
    }
    kind = kind_of(analysis)
    if not kind.iterative:
        provenance |= {
            "aggregation": analysis.aggregation or "per_site",
            "aggregation_reason": analysis.aggregation_reason,
        }
        result = kind.pool([r.result for r in done], analysis.params) | provenance
        analysis_finish(
            analysis, AnalysisStatus.COMPLETED, reason=_partial_note(analysis), result=result
        )
        if (analysis.state or {}).get("refresh_dataset"):
            apply_characterisation(analysis)
        if (analysis.state or {}).get("profile_dataset"):
            apply_profile(analysis)
        return analysis
    return _glm_round_done(analysis, done, provenance)


def _partial_note(analysis: Analysis) -> str:
    return "Partial result: not every node contributed." if analysis.partial else ""


def _glm_round_done(analysis: Analysis, done: list[Run], provenance: dict[str, Any]) -> Analysis:
    results = [r.result for r in done]
    pooled = stats.glm_pool_round(results)
    state = analysis.state or {}
    beta = state["beta"]
    node_ids = sorted(r.node_id for r in done)
    same_nodes = state.get("nodes") == node_ids
    previous = state.get("deviance")
    converged = (
        same_nodes and previous is not None and stats.glm_converged(previous, pooled["deviance"])
    )
    if converged or analysis.current_round >= stats.GLM_MAX_ROUNDS:
        summary = stats.glm_summary(
            beta,
            pooled["information"],
            pooled["deviance"],
            pooled["n"],
            pooled["n_per_node"],
            analysis.current_round,
            terms=results[0]["terms"],
        )
        summary["converged"] = bool(converged)
        summary["n_per_node"] = [{"node": r.node.name, "n": int(r.result["n"])} for r in done]
        reason = _partial_note(analysis)
        if not converged:
            reason = (reason + " " if reason else "") + (
                f"Did not converge within {stats.GLM_MAX_ROUNDS} rounds; estimates are from the "
                "last round."
            )
        analysis_finish(
            analysis, AnalysisStatus.COMPLETED, reason=reason, result=summary | provenance
        )
        return analysis
    try:
        new_beta = stats.glm_update(beta, pooled["information"], pooled["score"])
    except Exception as exc:  # singular information: the model cannot be fitted
        analysis_finish(
            analysis, AnalysisStatus.FAILED, reason=f"The model cannot be fitted: {exc}."
        )
        return analysis
    analysis.state = {"beta": new_beta, "deviance": pooled["deviance"], "nodes": node_ids}
    analysis.current_round += 1
    analysis.save(update_fields=["state", "current_round", "partial"])
    record(
        "analysis.round_started",
        obj=analysis,
        payload={"round": analysis.current_round, "deviance": pooled["deviance"]},
    )
    create_round(
        analysis, [r.node for r in done], round_=analysis.current_round, state={"beta": new_beta}
    )
    return analysis


def analyses_advance_stuck() -> int:
    """Safety net after a worker restart: nudge running analyses whose round has ended."""
    ids = list(
        Analysis.objects.filter(status=AnalysisStatus.RUNNING)
        .exclude(Q(runs__status__in=OPEN_RUN_STATUSES))
        .values_list("pk", flat=True)
        .distinct()
    )
    for analysis_id in ids:
        try:
            analysis_advance(analysis_id=analysis_id)
        except IntegrityError:  # a concurrent advance created the next round first
            log.info("analysis %s advanced concurrently", analysis_id)
    return len(ids)
