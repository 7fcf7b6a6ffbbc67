"""Shared helpers of the governance HTML views (``perform`` and ``refused`` are in
``accounts.view_actions``, shared by every app)."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from accounts.view_actions import refused


def add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, msgs in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, msgs)
    else:
        form.add_error(None, exc.messages)


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def posted(request, form_class, *, back: str = ""):
    """Bind a small POST form (a reason, a comment): ``(cleaned_data, None)`` when valid, else
    ``(None, a 400 page)`` naming each field's problem, e.g. its length limit.

    Nothing is required here: the service says what is missing, after its permission check (so
    someone who may not comment gets 403, not a 400 for the empty comment)."""
    form = form_class(request.POST)
    for field in form.fields.values():
        field.required = False
    if form.is_valid():
        return form.cleaned_data, None
    messages = [
        f"{_label(form, name)}: {message}"
        for name, errors in form.errors.items()
        for message in errors
    ]
    return None, refused(request, status=400, messages=messages, back=back)


def _label(form, name: str) -> str:
    field = form.fields.get(name)
    return str(field.label or name.replace("_", " ").capitalize()) if field else name
