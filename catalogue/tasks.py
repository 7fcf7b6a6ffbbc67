"""Thin Celery tasks of the catalogue: each calls one service."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="catalogue.datasets_overdue_notify")
def datasets_overdue_notify() -> int:
    return services.datasets_overdue_notify()
