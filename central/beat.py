"""Periodic central jobs, merged into Celery beat by optima_portal/celery.py."""

from celery.schedules import crontab

SCHEDULE = {
    # The served central copy is older than the dataset's agreed update interval: tell stewards.
    "central-refresh-reminders": {
        "task": "central.refresh_reminders",
        "schedule": crontab(hour=6, minute=30),
    },
    # A retired dataset keeps no central copy: its schemas are dropped.
    "central-retire-versions-of-retired-datasets": {
        "task": "central.retire_versions_of_retired_datasets",
        "schedule": crontab(hour=6, minute=45),
    },
    # Unfinished uploads do not keep their encrypted chunks for ever.
    "central-expire-abandoned-uploads": {
        "task": "central.expire_abandoned_uploads",
        "schedule": crontab(hour=7, minute=0),
    },
    # A check or load whose worker died is queued again (or failed after too many attempts).
    "central-recover-stalled-uploads": {
        "task": "central.recover_stalled_uploads",
        "schedule": crontab(minute="*/5"),
    },
}
