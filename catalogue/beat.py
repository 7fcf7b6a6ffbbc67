"""Periodic catalogue jobs, merged into Celery beat by optima_portal/celery.py."""

from celery.schedules import crontab

SCHEDULE = {
    # Datasets whose data is older than the agreed update interval: tell stewards and site admins.
    "catalogue-freshness-overdue": {
        "task": "catalogue.datasets_overdue_notify",
        "schedule": crontab(hour=6, minute=15),
    },
}
