"""Thin Celery tasks: load rows and call a service. Safe to run twice.

Services never import this module: they enqueue a task by its name (``accounts.jobs.enqueue``),
and Celery beat names the periodic ones (``beat.py``). The names below are that contract.
"""

from __future__ import annotations

from celery import shared_task

from . import jobs

# --- Beat jobs (scheduled in beat.py); each is idempotent -------------------------------------


@shared_task(name="governance.agreements_remind_expiry")
def agreements_remind_expiry() -> int:
    return jobs.agreements_remind_expiry()


@shared_task(name="governance.agreements_expire")
def agreements_expire() -> int:
    return jobs.agreements_expire()


@shared_task(name="governance.requests_remind")
def requests_remind() -> int:
    return jobs.requests_remind()


@shared_task(name="governance.entitlements_expire")
def entitlements_expire() -> int:
    return jobs.entitlements_expire()


@shared_task(name="governance.entitlements_remind")
def entitlements_remind() -> int:
    return jobs.entitlements_remind()


@shared_task(name="governance.entitlements_check_terms")
def entitlements_check_terms() -> int:
    return jobs.entitlements_check_terms()
