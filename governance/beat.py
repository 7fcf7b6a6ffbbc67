"""Periodic governance jobs, merged into Celery beat by optima_portal/celery.py."""

from celery.schedules import crontab

SCHEDULE = {
    "governance-agreement-expiry-reminders": {
        "task": "governance.agreements_remind_expiry",
        "schedule": crontab(hour=6, minute=0),
    },
    "governance-expire-agreements": {
        "task": "governance.agreements_expire",
        "schedule": crontab(hour=0, minute=5),
    },
    "governance-request-reminders": {
        "task": "governance.requests_remind",
        "schedule": crontab(hour=7, minute=0),
    },
    "governance-expire-entitlements": {
        # Entitlements end at the end of a day in the custodian's time zone: check every 15 minutes.
        "task": "governance.entitlements_expire",
        "schedule": crontab(minute="*/15"),
    },
    "governance-entitlement-renewal-reminders": {
        "task": "governance.entitlements_remind",
        "schedule": crontab(hour=6, minute=30),
    },
    "governance-entitlement-terms-check": {
        "task": "governance.entitlements_check_terms",
        "schedule": crontab(minute="*/30"),
    },
}
