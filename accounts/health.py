"""/healthz: the process answers. /readyz: the database and the broker answer (503 naming what is down)."""

from __future__ import annotations

import os

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from kombu import Connection

from .models import WorkerHeartbeat


@never_cache
def healthz(request):
    return JsonResponse({"status": "ok", "version": settings.PORTAL_VERSION})


def check_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True, connection.vendor
    except Exception as exc:  # any driver error means "not ready"
        return False, f"{type(exc).__name__}: {exc}".strip()[:300]


def check_broker() -> tuple[bool, str]:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
        ok = os.path.isdir(folder) and os.access(folder, os.W_OK)
        return ok, "filesystem" if ok else f"broker folder {folder} is not writable"
    try:
        with Connection(
            url, connect_timeout=2, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            return True, conn.transport_cls if isinstance(conn.transport_cls, str) else url.split(
                ":", 1
            )[0]
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}".strip()[:300]


@never_cache
def readyz(request):
    db_ok, db_detail = check_database()
    broker_ok, broker_detail = check_broker()
    worker = None
    if db_ok:
        beat = WorkerHeartbeat.objects.filter(name="celery").first()
        worker = beat.seen_at.isoformat() if beat else None
    checks = {
        "database": {"ok": db_ok, "detail": db_detail},
        "broker": {"ok": broker_ok, "detail": broker_detail},
    }
    down = [name for name, check in checks.items() if not check["ok"]]
    body = {
        "status": "ready" if not down else "unavailable",
        "down": down,
        "checks": checks,
        "worker_last_seen": worker,
        "time": timezone.now().isoformat(),
    }
    return JsonResponse(body, status=503 if down else 200)
