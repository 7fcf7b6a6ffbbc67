"""Writes of the federation app, one module per idea:

- :mod:`.nodes`: the node registry, heartbeats, liveness;
- :mod:`.analyses`: the checks every start makes, start, cancel;
- :mod:`.advance`: pooling a finished round, the next round, the stuck-analysis sweep;
- :mod:`.runs`: rounds of runs, the node's claim and answer, release re-checks, the site admin's
  gates, deadlines and leases;
- :mod:`.catalogue_refresh`: catalogue metadata from a characterisation;
- :mod:`.profiles`: database profiles requested for, and attached to, catalogue datasets.

Every state change writes an audit event in the same transaction (``accounts.audit``,
``write_transaction`` takes the audit chain head first). Services never import ``tasks``: they
enqueue by task name after commit (``accounts.jobs.enqueue``). Callers use this package
(``from federation import services``); the modules import each other one way only
(runs ← nodes, analyses ← catalogue_refresh, profiles ← advance), never back up and never this package.
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
from .nodes import (
    REPORTED_FIELDS,
    default_poll_interval,
    heartbeats_prune,
    node_approve,
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

__all__ = [
    "ANY_CANCER_CONCEPT",
    "DIFFERENCING_REASON",
    "FEDERATED_ANALYTICS",
    "REPORTED_FIELDS",
    "ResultOutcome",
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
    "run_submit_result",
    "runs_expire_overdue",
    "typical_ages",
]
