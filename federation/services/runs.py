"""Runs: a round of runs per analysis, the node's side (claim, answer), the portal's re-checks of
a released result (small cells, differencing), the site admin's gates and the deadlines.

Every state change of a run goes through :func:`run_transition`, which writes its audit event.
When a run ends, the analysis is nudged by task name (``federation.advance_analysis``): this
module never imports the tasks module, nor the analysis orchestration.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from pydantic import ValidationError as PydanticValidationError

from accounts.audit import canonical_json, record, take_write_lock, write_transaction
from accounts.jobs import enqueue
from optima_node.schemas import RunResult

from .. import release_check, releases
from ..analysis_types import get_kind
from ..models import (
    FINAL_RUN_STATUSES,
    OPEN_RUN_STATUSES,
    Analysis,
    AnalysisStatus,
    Node,
    NodeStatus,
    ReleaseRecord,
    Run,
    RunStatus,
    SecureRound,
)
from ..permissions import allows

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser


def lease_seconds() -> int:
    return int(getattr(settings, "FEDERATION_LEASE_SECONDS", 600))


def enqueue_advance(analysis_id: int) -> None:
    """After commit, let the worker look at the analysis (``federation.advance_analysis``)."""
    enqueue("federation.advance_analysis", analysis_id)


def _locked(pk: int) -> Run:
    """The run re-read under a row lock, with what its transitions and audit events need."""
    return (
        Run.objects.select_for_update().select_related("analysis", "node__organisation").get(pk=pk)
    )


# --- a round of runs ----------------------------------------------------------------------------


def create_round(
    analysis: Analysis, nodes: Sequence[Node], *, round_: int, state: dict[str, Any]
) -> None:
    """One run per node for round ``round_``, each dispatched at once (or left waiting)."""
    deadline = analysis.run_deadline()
    for node in nodes:
        run = Run.objects.create(
            analysis=analysis, node=node, round=round_, state=state, deadline=deadline
        )
        record(
            "run.created",
            obj=run,
            organisation=node.organisation,
            payload={"analysis": analysis.pk, "node": node.pk, "round": round_},
        )
        run_dispatch(run, node)


def run_transition(
    run: Run,
    status: str,
    *,
    actor: AbstractBaseUser | str | None = None,
    reason: str = "",
    **fields: Any,
) -> Run:
    """Move the run to ``status`` (setting ``fields``) and audit the step."""
    previous = run.status
    run.status = status
    if reason or status in FINAL_RUN_STATUSES:
        run.reason = reason[:300]
    if status in FINAL_RUN_STATUSES:
        run.finished_at = timezone.now()
    for key, value in fields.items():
        setattr(run, key, value)
    run.save()
    record(
        f"run.{status}",
        actor=actor,
        obj=run,
        organisation=run.node.organisation,
        payload={
            "analysis": run.analysis_id,
            "node": run.node_id,
            "round": run.round,
            "from": previous,
            **({"reason": run.reason} if run.reason else {}),
        },
    )
    return run


def run_dispatch(run: Run, node: Node) -> None:
    """pending → dispatched (or awaiting approval), never to a node that cannot run it."""
    if run.status != RunStatus.PENDING:
        return
    analysis = run.analysis
    if node.status != NodeStatus.APPROVED:
        run_transition(run, RunStatus.FAILED, reason=f"node is {node.get_status_display().lower()}")
        enqueue_advance(analysis.pk)
        return
    if not node.capabilities:
        return  # never reported: the run waits (until its deadline) for a first heartbeat
    if not node.can_run(analysis.type, analysis.version):
        run_transition(
            run,
            RunStatus.FAILED,
            reason=f"node cannot run {analysis.type} v{analysis.version} "
            f"(agent {node.agent_version or 'unknown'})",
        )
        enqueue_advance(analysis.pk)
        return
    run_transition(run, RunStatus.DISPATCHED)
    if node.requires_approval:
        earlier = (
            Run.objects.filter(analysis=analysis, node=node, approved_by__isnull=False)
            .exclude(pk=run.pk)
            .values_list("approved_by", flat=True)
            .first()
        )
        if earlier is not None:
            # Approval is for the analysis at this node; later GLM rounds need no new approval.
            run.approved_by_id = earlier
            run.save(update_fields=["approved_by"])
        else:
            run_transition(run, RunStatus.AWAITING_APPROVAL)


# --- the node's side of a run --------------------------------------------------------------------


def _claimable(node: Node, now: datetime) -> QuerySet[Run]:
    return Run.objects.filter(
        node=node,
        status=RunStatus.DISPATCHED,
        deadline__gt=now,
        analysis__status=AnalysisStatus.RUNNING,
    )


def run_claim(*, node: Node) -> Run | None:
    """Hand the node its oldest dispatched run it can run; the lease makes a lost run re-offered.

    Most polls find nothing: a plain read answers them without taking the write lock, so a
    fleet of idle nodes does not queue behind each other.
    """
    if not _claimable(node, timezone.now()).exists():
        return None
    return _run_claim_locked(node=node)


@write_transaction
def _run_claim_locked(*, node: Node) -> Run | None:
    now = timezone.now()
    candidates = (
        _claimable(node, now)
        .select_related("analysis", "node__organisation")
        .order_by("created_at", "pk")[:20]
    )
    for run in candidates:
        if not node.can_run(run.analysis.type, run.analysis.version):
            continue
        lease_until = now + timedelta(seconds=lease_seconds())
        # Conditional update: two concurrent claims cannot both take the same run.
        taken = Run.objects.filter(pk=run.pk, status=RunStatus.DISPATCHED).update(
            status=RunStatus.RUNNING, claimed_at=now, lease_expires_at=lease_until
        )
        if not taken:
            continue
        run.refresh_from_db()
        record(
            "run.running",
            obj=run,
            organisation=node.organisation,
            actor=f"node:{node.pk}",
            payload={
                "analysis": run.analysis_id,
                "node": node.pk,
                "round": run.round,
                "attempt": run.attempt,
                "from": RunStatus.DISPATCHED,
            },
        )
        return run
    return None


def result_digest(payload: RunResult) -> str:
    """What makes two posts "the same result": status, statistics and reason (not the attempt)."""
    body = {"status": payload.status, "result": payload.result, "reason_code": payload.reason_code}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


class ResultOutcome:
    STORED = "stored"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    GONE = "gone"
    INVALID = "invalid"
    DISCLOSURE = "disclosure"


@write_transaction
def run_submit_result(*, node: Node, run: Run, payload: RunResult) -> tuple[str, str]:
    """Store a node's answer once. Returns (outcome, message).

    Same answer again → duplicate (stored once); a different answer → conflict (409); a run that
    expired or was cancelled → gone (410); a result that does not validate → the run fails. Only
    the node holding the current claim answers: a run it never claimed (still dispatched, or
    re-offered after its lease ran out) or an older attempt → conflict, nothing stored. A result
    releasing a count below the node's minimum cell count → disclosure (422), the run fails and
    the numbers are dropped (federation.release_check).
    """
    run = _locked(run.pk)
    digest = result_digest(payload)
    if run.result_hash:
        if run.result_hash == digest:
            return ResultOutcome.DUPLICATE, "This result was already stored."
        return ResultOutcome.CONFLICT, "A different result is already stored for this run."
    if run.status in (RunStatus.EXPIRED, RunStatus.CANCELLED) or run.status in FINAL_RUN_STATUSES:
        return ResultOutcome.GONE, f"The run is {run.get_status_display().lower()}."
    held_at_node = run.analysis.is_secure and run.status == RunStatus.AWAITING_RELEASE
    if (
        run.node_id != node.pk
        or run.claimed_at is None
        or not (run.status == RunStatus.RUNNING or held_at_node)
    ):
        # Only the claim holder answers: a dispatched run was never claimed (or its lease ran out).
        return ResultOutcome.CONFLICT, (
            f"The run is {run.get_status_display().lower()}; this node holds no claim on it."
        )
    if payload.attempt != run.attempt:
        # Replay protection: only the current attempt (handed out by the last claim) may answer.
        return (
            ResultOutcome.CONFLICT,
            f"Attempt {payload.attempt} is not the run's current attempt ({run.attempt}).",
        )
    if run.analysis.is_secure and payload.status == "completed":
        # A per-site table must never reach the portal of a secure analysis: refused unread.
        return ResultOutcome.CONFLICT, (
            "This run is part of a secure aggregation: post a masked vector, not a result."
        )
    now = timezone.now()
    common = {
        "result_hash": digest,
        "answered_at": now,
        "agent_version": payload.agent_version[:40],
        "lease_expires_at": None,
    }
    actor = f"node:{node.pk}"
    if payload.status == "completed":
        problem = _result_problem(run, payload.result or {})
        if problem:
            run_transition(
                run, RunStatus.FAILED, actor=actor, reason=f"invalid result: {problem}", **common
            )
            enqueue_advance(run.analysis_id)
            return ResultOutcome.INVALID, problem
        refused = _release_refusal(run, node, payload.result or {}, actor=actor, common=common)
        if refused:
            return ResultOutcome.DISCLOSURE, refused
        if _differencing_risk(run, payload.result or {}):
            _refuse_differencing(run, actor=actor, **common)
            return (
                ResultOutcome.STORED,
                "Refused: the release differs too little from an earlier one.",
            )
        if payload.hold_for_release:
            run_transition(
                run, RunStatus.AWAITING_RELEASE, actor=actor, result=payload.result, **common
            )
        else:
            run_transition(run, RunStatus.COMPLETED, actor=actor, result=payload.result, **common)
            _record_release(run)
            enqueue_advance(run.analysis_id)
    elif payload.status == "refused":
        run_transition(
            run,
            RunStatus.REJECTED_BY_POLICY,
            actor=actor,
            reason=payload.reason_code.value,
            **common,
        )
        enqueue_advance(run.analysis_id)
    else:
        run_transition(
            run, RunStatus.FAILED, actor=actor, reason=payload.reason_code.value, **common
        )
        enqueue_advance(run.analysis_id)
    return ResultOutcome.STORED, "Stored."


def _release_refusal(
    run: Run, node: Node, result: dict[str, Any], *, actor: str, common: dict[str, Any]
) -> str:
    """The portal's re-check of the released cells; on a small count the run fails, the numbers
    are dropped (never stored or shown) and the refusal is audited. Returns the message or ""."""
    k = max(release_check.min_cell_count(node), run.analysis.terms_min_cell_count or 0)
    cells = release_check.small_cells(run.analysis.type, run.analysis.version, result, k)
    if not cells:
        return ""
    message = (
        f"Refused by the portal: {len(cells)} released count(s) below the site's minimum cell "
        f"count {k} ({', '.join(cells[:5])})."
    )
    fields = {key: value for key, value in common.items() if key != "result_hash"}
    run_transition(run, RunStatus.FAILED, actor=actor, reason=message, result=None, **fields)
    record(
        "run.result_refused",
        actor=actor,
        obj=run,
        organisation=node.organisation,
        payload={"analysis": run.analysis_id, "min_cell_count": k, "cells": cells[:50]},
    )
    enqueue_advance(run.analysis_id)
    return message


def _result_problem(run: Run, result: dict[str, Any]) -> str:
    kind = get_kind(run.analysis.type, run.analysis.version)
    try:
        model = kind.result_model.model_validate(result)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "result"
        return f"{where}: {first['msg']}"
    return kind.check_result(model, run.analysis.params, run.state)


# --- differencing: what each requester already received from each node ---------------------------

DIFFERENCING_REASON = "differencing_risk: refused by the portal's release record"


def run_recipient(run: Run) -> dict[str, Any]:
    """Who receives a run's result, as the node's release ledger needs it (RunAssignment)."""
    analysis = run.analysis
    return {
        "requester_id": str(analysis.researcher_id),
        "project_ids": [str(p) for p in analysis.project_ids or []],
    }


def _differencing_risk(run: Run, result: dict[str, Any]) -> bool:
    """The portal's early refusal (the node's ledger is the authority): a released total of a
    cohort nested in one this requester or project already received from the node, differing
    by 1 … k − 1. k and the scope are what the node reported with its policy."""
    analysis, node = run.analysis, run.node
    policy = node.policy or {}
    k = max(int(policy.get("min_cell_count") or 5), analysis.terms_min_cell_count or 0)
    if k <= 1:
        return False
    try:
        new = releases.released_populations(
            analysis.type, analysis.version, analysis.params, result
        )
    except (KeyError, ValueError):
        return False  # not a type with populations; the node's own ledger still applies
    scope = policy.get("differencing_scope") or "project"
    earlier = [
        population
        for record in ReleaseRecord.objects.filter(node=node).exclude(analysis=analysis)
        if releases.in_scope(
            scope,
            researcher_id=analysis.researcher_id,
            project_ids=analysis.project_ids or [],
            record=record,
        )
        for population in record.populations
    ]
    return releases.differencing_risk(new, earlier, k)


def _refuse_differencing(run: Run, *, actor: AbstractBaseUser | str, **fields: Any) -> None:
    run_transition(
        run, RunStatus.REJECTED_BY_POLICY, actor=actor, reason=DIFFERENCING_REASON, **fields
    )
    record(
        "run.release_refused",
        actor=actor,
        obj=run,
        organisation=run.node.organisation,
        payload={
            "analysis": run.analysis_id,
            "node": run.node_id,
            "researcher": run.analysis.researcher_id,
            "projects": run.analysis.project_ids or [],
            "check": "differencing",
        },
    )
    enqueue_advance(run.analysis_id)


def _record_release(run: Run) -> None:
    """Keep what the researcher now receives from this node (totals, never persons)."""
    analysis = run.analysis
    try:
        populations = releases.released_populations(
            analysis.type, analysis.version, analysis.params, run.result or {}
        )
    except (KeyError, ValueError):
        return
    ReleaseRecord.objects.update_or_create(
        run=run,
        defaults={
            "node": run.node,
            "analysis": analysis,
            "researcher_id": analysis.researcher_id,
            "project_ids": list(analysis.project_ids or []),
            "populations": populations,
        },
    )


# --- the site admin's gates -----------------------------------------------------------------------


def _open_gate(actor: AbstractBaseUser, run: Run, *, awaiting: str | None = None) -> Run:
    """The opening of every gate: only the node's site administrators (never platform admins),
    then the run re-read under lock; with ``awaiting``, the run must be in that status."""
    if not allows(run, actor, "review"):
        raise PermissionDenied("Only the node's site administrators review its runs.")
    run = _locked(run.pk)
    if awaiting is not None and run.status != awaiting:
        raise ValidationError(
            f"The run is {run.get_status_display().lower()}, "
            f"not {RunStatus(awaiting).label.lower()}."
        )
    return run


@write_transaction
def run_approve(*, actor: AbstractBaseUser, run: Run) -> Run:
    """The approval gate: the node may run it."""
    run = _open_gate(actor, run, awaiting=RunStatus.AWAITING_APPROVAL)
    return run_transition(run, RunStatus.DISPATCHED, actor=actor, approved_by=actor)


@write_transaction
def run_decline(*, actor: AbstractBaseUser, run: Run, reason: str = "") -> Run:
    """The site admin refuses to run it (approval gate) or to release its numbers (release gate)."""
    run = _open_gate(actor, run)
    if run.status == RunStatus.AWAITING_APPROVAL:
        text = "declined by the site administrator"
    elif run.status == RunStatus.AWAITING_RELEASE:
        text = "release refused by the site administrator"
    else:
        raise ValidationError(f"The run is {run.get_status_display().lower()}; nothing to decide.")
    reason = f"{text}: {reason.strip()}" if reason.strip() else text
    # A withheld result never reaches the researcher: drop the numbers, keep the fact.
    run_transition(run, RunStatus.REJECTED_BY_POLICY, actor=actor, reason=reason, result=None)
    enqueue_advance(run.analysis_id)
    return run


@write_transaction
def run_release(*, actor: AbstractBaseUser, run: Run) -> Run:
    """The release gate: the researcher receives the numbers (unless differencing forbids it)."""
    run = _open_gate(actor, run, awaiting=RunStatus.AWAITING_RELEASE)
    if run.analysis.is_secure:
        raise ValidationError(
            "This run is part of a secure aggregation: its contribution is reviewed and released "
            "at the node (optima-node review), never shown to the portal."
        )
    # Other releases may have reached the requester while this one waited.
    if _differencing_risk(run, run.result or {}):
        _refuse_differencing(run, actor=actor, result=None)
        return run
    run_transition(run, RunStatus.COMPLETED, actor=actor, released_by=actor)
    _record_release(run)
    enqueue_advance(run.analysis_id)
    return run


# --- periodic ----------------------------------------------------------------------------------------


def runs_expire_overdue(*, now: datetime | None = None) -> int:
    """Open runs past their deadline end as expired; their analyses move on."""
    now = now or timezone.now()
    count = 0
    for run_id in Run.objects.filter(status__in=OPEN_RUN_STATUSES, deadline__lte=now).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            take_write_lock()
            run = _locked(run_id)
            if not run.is_open or run.deadline > now:
                continue
            waiting_for = {
                RunStatus.AWAITING_APPROVAL: "not approved",
                RunStatus.AWAITING_RELEASE: "not released",
            }.get(run.status, "no answer from the node")
            run_transition(run, RunStatus.EXPIRED, reason=f"{waiting_for} before the deadline")
            enqueue_advance(run.analysis_id)
            count += 1
    return count


def leases_expire(*, now: datetime | None = None) -> int:
    """A claimed run whose lease ran out is offered again (next attempt): the node may have died."""
    now = now or timezone.now()
    count = 0
    for run_id in Run.objects.filter(
        status=RunStatus.RUNNING, lease_expires_at__lte=now
    ).values_list("pk", flat=True):
        with transaction.atomic():
            take_write_lock()
            run = (
                Run.objects.select_for_update().select_related("node__organisation").get(pk=run_id)
            )
            if (
                run.status != RunStatus.RUNNING
                or not run.lease_expires_at
                or run.lease_expires_at > now
            ):
                continue
            if SecureRound.objects.filter(analysis_id=run.analysis_id).exists():
                # A secure round cannot wait for a node that went silent: it goes on without it.
                run_transition(
                    run,
                    RunStatus.FAILED,
                    reason="lease expired during secure aggregation",
                    lease_expires_at=None,
                )
                enqueue_advance(run.analysis_id)
                count += 1
                continue
            run_transition(
                run,
                RunStatus.DISPATCHED,
                reason="lease expired; offered again",
                attempt=run.attempt + 1,
                lease_expires_at=None,
            )
            count += 1
    return count
