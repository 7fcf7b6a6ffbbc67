"""Run a service call from a POST view and answer its outcome: one shape for every app's pages.

A service refuses with ``PermissionDenied`` (403) or ``ValidationError`` (400). ``perform`` turns
that into either

* a "Not allowed" / "Not possible" page with the reasons (``refused``), the default; or
* an error message on another page (``failure_url``): the redirect-and-flash pages use.

On success it adds ``success_message`` and redirects to ``success_url``; both may be callables of
the service's return value (the page of the object just created).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

Outcome = str | Callable[[Any], str]


def error_messages(exc: ValidationError) -> list[str]:
    """Every message of a ``ValidationError``, field errors included, in order."""
    if hasattr(exc, "error_dict"):
        return [m for msgs in exc.message_dict.values() for m in msgs]
    return list(exc.messages)


def refused(
    request: HttpRequest, *, status: int, messages: list[str], back: str = ""
) -> HttpResponse:
    """The page saying why something was not done (403: not allowed; 400: not possible now)."""
    return render(
        request,
        "accounts/refused.html",
        {"status": status, "errors": messages, "back": back},
        status=status,
    )


def perform(
    request: HttpRequest,
    action: Callable[[], Any],
    *,
    success_url: Outcome,
    success_message: Outcome = "",
    back: str = "",
    failure_url: str | None = None,
    catch: tuple[type[Exception], ...] = (PermissionDenied, ValidationError),
    reraise: tuple[type[Exception], ...] = (),
) -> HttpResponse:
    """Run ``action()`` (a service call) and answer: redirect on success, else the refusal.

    ``catch`` are the refusals answered here (others propagate: a ``PermissionDenied`` left out
    becomes Django's 403). With ``failure_url`` a refusal is an error message shown there (its
    text: the ``ValidationError`` messages or the ``PermissionDenied`` text); without, the
    ``refused`` page (400/403, with ``back`` as its link). Exceptions listed in ``reraise`` are
    left to the caller (to answer them on its own page)."""
    try:
        result = action()
    except reraise:
        raise
    except catch as exc:
        if failure_url is not None:
            messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
            return redirect(failure_url)
        if isinstance(exc, PermissionDenied):
            return refused(
                request, status=403, messages=[str(exc) or "You may not do this."], back=back
            )
        return refused(request, status=400, messages=error_messages(exc), back=back)
    text = success_message(result) if callable(success_message) else success_message
    if text:
        messages.success(request, text)
    return redirect(success_url(result) if callable(success_url) else success_url)
