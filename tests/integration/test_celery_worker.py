"""A real Celery worker, started as a process against the configured broker, runs a task."""

import uuid

import pytest
from django.conf import settings

from accounts.models import WorkerHeartbeat
from accounts.tasks import worker_heartbeat
from optima_portal.celery import app
from tests.processes import start_celery_worker, stop, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_completes_a_task(tmp_path):
    queue = f"test-{uuid.uuid4().hex[:8]}"
    name = f"integration-{queue}"
    app.conf.task_always_eager = False
    worker = start_celery_worker(queue, tmp_path / "worker.log")
    try:
        worker_heartbeat.apply_async(args=[name], queue=queue)
        row = wait_for(
            lambda: WorkerHeartbeat.objects.filter(name=name).first(),
            timeout=60,
            what="the worker to run the task",
        )
        assert row.seen_at is not None
    finally:
        stop(worker)
        app.conf.task_always_eager = True
    log = (tmp_path / "worker.log").read_text()
    assert "succeeded" in log, log[-3000:]
    transport = settings.CELERY_BROKER_URL.split(":", 1)[0]
    assert transport in log or transport == "filesystem", log[:2000]
