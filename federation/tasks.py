"""Thin, idempotent Celery tasks: each loads rows and calls a service (the rows are the truth).

Services never import this module: they enqueue by task name (``accounts.jobs.enqueue``).
Celery's autodiscovery imports ``<app>.tasks`` only, so this module also imports the
federated-learning tasks (:mod:`federation.flare.tasks`) to register them.
"""

from __future__ import annotations

from celery import shared_task

from . import services
from .flare import tasks as flare_tasks

__all__ = ["advance_analysis", "expire_runs", "flare_tasks", "node_liveness", "prune_heartbeats"]


@shared_task(name="federation.advance_analysis")
def advance_analysis(analysis_id: int) -> str | None:
    analysis = services.analysis_advance(analysis_id=analysis_id)
    return analysis.status if analysis else None


@shared_task(name="federation.expire_runs")
def expire_runs() -> dict[str, int]:
    """Deadlines and leases; also nudges analyses whose round ended while no worker ran."""
    return {
        "expired": services.runs_expire_overdue(),
        "leases": services.leases_expire(),
        "nudged": services.analyses_advance_stuck(),
    }


@shared_task(name="federation.node_liveness")
def node_liveness() -> dict[str, int]:
    return services.nodes_check_liveness()


@shared_task(name="federation.prune_heartbeats")
def prune_heartbeats() -> int:
    return services.heartbeats_prune()


@shared_task(name="federation.profiles_request_scheduled")
def profiles_request_scheduled() -> int:
    """Weekly: a new database profile for every dataset that has one attached."""
    return services.profiles_request_scheduled()
