"""System checks for production settings (``manage.py check --deploy``)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register

PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@register(Tags.caches, deploy=True)
def check_shared_cache(app_configs=None, **kwargs) -> list[Warning]:
    """Rate limits (API, node API) count in the default cache: it must be shared by all workers."""
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if backend in PER_PROCESS_CACHES:
        return [
            Warning(
                "The default cache is per process: every server worker counts API and node "
                "rate limits on its own, so the real limit is the rate times the workers.",
                hint="Set CACHE_URL to a shared cache, e.g. redis://host:6379/1.",
                id="accounts.W001",
            )
        ]
    return []
