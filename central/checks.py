"""System checks for production settings (``manage.py check --deploy``)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from . import vault


@register(Tags.security, deploy=True)
def check_upload_key(app_configs=None, **kwargs) -> list[Warning]:
    """Without a key every upload of a central copy fails at its first chunk."""
    if settings.CENTRAL_UPLOAD_KEY:
        try:
            vault.key()
        except ImproperlyConfigured as exc:
            return [Warning(str(exc), id="central.W002")]
        return []
    return [
        Warning(
            "CENTRAL_UPLOAD_KEY is not set: uploads of central copies cannot be encrypted at rest "
            "and are refused.",
            hint="Set CENTRAL_UPLOAD_KEY or CENTRAL_UPLOAD_KEY_FILE to 32 random bytes, base64 "
            "(openssl rand -base64 32).",
            id="central.W001",
        )
    ]
