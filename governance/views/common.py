"""Shared helpers of the governance HTML views."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render


def error_messages(exc: ValidationError) -> list[str]:
    if hasattr(exc, "error_dict"):
        return [m for msgs in exc.message_dict.values() for m in msgs]
    return list(exc.messages)


def add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, msgs in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, msgs)
    else:
        form.add_error(None, exc.messages)


def refused(request, *, status: int, messages: list[str], back: str = ""):
    return render(
        request,
        "governance/refused.html",
        {"status": status, "errors": messages, "back": back},
        status=status,
    )


def perform(
    request,
    action,
    *,
    success_url: str,
    success_message: str = "",
    back: str = "",
    reraise: tuple[type[Exception], ...] = (),
):
    """Run a service call from a POST: redirect on success, 400/403 with the message otherwise.

    Exceptions listed in ``reraise`` are left to the caller (to answer them on its own page)."""
    from django.contrib import messages

    try:
        action()
    except reraise:
        raise
    except PermissionDenied as exc:
        return refused(
            request, status=403, messages=[str(exc) or "You may not do this."], back=back
        )
    except ValidationError as exc:
        return refused(request, status=400, messages=error_messages(exc), back=back)
    if success_message:
        messages.success(request, success_message)
    return redirect(success_url)


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
