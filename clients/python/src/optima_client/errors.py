"""Typed errors carrying the portal's own message.

Every error the portal's API answers has one shape,
``{"error": {"status": 400, "code": "invalid", "message": "...", "fields": {...}}}``; the client
raises the subclass of :class:`OptimaError` that matches it, with ``message`` and ``fields`` as the
portal wrote them. An analysis that ends badly raises :class:`AnalysisFailedError` (or
:class:`RefusedByPolicyError` when a node's disclosure policy refused it), and a partial result
raises :class:`PartialResultError` unless it was asked for.
"""

from __future__ import annotations

from typing import Any


class OptimaError(Exception):
    """An error answered by the portal (or about its answer).

    Attributes:
        message: The portal's message, for a person to read.
        status: The HTTP status (0 when the error did not come from an HTTP answer).
        code: The portal's machine-readable code (``invalid``, ``permission_denied``, …).
        fields: Per-field messages of a validation error (field name -> messages).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str = "",
        fields: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.fields = dict(fields or {})

    def __str__(self) -> str:
        if not self.fields:
            return self.message
        details = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in self.fields.items())
        return f"{self.message} ({details})"


class ValidationError(OptimaError):
    """HTTP 400: the request's parameters were refused; ``fields`` says which and why."""


class AuthenticationError(OptimaError):
    """HTTP 401: no token, or a token the portal does not accept (revoked, expired, mistyped)."""


class NotEntitledError(OptimaError):
    """HTTP 403: you hold no active entitlement for this (request access to the dataset first)."""


class NotFoundError(OptimaError):
    """HTTP 404: unknown, or not yours to see (the portal answers both the same)."""


class RateLimitedError(OptimaError):
    """HTTP 429: too many requests; wait and try again."""


class AnalysisFailedError(OptimaError):
    """The analysis ended failed or cancelled; ``message`` is the portal's reason.

    Attributes:
        analysis_id: The analysis' number on the portal.
        runs: Each node run (node, organisation, round, status, reason) as the portal reported.
    """

    def __init__(self, message: str, *, analysis_id: int, runs: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.analysis_id = analysis_id
        self.runs = runs


class RefusedByPolicyError(AnalysisFailedError):
    """A node's disclosure policy refused the analysis (its run was rejected by policy)."""


class PartialResultError(OptimaError):
    """The analysis completed on only some nodes; pass ``allow_partial=True`` to accept it.

    Attributes:
        analysis_id: The analysis' number on the portal.
        runs: Each node run, so you can see which nodes did not contribute and why.
    """

    def __init__(self, message: str, *, analysis_id: int, runs: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.analysis_id = analysis_id
        self.runs = runs


_BY_STATUS: dict[int, type[OptimaError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: NotEntitledError,
    404: NotFoundError,
    429: RateLimitedError,
}


def error_from_response(status: int, body: Any, fallback: str = "") -> OptimaError:
    """The typed error for an HTTP answer ``status`` with JSON ``body`` (or text ``fallback``)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or fallback or f"HTTP {status}")
        code = str(error.get("code") or "")
        fields = error.get("fields") or {}
    else:
        message, code, fields = (fallback or f"HTTP {status}").strip()[:500], "", {}
    cls = _BY_STATUS.get(status, OptimaError)
    return cls(message, status=status, code=code, fields=fields)
