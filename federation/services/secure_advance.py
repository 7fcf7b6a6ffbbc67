"""A secure analysis moves on: a lost node restarts the round without it (or ends the analysis),
and once every participant's masked vector is in, the portal sums, decodes, applies pooled
disclosure control and stores only the pooled result (docs/federation.md "Secure aggregation")."""

from __future__ import annotations

from django.utils import timezone

from accounts.audit import record
from optima_node import secagg, secagg_layout

from .. import pooled_disclosure
from ..models import (
    FINAL_RUN_STATUSES,
    Analysis,
    AnalysisStatus,
    MaskedVector,
    Node,
    Run,
    RunStatus,
    SecureRound,
    SecureRoundStatus,
)
from .analyses import analysis_finish
from .catalogue_refresh import apply_characterisation
from .runs import run_transition
from .secure import (
    current_round,
    required_nodes,
    round_close,
    round_open,
    round_sum,
    threshold,
)


def _describe(run: Run) -> str:
    return f"{run.node.name}: {run.get_status_display().lower()}" + (
        f" ({run.reason})" if run.reason else ""
    )


def secure_advance(analysis: Analysis) -> None:
    """Called by ``analysis_advance`` under the analysis' row lock; idempotent."""
    secure_round = current_round(analysis)
    if secure_round is None or not secure_round.is_open:
        return
    participants = list(secure_round.participants.select_related("organisation").order_by("pk"))
    runs = {
        r.node_id: r
        for r in analysis.runs.filter(round=analysis.current_round).select_related(
            "node__organisation"
        )
    }
    lost = [
        n
        for n in participants
        if n.pk not in runs
        or (runs[n.pk].status in FINAL_RUN_STATUSES and runs[n.pk].status != RunStatus.COMPLETED)
    ]
    if lost:
        _restart_without(analysis, secure_round, participants, lost, runs)
        return
    masked = MaskedVector.objects.filter(round=secure_round).count()
    if secure_round.status == SecureRoundStatus.MASKING and masked == len(participants):
        _sum_and_finish(analysis, secure_round, participants, runs)


def _end_runs(runs: list[Run], status: str, reason: str) -> None:
    for run in runs:
        if run.is_open:
            run_transition(run, status, reason=reason, lease_expires_at=None)


def _restart_without(
    analysis: Analysis,
    secure_round: SecureRound,
    participants: list[Node],
    lost: list[Node],
    runs: dict[int, Run],
) -> None:
    why = "; ".join(_describe(runs[n.pk]) if n.pk in runs else n.name for n in lost)
    round_close(secure_round, SecureRoundStatus.ABANDONED, reason=f"lost {why}")
    remaining = [n for n in participants if n not in lost]
    needed = required_nodes(remaining, analysis.min_nodes)
    if len(remaining) >= needed:
        round_open(analysis, remaining)
        return
    names = ", ".join(n.name for n in lost)
    reason = (
        f"Secure aggregation could not go on: lost {names} ({why}); {len(remaining)} node"
        f"{'s' if len(remaining) != 1 else ''} remain, at least {needed} are needed. Start the "
        "analysis again with fewer nodes for per-site pooling, or with more nodes."
    )
    _end_runs([runs[n.pk] for n in remaining if n.pk in runs], RunStatus.CANCELLED, "round lost")
    analysis_finish(analysis, AnalysisStatus.FAILED, reason=reason)


def _sum_and_finish(
    analysis: Analysis,
    secure_round: SecureRound,
    participants: list[Node],
    runs: dict[int, Run],
) -> None:
    mine = [runs[n.pk] for n in participants]
    try:
        total = round_sum(secure_round)
        pooled = secagg_layout.decode(analysis.type, analysis.params, total)
    except (secagg.SecAggError, secagg_layout.LayoutError, ValueError) as exc:
        reason = getattr(exc, "reason", str(exc))
        round_close(secure_round, SecureRoundStatus.ABANDONED, reason=reason)
        _end_runs(mine, RunStatus.FAILED, "the masked vectors did not add up")
        analysis_finish(
            analysis,
            AnalysisStatus.FAILED,
            reason=f"The masked vectors did not add up ({reason}); nothing was released.",
        )
        return
    t = threshold(analysis, participants)
    result = pooled_disclosure.control(analysis.type, analysis.params, pooled, t)
    del pooled, total  # only the controlled result is kept
    round_close(secure_round, SecureRoundStatus.SUMMED)
    now = timezone.now()
    for run in mine:
        if run.is_open:
            run_transition(
                run, RunStatus.COMPLETED, reason="", answered_at=now, lease_expires_at=None
            )
    first_round_nodes = analysis.runs.filter(round=1).count()
    analysis.partial = len(participants) < first_round_nodes
    answered = {n.pk for n in participants}
    missing = [r for r in analysis.runs.filter(round=1) if r.node_id not in answered]
    result = result | {
        "aggregation": "secure",
        "aggregation_reason": "",
        "threshold": t,
        "round_id": str(secure_round.round_id),
        "partial": analysis.partial,
        "nodes": [{"node": n.name, "organisation": n.organisation.name} for n in participants],
        "missing_nodes": [
            {"node": r.node.name, "status": r.status, "reason": r.reason} for r in missing
        ],
    }
    record(
        "analysis.securely_aggregated",
        obj=analysis,
        payload={
            "round_id": str(secure_round.round_id),
            "nodes": sorted(answered),
            "threshold": t,
        },
    )
    analysis_finish(
        analysis,
        AnalysisStatus.COMPLETED,
        reason="Partial result: not every node contributed." if analysis.partial else "",
        result=result,
    )
    if (analysis.state or {}).get("refresh_dataset"):
        apply_characterisation(analysis)
