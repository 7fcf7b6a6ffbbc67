from celery.schedules import crontab

SCHEDULE = {
    "federation-expire-runs": {"task": "federation.expire_runs", "schedule": 30.0},
    "federation-node-liveness": {"task": "federation.node_liveness", "schedule": 30.0},
    "federation-prune-heartbeats": {"task": "federation.prune_heartbeats", "schedule": 3600.0},
    # Federated learning: poll open FLARE jobs (the per-job monitor chain does it faster).
    "federation-fl-monitor": {"task": "federation.fl_monitor_open", "schedule": 30.0},
    # Database profiles for the catalogue: every Monday night, from the nodes serving each dataset.
    "federation-profiles-weekly": {
        "task": "federation.profiles_request_scheduled",
        "schedule": crontab(day_of_week=1, hour=2, minute=30),
    },
}
