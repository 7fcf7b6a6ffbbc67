"""The node's part in a secure-aggregation round (docs/federation.md "Secure aggregation").

A claimed secure run is not executed and posted like the others. The node computes its
unsuppressed table (``optima_node.analyses.RAW_TABLES``), encodes it in the analysis' fixed layout
and keeps the vector here, in memory; it never sends it. Then, polled by the agent's loop:

1. (``review_before_release``) the contribution waits in the review directory until the site
   admin releases it at the node (``optima-node review``); declined, the run is refused;
2. the node posts a fresh X25519 key, signed with its identity, for the portal's current round;
3. once every participant's key is in, it fetches the announcements and the identity keys the
   portal pinned, checks them (``secagg.mask`` refuses a key its signer did not sign, a round of
   fewer than 3 nodes, or fewer than the site's own minimum) and posts its masked vector.

If the portal restarts the round (a node was lost), the node makes a new key for the new round;
a round key is never reused.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from optima_node import secagg, secagg_layout
from optima_node.analyses import RAW_TABLES, AnalysisRefused
from optima_node.db import Database
from optima_node.policy import Policy
from optima_node.review import ReviewError, ReviewStore
from optima_node.schemas import (
    PARAMS_MODELS,
    ReasonCode,
    RunAssignment,
    SecureHoldPost,
    SecureKeyPost,
    SecureMaskedPost,
    SecurePeers,
)

log = logging.getLogger("optima_node")


class SecureRefused(Exception):
    """The node will not take part: the run is refused with ``reason``."""

    def __init__(self, reason: ReasonCode, detail: str = "") -> None:
        super().__init__(detail or reason.value)
        self.reason = reason


@dataclass
class SecureWork:
    """One secure run in progress at this node. ``vector`` never leaves the node unmasked."""

    run: RunAssignment
    vector: np.ndarray
    round_id: str
    key: secagg.RoundKey | None = None
    held: bool = False
    masked_posted: bool = False

    def __repr__(self) -> str:  # never log the vector
        return f"SecureWork(run={self.run.run_id}, round={self.round_id}, held={self.held})"


def raw_table(
    db: Database, run: RunAssignment, policy: Policy, cache: MutableMapping[str, Any]
) -> dict[str, Any]:
    """The node's unsuppressed table for ``run`` (SecureRefused if the site does not allow it)."""
    if run.secure is None:
        raise SecureRefused(ReasonCode.SECURE_AGGREGATION_REFUSED, "not a secure run")
    if not policy.secure_aggregation:
        raise SecureRefused(ReasonCode.SECURE_AGGREGATION_REFUSED, "off in the site policy")
    key = (run.type, run.version)
    if key not in RAW_TABLES:
        raise SecureRefused(ReasonCode.UNSUPPORTED_ANALYSIS)
    if not policy.allows(run.type):
        raise SecureRefused(ReasonCode.POLICY_TYPE_NOT_ALLOWED)
    try:
        params = PARAMS_MODELS[key].model_validate(run.params)
    except ValidationError as exc:
        raise SecureRefused(ReasonCode.INVALID_PARAMETERS) from exc
    try:
        return RAW_TABLES[key](db, params, policy, cache)
    except AnalysisRefused as refusal:
        raise SecureRefused(refusal.reason) from refusal


def encode(run: RunAssignment, table: dict[str, Any]) -> np.ndarray:
    vector = secagg_layout.encode_array(run.type, run.params, table)
    if run.secure is None or len(vector) != run.secure.vector_length:
        raise SecureRefused(ReasonCode.SECURE_AGGREGATION_REFUSED, "vector length differs")
    return vector


def pack(values: np.ndarray | list[int]) -> str:
    """A masked vector as posted: base64 of little-endian unsigned 64-bit integers."""
    return base64.b64encode(np.asarray(values, dtype="<u8").tobytes()).decode("ascii")


def check_peers(peers: SecurePeers, work: SecureWork, policy: Policy) -> None:
    """The node's own checks before masking, beyond the signatures ``secagg.mask`` verifies:
    the round is the one the key was made for, holds this node, and is large enough for the
    site (never fewer than 3 nodes)."""
    assert work.run.secure is not None
    node_id = work.run.secure.node_id
    needed = max(secagg.MIN_PARTICIPANTS, policy.secure_aggregation_min_nodes)
    if peers.round_id != work.round_id:
        raise secagg.SecAggError("the relayed round is not the one this node joined")
    ids = [a.get("node_id") for a in peers.announcements]
    if node_id not in ids or sorted(ids) != sorted(set(peers.participants)):
        raise secagg.SecAggError("the relayed announcements do not match the participants")
    if len(ids) < needed:
        raise secagg.SecAggError(
            f"the round has {len(ids)} nodes; this site takes part in rounds of {needed} or more"
        )


def secure_key_post(work: SecureWork) -> SecureKeyPost:
    assert work.key is not None
    return SecureKeyPost(attempt=work.run.attempt, announcement=work.key.announcement)


def hold_post(work: SecureWork) -> SecureHoldPost:
    return SecureHoldPost(attempt=work.run.attempt)


def masked_post(work: SecureWork, masked: np.ndarray | list[int]) -> SecureMaskedPost:
    return SecureMaskedPost(attempt=work.run.attempt, round_id=work.round_id, vector=pack(masked))


def review_record(run: RunAssignment, table: dict[str, Any]) -> dict[str, Any]:
    """What the review directory keeps of a held run (enough to resume after a restart)."""
    return {
        "run": run.model_dump(mode="json"),
        "run_id": run.run_id,
        "type": run.type,
        "analysis_id": str(run.analysis_id),
        "requester_id": run.requester_id,
        "params": run.params,
        "table": table,
    }


def resume_held(reviews: ReviewStore) -> list[SecureWork]:
    """Held contributions still undecided or released, from the review directory."""
    found = []
    for held in reviews.all():
        if held.status == "declined" and held.data.get("reported"):
            continue
        try:
            run = RunAssignment.model_validate(held.data["run"])
            vector = encode(run, held.data["table"])
        except (KeyError, ValidationError, SecureRefused, secagg_layout.LayoutError, ReviewError):
            log.warning("held run %s cannot be resumed; ignoring its file", held.run_id)
            continue
        assert run.secure is not None
        found.append(SecureWork(run=run, vector=vector, round_id=run.secure.round_id, held=True))
    return found
