"""Writes of the federation app, one module per idea:

- :mod:`.nodes`: the node registry, heartbeats, liveness;
- :mod:`.node_links`: which node serves a dataset (the steward proposes, the site admin confirms);
- :mod:`.analyses`: the checks every start makes, start, cancel;
- :mod:`.advance`: pooling a finished round, the next round, the stuck-analysis sweep;
- :mod:`.runs`: rounds of runs, the node's claim and answer, release re-checks, the site admin's
  gates, deadlines and leases;
- :mod:`.catalogue_refresh`: catalogue metadata from a characterisation;
- :mod:`.secure`: secure aggregation, the portal's relay (mode decision, rounds, keys, masked
  vectors); :mod:`.secure_advance`: dropouts, unmasking and the pooled result.
- :mod:`.profiles`: database profiles requested for, and attached to, catalogue datasets.

Every state change writes an audit event in the same transaction (``accounts.audit``,
``write_transaction`` takes the audit chain head first). Services never import ``tasks``: they
enqueue by task name after commit (``accounts.jobs.enqueue``). Callers use this package
(``from federation import services``); the modules import each other one way only (runs ←
nodes, node_links ← nodes; runs ← secure ← analyses ← catalogue_refresh ← secure_advance ←
advance, profiles ← advance), never back up and never this package.
"""

from __future__ import annotations

from ..analysis_types import FEDERATED_ANALYTICS
from .advance import analyses_advance_stuck, analysis_advance
from .analyses import (
    analysis_cancel,
    analysis_create,
    analysis_open,
    analysis_prepare,
    analysis_start,
    datasets_and_nodes,
    require_entitled_and_served,
)
from .catalogue_refresh import (
    ANY_CANCER_CONCEPT,
    dataset_metadata_refresh,
    typical_ages,
)
from .node_links import node_dataset_confirm, node_dataset_propose
from .nodes import (
    REPORTED_FIELDS,
    default_poll_interval,
    heartbeats_prune,
    node_approve,
    node_confirm_identity,
    node_enrol,
    node_heartbeat,
    node_register,
    node_revoke,
    node_rotate_token,
    node_set_datasets,
    nodes_check_liveness,
)
from .profiles import (
    dataset_profile_attach_from_analysis,
    dataset_profile_request,
    profiles_request_scheduled,
)
from .runs import (
    DIFFERENCING_REASON,
    ResultOutcome,
    lease_seconds,
    leases_expire,
    result_digest,
    run_approve,
    run_claim,
    run_decline,
    run_recipient,
    run_release,
    run_submit_result,
    runs_expire_overdue,
)
from .secure import (
    aggregation_mode,
    run_secure_assignment,
    secure_hold,
    secure_key_submit,
    secure_masked_submit,
    secure_peers,
    secure_peers_wait,
)

__all__ = [
    "ANY_CANCER_CONCEPT",
    "DIFFERENCING_REASON",
    "FEDERATED_ANALYTICS",
    "REPORTED_FIELDS",
    "ResultOutcome",
    "aggregation_mode",
    "analyses_advance_stuck",
    "analysis_advance",
    "analysis_cancel",
    "analysis_create",
    "analysis_open",
    "analysis_prepare",
    "analysis_start",
    "dataset_metadata_refresh",
    "dataset_profile_attach_from_analysis",
    "dataset_profile_request",
    "datasets_and_nodes",
    "default_poll_interval",
    "heartbeats_prune",
    "lease_seconds",
    "leases_expire",
    "node_approve",
    "node_confirm_identity",
    "node_dataset_confirm",
    "node_dataset_propose",
    "node_enrol",
    "node_heartbeat",
    "node_register",
    "node_revoke",
    "node_rotate_token",
    "node_set_datasets",
    "nodes_check_liveness",
    "profiles_request_scheduled",
    "require_entitled_and_served",
    "result_digest",
    "run_approve",
    "run_claim",
    "run_decline",
    "run_recipient",
    "run_release",
    "run_secure_assignment",
    "run_submit_result",
    "runs_expire_overdue",
    "secure_hold",
    "secure_key_submit",
    "secure_masked_submit",
    "secure_peers",
    "secure_peers_wait",
    "typical_ages",
]
