from __future__ import annotations

from django.conf import settings
from django.http import HttpResponseBadRequest, JsonResponse

NUL_MESSAGE = "The URL contains a NUL character."


class RejectNulMiddleware:
    """A NUL byte (``%00``) in the URL path or query string answers 400.

    No URL of the portal contains one, and further in it would reach a ``<str:...>`` lookup
    (PostgreSQL refuses NUL in text: a 500) or a file-system call (``embedded null byte``).
    Placed before WhiteNoise, which looks static paths up on disk.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            if request.path.startswith("/api/"):
                body = {"error": {"status": 400, "code": "invalid", "message": NUL_MESSAGE}}
                return JsonResponse(body, status=400)
            return HttpResponseBadRequest(NUL_MESSAGE, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class SecurityHeadersMiddleware:
    """A Content Security Policy with no inline scripts, and a permissions policy.

    Scripts and styles come only from our own static files, so injected markup cannot run.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.csp = "; ".join(
            [
                "default-src 'self'",
                "script-src 'self'",
                "style-src 'self'",
                "img-src 'self' data:",
                "font-src 'self'",
                "connect-src 'self'",
                "object-src 'none'",
                "base-uri 'self'",
                "form-action 'self'",
                "frame-ancestors 'none'",
            ]
        )

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith("/admin/"):
            response.headers.setdefault("Content-Security-Policy", self.csp)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=()"
        )
        if not settings.DEBUG:
            response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response


class TwoFactorMiddleware:
    """Platform admins and DAC members must pass a TOTP check once per session (accounts.otp).

    Runs after django_otp's OTPMiddleware. Pages redirect to the verify (or enrol) step; session
    API calls answer 403 JSON. Token-authenticated API calls never reach here as a logged-in user
    (DRF authenticates them in the view): ``accounts.authentication`` applies the same predicate
    (``otp.second_factor_required``) and refuses tokens of such people without a confirmed device.
    """

    EXEMPT_PREFIXES = (
        "/accounts/2fa/",
        "/accounts/login/",
        "/accounts/logout/",
        # Federated login and its callback authenticate; linking (which needs a verified second
        # factor) checks for itself in accounts.oidc_views.oidc_link.
        "/accounts/oidc/",
        "/accounts/password/reset/",
        "/static/",
        "/healthz",
        "/readyz",
        "/admin/login/",
        "/admin/logout/",
    )

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        from . import otp

        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(self.EXEMPT_PREFIXES)
            and not (hasattr(user, "is_verified") and user.is_verified())
            and otp.second_factor_required(user)
        ):
            return self._challenge(request, otp)
        return self.get_response(request)

    def _challenge(self, request, otp):
        from urllib.parse import quote

        from django.http import JsonResponse
        from django.shortcuts import redirect

        if request.path.startswith("/api/"):
            return JsonResponse(
                {
                    "error": {
                        "status": 403,
                        "code": "two_factor_required",
                        "message": "Verify your second factor at /accounts/2fa/verify/ first, "
                        "or use a personal API token.",
                    }
                },
                status=403,
            )
        from django.http import HttpResponse

        step = "verify" if otp.confirmed_devices(request.user).exists() else "enrol"
        if request.headers.get("HX-Request"):
            # An htmx fragment (a badge polling on load) must not swap the verify page into
            # itself: navigate the whole page there once, or do nothing when already there.
            response = HttpResponse(status=204)
            if "/accounts/2fa/" not in request.headers.get("HX-Current-URL", ""):
                response["HX-Redirect"] = f"/accounts/2fa/{step}/"
            return response
        target = request.get_full_path() if request.method == "GET" else "/dashboard/"
        return redirect(f"/accounts/2fa/{step}/?next={quote(target)}")


class IdleTimeoutMiddleware:
    """Log out a session left unused for ``SESSION_IDLE_TIMEOUT`` seconds.

    ``SESSION_COOKIE_AGE`` bounds a session's whole life; this bounds the time between two
    requests. The last-activity stamp is refreshed at most once a minute to spare session writes.
    """

    KEY = "_last_activity"

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        import time

        from django.contrib.auth import logout

        timeout = getattr(settings, "SESSION_IDLE_TIMEOUT", 0)
        user = getattr(request, "user", None)
        if timeout and user is not None and user.is_authenticated:
            now = int(time.time())
            last = request.session.get(self.KEY)
            if last is not None and now - int(last) > timeout:
                logout(request)
                request.idle_logged_out = True
            elif last is None or now - int(last) >= 60:
                request.session[self.KEY] = now
        return self.get_response(request)
