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


@register(Tags.security, deploy=True)
def check_oidc_issuers(app_configs=None, **kwargs) -> list[Warning]:
    """Discovery and keys fetched over plain HTTP could be swapped on the way: ID tokens forged."""
    return [
        Warning(
            f"The identity provider {key!r} has a non-HTTPS issuer: {config['issuer']}.",
            hint=f"Set OIDC_{key.upper()}_ISSUER to the provider's https:// issuer URL.",
            id="accounts.W002",
        )
        for key, config in getattr(settings, "OIDC_PROVIDERS", {}).items()
        if not str(config.get("issuer", "")).startswith("https://")
    ]
