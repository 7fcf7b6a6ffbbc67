"""One JSON error shape for the whole API:

``{"error": {"status": 400, "code": "invalid", "message": "...", "fields": {"name": ["..."]}}}``
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def _messages(value, prefix: str = "") -> list[str]:
    """Every message under ``value`` as strings; nested fields are named ("sub: message"), so a
    field's messages are always a list of strings, as the schema's ErrorBody documents."""
    if isinstance(value, dict):
        out = []
        for key, sub in value.items():
            label = prefix if key in ("non_field_errors", "detail") else f"{prefix}{key}: "
            out += _messages(sub, label)
        return out
    if isinstance(value, list):
        out = []
        for index, sub in enumerate(value):
            if isinstance(sub, dict | list):
                out += _messages(sub, f"{prefix}{index}." if isinstance(sub, dict) else prefix)
            else:
                out.append(f"{prefix}{sub}")
        return out
    return [f"{prefix}{value}"]


def _flatten(detail) -> tuple[str, dict]:
    if isinstance(detail, dict):
        fields = {}
        for key, value in detail.items():
            fields[key] = _messages(value)
        general = fields.pop("non_field_errors", None) or fields.pop("detail", None)
        message = general[0] if isinstance(general, list) and general else "Invalid input."
        return message, fields
    if isinstance(detail, list):
        return (str(detail[0]) if detail else "Invalid input."), {}
    return str(detail), {}


def error_response(
    status_code: int, code: str, message: str, fields: dict | None = None, headers=None
) -> Response:
    body = {"error": {"status": status_code, "code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return Response(body, status=status_code, headers=headers)


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    if not isinstance(code, str):
        code = "invalid"
    message, fields = _flatten(response.data)
    if (
        response.status_code == status.HTTP_400_BAD_REQUEST
        and fields
        and message == "Invalid input."
    ):
        message = "Some fields are invalid: " + ", ".join(sorted(fields)) + "."
    response.data = {"error": {"status": response.status_code, "code": code, "message": message}}
    if fields:
        response.data["error"]["fields"] = fields
    return response
