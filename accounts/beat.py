from django.conf import settings

SCHEDULE = {
    "worker-heartbeat": {"task": "accounts.worker_heartbeat", "schedule": 30.0},
    # Signed audit checkpoints outside the database (accounts/checkpoints.py).
    "audit-checkpoint": {
        "task": "accounts.audit_checkpoint",
        "schedule": settings.AUDIT_CHECKPOINT_INTERVAL_SECONDS,
    },
    # E-mails of notifications the after-commit task could not send (accounts/notifications.py).
    "notification-resend": {"task": "accounts.resend_notification_emails", "schedule": 300.0},
}
