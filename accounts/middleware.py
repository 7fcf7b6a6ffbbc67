from __future__ import annotations

from django.conf import settings


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
        # Swagger UI and ReDoc need inline bootstrapping; they carry no user data.
        if not request.path.startswith(("/api/docs", "/api/redoc", "/admin/")):
            response.headers.setdefault("Content-Security-Policy", self.csp)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=()"
        )
        if not settings.DEBUG:
            response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response
