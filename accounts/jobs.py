"""Enqueue background work by task name, after the current transaction commits.

Services never import their app's ``tasks`` module (tasks call services, not the reverse), so a
service names the task it wants: ``enqueue("federation.advance_analysis", analysis.pk)``.
The row the service just wrote is the truth; the task only drives it, so it must exist (committed)
before a worker can pick the message up, hence ``on_commit``. With no transaction open the task is
sent at once. ``CELERY_TASK_ALWAYS_EAGER`` (the unit tests) is honoured because the task's own
``delay`` is used, not ``send_task``.
"""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.db import transaction


def task_by_name(name: str):
    """The registered Celery task ``name`` (e.g. ``"federation.advance_analysis"``).

    In a web process the tasks modules may not be imported yet: the first lookup of an unknown
    name runs Celery's autodiscovery (every installed app's ``tasks`` module) once.
    """
    tasks = current_app.tasks
    if name not in tasks:
        current_app.loader.import_default_modules()
    return tasks[name]


def enqueue(name: str, *args: Any, **kwargs: Any) -> None:
    """Send task ``name`` with these arguments once the surrounding transaction has committed."""
    task = task_by_name(name)  # fail now, inside the service, if the name is wrong
    transaction.on_commit(lambda: task.delay(*args, **kwargs))
