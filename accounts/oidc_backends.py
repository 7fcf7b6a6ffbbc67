"""``PASSWORD_LOGIN=0``: no password is checked anywhere (log-in page, admin site).

Placed before ModelBackend in ``AUTHENTICATION_BACKENDS``: raising PermissionDenied stops
``django.contrib.auth.authenticate`` at once, so no later backend tries the password. It has no
``get_user`` on purpose: sessions (and ``force_login``) are never bound to it.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied


def password_login_enabled() -> bool:
    return bool(getattr(settings, "PASSWORD_LOGIN", True))


class PasswordLoginSwitch:
    def authenticate(self, request, username=None, password=None, **kwargs):
        if password is not None and not password_login_enabled():
            raise PermissionDenied("Password login is turned off (PASSWORD_LOGIN=0).")
        return None
