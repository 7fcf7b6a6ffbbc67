"""Secure aggregation, the portal's side (docs/federation.md "Secure aggregation").

The portal only relays: it decides at dispatch whether an analysis is pooled securely, keeps
the round (who takes part, its id), relays the nodes' signed key announcements and stores their
masked vectors until every participant's is in. Summing, pooled disclosure control and the end
of the analysis are :mod:`.advance`. No node's cleartext table ever reaches the portal: a secure
run's ``result`` stays empty, and the masked vectors are deleted once summed or abandoned.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.utils import timezone

from accounts.audit import record, write_transaction
from optima_node import secagg, secagg_layout
from optima_node.schemas import SecureHoldPost, SecureKeyPost, SecureMaskedPost

from ..analysis_types import KINDS
from ..models import (
    Analysis,
    AnalysisStatus,
    MaskedVector,
    Node,
    Run,
    RunStatus,
    SecureKey,
    SecureRound,
    SecureRoundStatus,
)
from .runs import ResultOutcome, enqueue_advance, lease_seconds, run_transition

SECURE = "secure"
PER_SITE = "per_site"
MIN_PARTICIPANTS = secagg.MIN_PARTICIPANTS
AWAITING_AT_NODE = "awaiting release at the node"
# The peers long-poll: a node waiting for its peers' keys may ask the portal to hold the request
# up to this many seconds (it answers as soon as the round moves). The round is re-read every
# PEERS_WAIT_STEP (one indexed read) while the round is younger than PEERS_WAIT_FAST seconds:
# keys usually complete within an agent poll interval of the round's start, and the waiting nodes
# should mask at once. Beyond, the interval grows by PEERS_WAIT_GROWTH up to PEERS_WAIT_STEP_MAX:
# a round held up by a site's release review may wait for hours at a few reads a second.
PEERS_WAIT_MAX = 5.0
PEERS_WAIT_STEP = 0.02
PEERS_WAIT_FAST = 120.0
PEERS_WAIT_GROWTH = 1.25
PEERS_WAIT_STEP_MAX = 0.25
# How many long-polls one server process holds at once (setting PEERS_LONG_POLL_SLOTS, default
# 1); beyond, a poll is answered at once and the agent polls again shortly. A gthread worker
# queues requests behind busy threads, so a held poll must never take a process' last thread from
# the node API and the site: give gunicorn at least slots + 1 threads. A server that handles one
# request at a time (``wsgi.multithread`` false: gunicorn's sync worker) never holds a poll.
PEERS_WAIT_SLOTS = max(int(getattr(settings, "PEERS_LONG_POLL_SLOTS", 1)), 0)
_peers_wait_slots = threading.BoundedSemaphore(max(PEERS_WAIT_SLOTS, 1))


# --- the mode decision at dispatch ----------------------------------------------------------------


def required_nodes(nodes: Sequence[Node], min_nodes: int = 0) -> int:
    """The fewest nodes a secure round may have: 3, every node's own minimum, the researcher's."""
    mins = [int((n.policy or {}).get("secure_aggregation_min_nodes") or 3) for n in nodes]
    return max(MIN_PARTICIPANTS, min_nodes, *mins)


def _names(nodes: Sequence[Node]) -> str:
    return ", ".join(n.name for n in nodes)


def aggregation_mode(
    *, analysis_type: str, params: dict[str, Any], nodes: Sequence[Node]
) -> tuple[str, str]:
    """("secure", "") or ("per_site", why), or ("", "") for analyses that are never masked.

    Secure iff every node reports secure aggregation on and a pinned identity key it still
    reports, and there are at least 3 nodes and as many as each node's own minimum.
    """
    if not any(k.secure_aggregation for k in KINDS.values() if k.type == analysis_type):
        return "", ""
    opted_out = [n for n in nodes if not (n.policy or {}).get("secure_aggregation")]
    if opted_out:
        return PER_SITE, (
            f"{_names(opted_out)}: secure aggregation is off in the site policy (or the agent "
            "is too old to report it)"
        )
    unpinned = [n for n in nodes if not n.identity_key or n.identity_in_doubt]
    if unpinned:
        return PER_SITE, (
            f"{_names(unpinned)}: no confirmed identity key (a changed key awaits the site "
            "administrator's confirmation on the node page)"
        )
    needed = required_nodes(nodes)
    if len(nodes) < needed:
        return PER_SITE, (
            f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}: secure aggregation needs at "
            f"least {needed}"
        )
    length = vector_length(analysis_type, params)
    if encoded_size(length) > max_body_bytes() - 4096:
        return PER_SITE, (
            f"the table has {length} cells, too many to mask within the node API's body limit"
        )
    return SECURE, ""


def vector_length(analysis_type: str, params: dict[str, Any]) -> int:
    return len(secagg_layout.layout(analysis_type, params))


def encoded_size(length: int) -> int:
    """Bytes of a masked vector as posted (base64 of 8 bytes per element)."""
    return 4 * ((8 * length + 2) // 3)


def max_body_bytes() -> int:
    return int(getattr(settings, "NODE_API_MAX_BYTES", 1024 * 1024))


def threshold(analysis: Analysis, nodes: Sequence[Node]) -> int:
    """The pooled minimum cell count t: the strictest of the sites' and the datasets' terms."""
    from ..release_check import min_cell_count

    values = [min_cell_count(n) for n in nodes]
    if analysis.terms_min_cell_count:
        values.append(int(analysis.terms_min_cell_count))
    return max(values)


# --- rounds ------------------------------------------------------------------------------------


def round_open(analysis: Analysis, nodes: Sequence[Node]) -> SecureRound:
    """A new round (new id) with ``nodes``; nothing of an earlier round carries over."""
    secure_round = SecureRound.objects.create(
        analysis=analysis, vector_length=vector_length(analysis.type, analysis.params)
    )
    secure_round.participants.set(nodes)
    record(
        "secure_round.started",
        obj=analysis,
        payload={
            "round_id": str(secure_round.round_id),
            "nodes": sorted(n.pk for n in nodes),
            "vector_length": secure_round.vector_length,
        },
    )
    return secure_round


def round_close(secure_round: SecureRound, status: str, *, reason: str = "") -> None:
    """Summed or abandoned: the masked vectors and keys go, the fact stays (audited)."""
    MaskedVector.objects.filter(round=secure_round).delete()
    SecureKey.objects.filter(round=secure_round).delete()
    secure_round.status = status
    secure_round.reason = reason[:300]
    secure_round.finished_at = timezone.now()
    secure_round.save(update_fields=["status", "reason", "finished_at"])
    record(
        f"secure_round.{status}",
        obj=secure_round.analysis,
        payload={"round_id": str(secure_round.round_id), "reason": secure_round.reason},
    )


def rounds_abandon(analysis: Analysis, *, reason: str) -> None:
    for secure_round in analysis.secure_rounds.filter(
        status__in=(SecureRoundStatus.COLLECTING_KEYS, SecureRoundStatus.MASKING)
    ):
        round_close(secure_round, SecureRoundStatus.ABANDONED, reason=reason)


def current_round(analysis: Analysis) -> SecureRound | None:
    return analysis.secure_rounds.order_by("-created_at", "-pk").first()


def decode_vector(text: str, length: int) -> np.ndarray:
    """A posted masked vector (base64 of little-endian uint64) as a uint64 array; ValueError if
    bad."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the vector is not base64") from exc
    if len(raw) != 8 * length:
        raise ValueError(f"the vector has {len(raw) // 8} elements, the round {length}")
    return np.frombuffer(raw, dtype="<u8").astype(np.uint64)


def round_sum(secure_round: SecureRound) -> list[int]:
    """Unmask: the sum of every participant's masked vector (SecAggError if they do not cancel)."""
    vectors = [
        decode_vector(m.vector, secure_round.vector_length)
        for m in MaskedVector.objects.filter(round=secure_round).order_by("node_id")
    ]
    return secagg.unmask_sum(vectors)


# --- the node's side ------------------------------------------------------------------------------


def run_secure_assignment(run: Run) -> dict[str, Any] | None:
    """The ``secure`` part of a run assignment: the round the node joins (None: per site)."""
    if not run.analysis.is_secure:
        return None
    secure_round = _round_of(run)
    if secure_round is None:
        return None
    return {
        "round_id": str(secure_round.round_id),
        "node_id": run.node_id,
        "vector_length": secure_round.vector_length,
    }


def _locked_run(run: Run) -> Run:
    return (
        Run.objects.select_for_update()
        .select_related("analysis", "node__organisation")
        .get(pk=run.pk)
    )


def _renew(run: Run) -> None:
    if run.status == RunStatus.RUNNING:
        run.lease_expires_at = timezone.now() + timedelta(seconds=lease_seconds())
        run.save(update_fields=["lease_expires_at"])


def _open_secure_run(node: Node, run: Run, attempt: int) -> tuple[str, str] | None:
    """The checks every secure call makes; an (outcome, message) refusal or None."""
    analysis = run.analysis
    if not analysis.is_secure:
        return ResultOutcome.CONFLICT, "This run is not part of a secure aggregation."
    if run.node_id != node.pk:
        return ResultOutcome.CONFLICT, "This node holds no claim on the run."
    if not run.is_open or analysis.status != AnalysisStatus.RUNNING:
        return ResultOutcome.GONE, f"The run is {run.get_status_display().lower()}."
    if run.claimed_at is None or run.status not in (RunStatus.RUNNING, RunStatus.AWAITING_RELEASE):
        return ResultOutcome.CONFLICT, "This node holds no claim on the run."
    if attempt != run.attempt:
        return (
            ResultOutcome.CONFLICT,
            f"Attempt {attempt} is not the run's current attempt ({run.attempt}).",
        )
    return None


def _round_of(run: Run) -> SecureRound | None:
    """The analysis' current round if this run's node takes part in it."""
    secure_round = current_round(run.analysis)
    if secure_round is None or not secure_round.participants.filter(pk=run.node_id).exists():
        return None
    return secure_round


@write_transaction
def secure_hold(*, node: Node, run: Run, payload: SecureHoldPost) -> tuple[str, str]:
    """The node keeps the run until its site admin reviews the contribution at the node."""
    run = _locked_run(run)
    refusal = _open_secure_run(node, run, payload.attempt)
    if refusal:
        return refusal
    if run.status == RunStatus.RUNNING:
        run_transition(
            run,
            RunStatus.AWAITING_RELEASE,
            actor=f"node:{node.pk}",
            reason=AWAITING_AT_NODE,
            lease_expires_at=None,
        )
    return ResultOutcome.STORED, "Held at the node for review."


@write_transaction
def secure_key_submit(*, node: Node, run: Run, payload: SecureKeyPost) -> tuple[str, str]:
    """Store the node's signed announcement for the current round; the last one starts masking."""
    run = _locked_run(run)
    refusal = _open_secure_run(node, run, payload.attempt)
    if refusal:
        return refusal
    secure_round = _round_of(run)
    if secure_round is None:
        return ResultOutcome.GONE, "This node no longer takes part in the analysis."
    announcement = payload.announcement
    if str(announcement.get("round_id")) != str(secure_round.round_id):
        return ResultOutcome.CONFLICT, "The announcement is for another round."
    if secure_round.status != SecureRoundStatus.COLLECTING_KEYS:
        return ResultOutcome.CONFLICT, "The round no longer collects keys."
    if (
        announcement.get("node_id") != node.pk
        or announcement.get("analysis_id") != run.analysis_id
        or announcement.get("vector_length") != secure_round.vector_length
    ):
        return ResultOutcome.INVALID, "The announcement names another node, analysis or length."
    if not node.identity_key or node.identity_in_doubt:
        return ResultOutcome.CONFLICT, "The node's identity key is not confirmed."
    try:
        secagg.verify_announcement(dict(announcement), node.identity_key)
    except secagg.SecAggError as exc:
        return ResultOutcome.INVALID, exc.reason
    if run.status == RunStatus.AWAITING_RELEASE:
        # Released at the node: the run is the node's again, under a lease.
        run_transition(
            run,
            RunStatus.RUNNING,
            actor=f"node:{node.pk}",
            reason="released at the node",
            lease_expires_at=timezone.now() + timedelta(seconds=lease_seconds()),
        )
    _renew(run)
    SecureKey.objects.update_or_create(
        round=secure_round, node=node, defaults={"announcement": dict(announcement)}
    )
    record(
        "secure_round.key_posted",
        actor=f"node:{node.pk}",
        obj=run,
        organisation=node.organisation,
        payload={"analysis": run.analysis_id, "round_id": str(secure_round.round_id)},
    )
    participants = secure_round.participants.count()
    if SecureKey.objects.filter(round=secure_round).count() == participants:
        secure_round.status = SecureRoundStatus.MASKING
        secure_round.save(update_fields=["status"])
        record(
            "secure_round.masking",
            obj=run.analysis,
            payload={"round_id": str(secure_round.round_id), "participants": participants},
        )
    return ResultOutcome.STORED, "Stored."


def secure_peers(*, node: Node, run: Run) -> tuple[str, dict[str, Any] | str]:
    """What the node polls: the round's id and state, the announcements once every key is in,
    and the identity key pinned for each participant. Renews the node's lease when less than
    half of it is left.

    A plain read (no write lock) unless the lease needs renewing: nodes poll this while a round
    moves, and a write per poll would queue them behind each other and everyone else (SQLite
    has one writer; every write transaction takes the audit chain head). The announcements are
    read before the round's state: keys are only added while it collects them and only deleted
    when it closes, so with the state read as "masking" after them they are the complete set
    (or the last one came in between: answered as still collecting)."""
    run = Run.objects.select_related("analysis").get(pk=run.pk)
    if run.node_id != node.pk or not run.analysis.is_secure:
        return ResultOutcome.CONFLICT, "This run is not part of a secure aggregation."
    secure_round = _round_of(run)
    if secure_round is None or (not run.is_open and run.status != RunStatus.COMPLETED):
        return ResultOutcome.GONE, f"The run is {run.get_status_display().lower()}."
    if run.status == RunStatus.RUNNING and _lease_half_spent(run):
        _renew_lease(run)
    participants = list(secure_round.participants.order_by("pk"))
    announcements = [
        k.announcement for k in SecureKey.objects.filter(round=secure_round).order_by("node")
    ]
    status = SecureRound.objects.filter(pk=secure_round.pk).values_list("status", flat=True).get()
    body: dict[str, Any] = {
        "round_id": str(secure_round.round_id),
        "status": status,
        "vector_length": secure_round.vector_length,
        "participants": [n.pk for n in participants],
        "announcements": [],
        "identities": {},
    }
    if status == SecureRoundStatus.MASKING and len(announcements) < len(participants):
        # The last key came in between the two reads: the next poll finds it complete.
        body["status"] = SecureRoundStatus.COLLECTING_KEYS
    elif status == SecureRoundStatus.MASKING:
        body["announcements"] = announcements
        body["identities"] = {n.pk: n.identity_key for n in participants}
    return ResultOutcome.STORED, body


def _lease_half_spent(run: Run) -> bool:
    if run.lease_expires_at is None:
        return True
    return run.lease_expires_at - timezone.now() < timedelta(seconds=lease_seconds() / 2)


@write_transaction
def _renew_lease(run: Run) -> None:
    _renew(_locked_run(run))


def secure_peers_wait(*, node: Node, run: Run, wait: float) -> tuple[str, dict[str, Any] | str]:
    """``secure_peers``, held while the round still collects keys: up to ``wait`` seconds (at
    most PEERS_WAIT_MAX) until the round is masking, ends or is replaced by a new round.

    The wait holds no transaction and no lock: it re-reads the analysis' current round (one
    indexed query) every PEERS_WAIT_STEP, so a node long-polling costs the web server one thread
    for at most PEERS_WAIT_MAX seconds (and at most PEERS_WAIT_SLOTS threads per process) and the
    database a few light reads, never a write."""
    outcome, body = secure_peers(node=node, run=run)
    if wait <= 0 or isinstance(body, str) or body["status"] != SecureRoundStatus.COLLECTING_KEYS:
        return outcome, body
    if not PEERS_WAIT_SLOTS or not _peers_wait_slots.acquire(blocking=False):
        return outcome, body
    try:
        _wait_for_round_change(run, body["round_id"], min(wait, PEERS_WAIT_MAX))
    finally:
        _peers_wait_slots.release()
    return secure_peers(node=node, run=run)


def _round_age(run: Run) -> float:
    """Seconds since the run's current round opened (0 when unknown)."""
    opened = (
        SecureRound.objects.filter(analysis_id=run.analysis_id)
        .order_by("-created_at", "-pk")
        .values_list("created_at", flat=True)
        .first()
    )
    return max((timezone.now() - opened).total_seconds(), 0.0) if opened else 0.0


def _wait_for_round_change(run: Run, round_id: str, seconds: float) -> None:
    known = (round_id, SecureRoundStatus.COLLECTING_KEYS)
    rounds = SecureRound.objects.filter(analysis_id=run.analysis_id).order_by("-created_at", "-pk")
    deadline = time.monotonic() + seconds
    fast_until = time.monotonic() + max(PEERS_WAIT_FAST - _round_age(run), 0)
    step = PEERS_WAIT_STEP
    while time.monotonic() < deadline:
        time.sleep(min(step, max(deadline - time.monotonic(), 0)))
        if time.monotonic() >= fast_until:
            step = min(step * PEERS_WAIT_GROWTH, PEERS_WAIT_STEP_MAX)
        current = rounds.values_list("round_id", "status").first()
        if current is None or (str(current[0]), current[1]) != known:
            return


@write_transaction
def secure_masked_submit(*, node: Node, run: Run, payload: SecureMaskedPost) -> tuple[str, str]:
    """Keep the node's masked vector for its round; the last one lets the worker sum them.

    A vector for an abandoned (or any other than the current) round is refused: it is never
    combined with a later round's vectors."""
    run = _locked_run(run)
    refusal = _open_secure_run(node, run, payload.attempt)
    if refusal:
        return refusal
    secure_round = _round_of(run)
    if secure_round is None:
        return ResultOutcome.GONE, "This node no longer takes part in the analysis."
    if payload.round_id != str(secure_round.round_id):
        return ResultOutcome.CONFLICT, "The round was abandoned; a new round has started."
    if secure_round.status != SecureRoundStatus.MASKING:
        return ResultOutcome.CONFLICT, f"The round is {secure_round.get_status_display().lower()}."
    try:
        decode_vector(payload.vector, secure_round.vector_length)
    except ValueError as exc:
        return ResultOutcome.INVALID, str(exc)
    existing = MaskedVector.objects.filter(round=secure_round, node=node).first()
    if existing is not None:
        if existing.vector == payload.vector:
            return ResultOutcome.DUPLICATE, "This masked vector was already stored."
        return ResultOutcome.CONFLICT, "A different masked vector is already stored."
    MaskedVector.objects.create(round=secure_round, node=node, vector=payload.vector)
    _renew(run)
    record(
        "secure_round.masked_posted",
        actor=f"node:{node.pk}",
        obj=run,
        organisation=node.organisation,
        payload={"analysis": run.analysis_id, "round_id": str(secure_round.round_id)},
    )
    if MaskedVector.objects.filter(round=secure_round).count() == (
        secure_round.participants.count()
    ):
        enqueue_advance(run.analysis_id)
    return ResultOutcome.STORED, "Stored."
