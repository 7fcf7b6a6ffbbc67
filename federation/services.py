"""Writes of the federation app: node registry, analysis orchestration, approval and release gates.

Every state change writes an audit event in the same transaction. Orchestration is idempotent and
reads the rows afresh (``analysis_advance`` can run any number of times), so a restarted worker or
portal simply carries on from what the database says.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from pydantic import ValidationError as PydanticValidationError

from accounts.audit import canonical_json, record
from accounts.models import AuditChainHead
from accounts.permissions import is_platform_admin
from optima_node.schemas import Heartbeat, RunResult

from . import aggregate, releases, stats
from .analysis_types import get_kind, terms_for, validate_params
from .models import (
    FINAL_RUN_STATUSES,
    OPEN_RUN_STATUSES,
    Analysis,
    AnalysisStatus,
    Liveness,
    Node,
    NodeHeartbeat,
    NodeStatus,
    ReleaseRecord,
    Run,
    RunStatus,
)
from .permissions import can_register_node

log = logging.getLogger(__name__)

GLM = "logistic_regression"


def lease_seconds() -> int:
    return int(getattr(settings, "FEDERATION_LEASE_SECONDS", 600))


def default_poll_interval() -> float:
    return float(getattr(settings, "FEDERATION_POLL_INTERVAL_SECONDS", 30.0))


def _take_write_lock() -> None:
    """On SQLite, start every write transaction by writing.

    A SQLite transaction that reads first and writes later fails at once ("database is locked",
    no busy wait) when another connection committed in between; agents, the worker and the web
    server write concurrently. Writing first takes the lock (and waits for it). Our transactions
    all append to the audit chain anyway, so they serialise on its head row: take it now. On
    PostgreSQL ``select_for_update`` does the job and nothing is needed.
    """
    if connection.vendor == "sqlite":
        AuditChainHead.objects.filter(pk=1).update(seq=F("seq"))


def write_transaction(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with transaction.atomic():
            _take_write_lock()
            return func(*args, **kwargs)

    return wrapper


def _enqueue_advance(analysis_id: int) -> None:
    from .tasks import advance_analysis

    transaction.on_commit(lambda: advance_analysis.delay(analysis_id))


# --- node registry ------------------------------------------------------------------------------


@write_transaction
def node_register(*, actor, organisation, name: str, description: str = "") -> Node:
    """A site admin registers a node of their organisation; a platform admin approves it."""
    if not can_register_node(actor, organisation):
        raise PermissionDenied("Only the organisation's site administrators register its nodes.")
    name = name.strip()
    if not name:
        raise ValidationError({"name": ["Give the node a name."]})
    if Node.objects.filter(organisation=organisation, name=name).exists():
        raise ValidationError({"name": ["This organisation already has a node of that name."]})
    node = Node.objects.create(
        organisation=organisation,
        name=name,
        description=description,
        registered_by=actor if getattr(actor, "is_authenticated", False) else None,
        poll_interval_seconds=default_poll_interval(),
    )
    record(
        "node.registered", actor=actor, obj=node, organisation=organisation, payload={"name": name}
    )
    return node


@write_transaction
def node_approve(*, actor, node: Node) -> str:
    """Approve a pending node; returns its token, which is shown once and stored hashed."""
    if not is_platform_admin(actor):
        raise PermissionDenied("Only platform administrators approve nodes.")
    node = Node.objects.select_for_update().get(pk=node.pk)
    if node.status != NodeStatus.PENDING:
        raise ValidationError(f"The node is {node.get_status_display().lower()}, not pending.")
    raw = node.issue_token()
    node.status = NodeStatus.APPROVED
    node.approved_by = actor if getattr(actor, "is_authenticated", False) else None
    node.approved_at = timezone.now()
    node.save()
    record(
        "node.approved",
        actor=actor,
        obj=node,
        organisation=node.organisation,
        payload={"token_prefix": node.token_prefix},
    )
    return raw


def _can_manage(actor, node: Node) -> bool:
    return can_register_node(actor, node.organisation)


@write_transaction
def node_rotate_token(*, actor, node: Node) -> str:
    """A new token; the old one stops working at once."""
    if not _can_manage(actor, node):
        raise PermissionDenied("Only the organisation's site administrators manage its nodes.")
    node = Node.objects.select_for_update().get(pk=node.pk)
    if node.status != NodeStatus.APPROVED:
        raise ValidationError("Only an approved node has a token to rotate.")
    old_prefix = node.token_prefix
    raw = node.issue_token()
    node.save(update_fields=["token_prefix", "token_hash", "token_issued_at"])
    record(
        "node.token_rotated",
        actor=actor,
        obj=node,
        organisation=node.organisation,
        payload={"old_prefix": old_prefix, "new_prefix": node.token_prefix},
    )
    return raw


@write_transaction
def node_revoke(*, actor, node: Node) -> Node:
    """Revoke a node: its token answers 401 (the agent stops) and its open runs fail."""
    if not _can_manage(actor, node):
        raise PermissionDenied("Only the organisation's site administrators manage its nodes.")
    node = Node.objects.select_for_update().get(pk=node.pk)
    if node.status == NodeStatus.REVOKED:
        return node
    node.status = NodeStatus.REVOKED
    node.revoked_at = timezone.now()
    node.save(update_fields=["status", "revoked_at"])
    record("node.revoked", actor=actor, obj=node, organisation=node.organisation)
    for run in node.runs.filter(status__in=OPEN_RUN_STATUSES).select_related("analysis"):
        _transition(run, RunStatus.FAILED, actor=actor, reason="node revoked")
        _enqueue_advance(run.analysis_id)
    return node


@write_transaction
def node_set_datasets(*, actor, node: Node, datasets: Iterable) -> None:
    """Which catalogue datasets this node serves (their federated distribution)."""
    from .models import NodeDataset

    if not _can_manage(actor, node):
        raise PermissionDenied("Only the organisation's site administrators manage its nodes.")
    wanted = {d.pk: d for d in datasets}
    current = set(node.served_datasets.values_list("dataset_id", flat=True))
    node.served_datasets.exclude(dataset_id__in=wanted).delete()
    NodeDataset.objects.bulk_create(
        [NodeDataset(node=node, dataset=d) for pk, d in wanted.items() if pk not in current]
    )
    record(
        "node.datasets_set",
        actor=actor,
        obj=node,
        organisation=node.organisation,
        payload={"datasets": sorted(wanted)},
    )


@write_transaction
def node_enrol(*, actor, organisation, name: str, datasets: Sequence = ()) -> tuple[Node, str]:
    """Operators' shortcut (``manage.py node_enrol``): an approved node serving ``datasets``."""
    node = Node.objects.filter(organisation=organisation, name=name).first()
    if node is None:
        node = Node.objects.create(
            organisation=organisation,
            name=name,
            registered_by=actor if getattr(actor, "is_authenticated", False) else None,
            poll_interval_seconds=default_poll_interval(),
        )
    node.status = NodeStatus.APPROVED
    node.revoked_at = None
    node.approved_at = timezone.now()
    node.approved_by = actor if getattr(actor, "is_authenticated", False) else None
    raw = node.issue_token()
    node.save()
    if datasets:
        from .models import NodeDataset

        for dataset in datasets:
            NodeDataset.objects.get_or_create(node=node, dataset=dataset)
    record(
        "node.enrolled",
        actor=actor,
        obj=node,
        organisation=organisation,
        payload={
            "name": name,
            "datasets": sorted(d.pk for d in datasets),
            "token_prefix": node.token_prefix,
        },
    )
    return node, raw


REPORTED_FIELDS = ("agent_version", "capabilities", "cdm_version", "vocabulary_version", "dialect")


@write_transaction
def node_heartbeat(*, node: Node, heartbeat: Heartbeat) -> Node:
    """Store what the agent reports; audit when it changes; offer waiting runs it can now run."""
    now = timezone.now()
    node = Node.objects.select_for_update().get(pk=node.pk)
    reported = {
        "agent_version": heartbeat.agent_version,
        "capabilities": [c.model_dump() for c in heartbeat.capabilities],
        "cdm_version": heartbeat.cdm_version,
        "vocabulary_version": heartbeat.vocabulary_version,
        "dialect": heartbeat.dialect,
        "policy": heartbeat.policy.model_dump(),
    }
    changed = {k: v for k, v in reported.items() if getattr(node, k) != v}
    for key, value in reported.items():
        setattr(node, key, value)
    node.person_count = heartbeat.person_count
    node.first_seen_at = node.first_seen_at or now
    node.last_seen_at = now
    came_back = node.last_liveness != Liveness.ONLINE
    node.last_liveness = Liveness.ONLINE
    node.save()
    NodeHeartbeat.objects.bulk_create(
        [NodeHeartbeat(node=node, minute=now.replace(second=0, microsecond=0))],
        ignore_conflicts=True,
    )
    if changed:
        record(
            "node.reported",
            obj=node,
            organisation=node.organisation,
            actor=f"node:{node.pk}",
            payload={"changed": sorted(changed), **{k: reported[k] for k in changed}},
        )
    if came_back:
        record("node.online", obj=node, organisation=node.organisation, actor=f"node:{node.pk}")
    waiting = list(
        node.runs.filter(status=RunStatus.PENDING).select_related("analysis").order_by("pk")
    )
    for run in waiting:
        _dispatch_one(run, node)
    return node


# --- analyses -----------------------------------------------------------------------------------


def require_entitled_and_served(*, researcher, datasets: Sequence, access_mode: str) -> list:
    """The approved node links serving ``datasets``, after the two checks every start makes:
    403 (PermissionDenied) naming each dataset without an active entitlement for ``access_mode``,
    400 (ValidationError) naming each dataset no approved node serves."""
    from governance.datasets import title
    from governance.selectors import missing_entitlements

    from .models import NodeDataset

    missing = missing_entitlements(user=researcher, datasets=datasets, access_mode=access_mode)
    if missing:
        # The published title: callers pass datasets the researcher can see (their selectors).
        names = "; ".join(f"{title(d)} (id {d.pk})" for d in missing)
        raise PermissionDenied(
            f"You hold no active entitlement for {access_mode.replace('_', ' ')} on: {names}. "
            "Request access to these datasets first."
        )
    links = list(
        NodeDataset.objects.filter(
            dataset__in=datasets, node__status=NodeStatus.APPROVED
        ).select_related("node__organisation")
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


FEDERATED_ANALYTICS = "federated_analytics"


@write_transaction
def analysis_create(
    *,
    researcher,
    analysis_type: str,
    version: int,
    params: Any,
    datasets: Sequence,
    min_nodes: int | None = None,
    title: str = "",
    run_deadline_hours: int = 24,
) -> Analysis:
    """Start an analysis on the nodes serving ``datasets``: one run per node, dispatched at once.

    403 (PermissionDenied) names every dataset the researcher lacks a federated-analytics
    entitlement for; 400 (ValidationError) for bad parameters or datasets no node serves.
    """
    normalised = validate_params(analysis_type, version, params)
    datasets = list(dict.fromkeys(datasets))
    if not datasets:
        raise ValidationError({"datasets": ["Choose at least one dataset."]})
    links = require_entitled_and_served(
        researcher=researcher, datasets=datasets, access_mode=FEDERATED_ANALYTICS
    )
    nodes = sorted({link.node for link in links}, key=lambda n: n.pk)
    analysis = analysis_start(
        researcher=researcher,
        analysis_type=analysis_type,
        version=version,
        params=normalised,
        nodes=nodes,
        min_nodes=min_nodes,
        title=title,
        run_deadline_hours=run_deadline_hours,
    )
    analysis.datasets.set(datasets)
    from governance.selectors import entitlement_projects

    analysis.project_ids = entitlement_projects(
        user=researcher, datasets=datasets, access_mode=FEDERATED_ANALYTICS
    )
    analysis.save(update_fields=["project_ids"])
    return analysis


@write_transaction
def analysis_start(
    *,
    researcher,
    analysis_type: str,
    version: int,
    params: dict[str, Any],
    nodes: Sequence[Node],
    min_nodes: int | None = None,
    title: str = "",
    run_deadline_hours: int = 24,
) -> Analysis:
    """Create the analysis and its first round of runs (parameters already validated)."""
    kind = get_kind(analysis_type, version)
    if kind is None:
        raise ValidationError({"type": [f"Unknown analysis {analysis_type!r} version {version}."]})
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
    state: dict[str, Any] = {}
    if analysis_type == GLM:
        state = {"beta": [0.0] * len(terms_for(params))}
    analysis = Analysis.objects.create(
        researcher=researcher,
        title=title,
        type=analysis_type,
        version=version,
        params=params,
        min_nodes=min_nodes,
        state=state,
        run_deadline_hours=run_deadline_hours,
    )
    record(
        "analysis.created",
        actor=researcher,
        obj=analysis,
        payload={
            "type": analysis_type,
            "version": version,
            "params": params,
            "nodes": [n.pk for n in nodes],
            "min_nodes": min_nodes,
        },
    )
    _create_round(analysis, nodes, round_=1, state=state)
    return analysis


def _create_round(analysis: Analysis, nodes: Sequence[Node], *, round_: int, state: dict) -> None:
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
        _dispatch_one(run, node)


def _transition(run: Run, status: str, *, actor=None, reason: str = "", **fields: Any) -> Run:
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


def _dispatch_one(run: Run, node: Node) -> None:
    """pending → dispatched (or awaiting approval), never to a node that cannot run it."""
    if run.status != RunStatus.PENDING:
        return
    analysis = run.analysis
    if node.status != NodeStatus.APPROVED:
        _transition(run, RunStatus.FAILED, reason=f"node is {node.get_status_display().lower()}")
        _enqueue_advance(analysis.pk)
        return
    if not node.capabilities:
        return  # never reported: the run waits (until its deadline) for a first heartbeat
    if not node.can_run(analysis.type, analysis.version):
        _transition(
            run,
            RunStatus.FAILED,
            reason=f"node cannot run {analysis.type} v{analysis.version} "
            f"(agent {node.agent_version or 'unknown'})",
        )
        _enqueue_advance(analysis.pk)
        return
    _transition(run, RunStatus.DISPATCHED)
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
            _transition(run, RunStatus.AWAITING_APPROVAL)


@write_transaction
def analysis_cancel(*, actor, analysis: Analysis) -> Analysis:
    analysis = Analysis.objects.select_for_update().get(pk=analysis.pk)
    if analysis.type == "federated_learning":
        raise ValidationError(
            "Abort a federated-learning job on its page (or /api/fl-jobs/{id}/abort/)."
        )
    if analysis.is_finished:
        raise ValidationError(f"The analysis is already {analysis.get_status_display().lower()}.")
    for run in analysis.runs.filter(status__in=OPEN_RUN_STATUSES).select_related(
        "node__organisation"
    ):
        _transition(run, RunStatus.CANCELLED, actor=actor, reason="cancelled by the researcher")
    _finish(analysis, AnalysisStatus.CANCELLED, actor=actor, reason="Cancelled by the researcher.")
    return analysis


def _finish(analysis: Analysis, status: str, *, actor=None, reason: str = "", result=None) -> None:
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
        _finish(
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
    if analysis.type != GLM:
        pool = aggregate.ONE_ROUND[analysis.type]
        result = pool([r.result for r in done], analysis.params) | provenance
        _finish(analysis, AnalysisStatus.COMPLETED, reason=_partial_note(analysis), result=result)
        if (analysis.state or {}).get("refresh_dataset"):
            _apply_characterisation(analysis)
        return analysis
    return _glm_round_done(analysis, done, provenance)


def _partial_note(analysis: Analysis) -> str:
    return "Partial result: not every node contributed." if analysis.partial else ""


def _glm_round_done(analysis: Analysis, done: list[Run], provenance: dict) -> Analysis:
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
        _finish(analysis, AnalysisStatus.COMPLETED, reason=reason, result=summary | provenance)
        return analysis
    try:
        new_beta = stats.glm_update(beta, pooled["information"], pooled["score"])
    except Exception as exc:  # singular information: the model cannot be fitted
        _finish(analysis, AnalysisStatus.FAILED, reason=f"The model cannot be fitted: {exc}.")
        return analysis
    analysis.state = {"beta": new_beta, "deviance": pooled["deviance"], "nodes": node_ids}
    analysis.current_round += 1
    analysis.save(update_fields=["state", "current_round", "partial"])
    record(
        "analysis.round_started",
        obj=analysis,
        payload={"round": analysis.current_round, "deviance": pooled["deviance"]},
    )
    _create_round(
        analysis, [r.node for r in done], round_=analysis.current_round, state={"beta": new_beta}
    )
    return analysis


# --- the node's side of a run --------------------------------------------------------------------


def _claimable(node: Node, now):
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


_HELD_BY_RESULT = (
    RunStatus.COMPLETED,
    RunStatus.AWAITING_RELEASE,
    RunStatus.REJECTED_BY_POLICY,
    RunStatus.FAILED,
)


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
    run = (
        Run.objects.select_for_update()
        .select_related("analysis", "node__organisation")
        .get(pk=run.pk)
    )
    digest = result_digest(payload)
    if run.result_hash:
        if run.result_hash == digest:
            return ResultOutcome.DUPLICATE, "This result was already stored."
        return ResultOutcome.CONFLICT, "A different result is already stored for this run."
    if run.status in (RunStatus.EXPIRED, RunStatus.CANCELLED) or run.status in FINAL_RUN_STATUSES:
        return ResultOutcome.GONE, f"The run is {run.get_status_display().lower()}."
    if run.node_id != node.pk or run.status != RunStatus.RUNNING or run.claimed_at is None:
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
            _transition(
                run, RunStatus.FAILED, actor=actor, reason=f"invalid result: {problem}", **common
            )
            _enqueue_advance(run.analysis_id)
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
            _transition(
                run, RunStatus.AWAITING_RELEASE, actor=actor, result=payload.result, **common
            )
        else:
            _transition(run, RunStatus.COMPLETED, actor=actor, result=payload.result, **common)
            _record_release(run)
            _enqueue_advance(run.analysis_id)
    elif payload.status == "refused":
        _transition(
            run,
            RunStatus.REJECTED_BY_POLICY,
            actor=actor,
            reason=payload.reason_code.value,
            **common,
        )
        _enqueue_advance(run.analysis_id)
    else:
        _transition(run, RunStatus.FAILED, actor=actor, reason=payload.reason_code.value, **common)
        _enqueue_advance(run.analysis_id)
    return ResultOutcome.STORED, "Stored."


def _release_refusal(run: Run, node: Node, result: dict[str, Any], *, actor, common) -> str:
    """The portal's re-check of the released cells; on a small count the run fails, the numbers
    are dropped (never stored or shown) and the refusal is audited. Returns the message or ""."""
    from . import release_check

    k = release_check.min_cell_count(node)
    cells = release_check.small_cells(run.analysis.type, run.analysis.version, result, k)
    if not cells:
        return ""
    message = (
        f"Refused by the portal: {len(cells)} released count(s) below the site's minimum cell "
        f"count {k} ({', '.join(cells[:5])})."
    )
    fields = {key: value for key, value in common.items() if key != "result_hash"}
    _transition(run, RunStatus.FAILED, actor=actor, reason=message, result=None, **fields)
    record(
        "run.result_refused",
        actor=actor,
        obj=run,
        organisation=node.organisation,
        payload={"analysis": run.analysis_id, "min_cell_count": k, "cells": cells[:50]},
    )
    _enqueue_advance(run.analysis_id)
    return message


def _result_problem(run: Run, result: dict[str, Any]) -> str:
    kind = get_kind(run.analysis.type, run.analysis.version)
    try:
        model = kind.result_model.model_validate(result)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "result"
        return f"{where}: {first['msg']}"
    if run.analysis.type == GLM:
        expected = terms_for(run.analysis.params)
        if model.terms != expected:
            return f"terms {model.terms} differ from the analysis' {expected}"
        beta = (run.state or {}).get("beta")
        if beta is not None and len(model.beta) != len(beta):
            return "beta has the wrong length"
    return ""


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
    k = int(policy.get("min_cell_count") or 5)
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


def _refuse_differencing(run: Run, *, actor, **fields: Any) -> None:
    _transition(
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
    _enqueue_advance(run.analysis_id)


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


def _review_guard(actor, run: Run) -> None:
    from .permissions import restrict_runs

    if not restrict_runs(Run.objects.filter(pk=run.pk), actor, "review").exists():
        raise PermissionDenied("Only the node's site administrators review its runs.")


@write_transaction
def run_approve(*, actor, run: Run) -> Run:
    _review_guard(actor, run)
    run = (
        Run.objects.select_for_update()
        .select_related("analysis", "node__organisation")
        .get(pk=run.pk)
    )
    if run.status != RunStatus.AWAITING_APPROVAL:
        raise ValidationError(
            f"The run is {run.get_status_display().lower()}, not awaiting approval."
        )
    return _transition(run, RunStatus.DISPATCHED, actor=actor, approved_by=actor)


@write_transaction
def run_decline(*, actor, run: Run, reason: str = "") -> Run:
    """The site admin refuses to run it (approval gate) or to release its numbers (release gate)."""
    _review_guard(actor, run)
    run = (
        Run.objects.select_for_update()
        .select_related("analysis", "node__organisation")
        .get(pk=run.pk)
    )
    if run.status == RunStatus.AWAITING_APPROVAL:
        text = "declined by the site administrator"
    elif run.status == RunStatus.AWAITING_RELEASE:
        text = "release refused by the site administrator"
    else:
        raise ValidationError(f"The run is {run.get_status_display().lower()}; nothing to decide.")
    reason = f"{text}: {reason.strip()}" if reason.strip() else text
    # A withheld result never reaches the researcher: drop the numbers, keep the fact.
    _transition(run, RunStatus.REJECTED_BY_POLICY, actor=actor, reason=reason, result=None)
    _enqueue_advance(run.analysis_id)
    return run


@write_transaction
def run_release(*, actor, run: Run) -> Run:
    _review_guard(actor, run)
    run = (
        Run.objects.select_for_update()
        .select_related("analysis", "node__organisation")
        .get(pk=run.pk)
    )
    if run.status != RunStatus.AWAITING_RELEASE:
        raise ValidationError(
            f"The run is {run.get_status_display().lower()}, not awaiting release."
        )
    # Other releases may have reached the requester while this one waited.
    if _differencing_risk(run, run.result or {}):
        _refuse_differencing(run, actor=actor, result=None)
        return run
    _transition(run, RunStatus.COMPLETED, actor=actor, released_by=actor)
    _record_release(run)
    _enqueue_advance(run.analysis_id)
    return run


# --- periodic ----------------------------------------------------------------------------------------


def runs_expire_overdue(*, now=None) -> int:
    """Open runs past their deadline end as expired; their analyses move on."""
    now = now or timezone.now()
    count = 0
    for run_id in Run.objects.filter(status__in=OPEN_RUN_STATUSES, deadline__lte=now).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            _take_write_lock()
            run = (
                Run.objects.select_for_update()
                .select_related("analysis", "node__organisation")
                .get(pk=run_id)
            )
            if not run.is_open or run.deadline > now:
                continue
            waiting_for = {
                RunStatus.AWAITING_APPROVAL: "not approved",
                RunStatus.AWAITING_RELEASE: "not released",
            }.get(run.status, "no answer from the node")
            _transition(run, RunStatus.EXPIRED, reason=f"{waiting_for} before the deadline")
            _enqueue_advance(run.analysis_id)
            count += 1
    return count


def leases_expire(*, now=None) -> int:
    """A claimed run whose lease ran out is offered again (next attempt): the node may have died."""
    now = now or timezone.now()
    count = 0
    for run_id in Run.objects.filter(
        status=RunStatus.RUNNING, lease_expires_at__lte=now
    ).values_list("pk", flat=True):
        with transaction.atomic():
            _take_write_lock()
            run = (
                Run.objects.select_for_update().select_related("node__organisation").get(pk=run_id)
            )
            if (
                run.status != RunStatus.RUNNING
                or not run.lease_expires_at
                or run.lease_expires_at > now
            ):
                continue
            _transition(
                run,
                RunStatus.DISPATCHED,
                reason="lease expired; offered again",
                attempt=run.attempt + 1,
                lease_expires_at=None,
            )
            count += 1
    return count


def nodes_check_liveness(*, now=None) -> dict[str, int]:
    """Audit each node's passage between online, stale and offline once."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    for node in Node.objects.filter(status=NodeStatus.APPROVED).select_related("organisation"):
        current = node.liveness(now)
        counts[current] = counts.get(current, 0) + 1
        if current != node.last_liveness:
            with transaction.atomic():
                _take_write_lock()
                updated = Node.objects.filter(pk=node.pk, last_liveness=node.last_liveness).update(
                    last_liveness=current
                )
                if updated:
                    record(
                        f"node.{current}",
                        obj=node,
                        organisation=node.organisation,
                        payload={"from": node.last_liveness, "last_seen_at": node.last_seen_at},
                    )
    return counts


def heartbeats_prune(*, now=None, keep_days: int = 8) -> int:
    now = now or timezone.now()
    deleted, _ = NodeHeartbeat.objects.filter(minute__lt=now - timedelta(days=keep_days)).delete()
    return deleted


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


# --- catalogue metadata from a characterisation (at the steward's request) ----------------------

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
def dataset_metadata_refresh(*, steward, dataset) -> Analysis:
    """A data steward asks the nodes serving their dataset for a characterisation of everyone
    with a cancer diagnosis; when it completes, the dataset's working copy gets the number of
    individuals and the typical ages (the steward reviews and publishes as usual)."""
    from catalogue import permissions as catalogue_permissions

    from .models import NodeDataset

    if not catalogue_permissions.can_edit(steward, dataset):
        raise PermissionDenied("Only data stewards of the dataset's publisher refresh it.")
    nodes = [
        link.node
        for link in NodeDataset.objects.filter(
            dataset=dataset, node__status=NodeStatus.APPROVED
        ).select_related("node")
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


def _apply_characterisation(analysis: Analysis) -> None:
    from catalogue.services import dataset_update

    dataset = analysis.datasets.first()
    if dataset is None or analysis.partial:
        analysis.reason = "Catalogue metadata not updated: not every node answered."
        analysis.save(update_fields=["reason"])
        return
    result = analysis.result
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
