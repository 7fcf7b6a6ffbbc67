SCHEDULE = {
    "federation-expire-runs": {"task": "federation.expire_runs", "schedule": 30.0},
    "federation-node-liveness": {"task": "federation.node_liveness", "schedule": 30.0},
    "federation-prune-heartbeats": {"task": "federation.prune_heartbeats", "schedule": 3600.0},
}
