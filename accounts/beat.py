SCHEDULE = {
    "worker-heartbeat": {"task": "accounts.worker_heartbeat", "schedule": 30.0},
}
