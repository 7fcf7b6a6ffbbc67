"""One helper for pages that also answer htmx requests with a fragment."""

from __future__ import annotations

from django.shortcuts import render


def render_page(
    request, template: str, context: dict, *, partial: str | None = None, status: int = 200
):
    """Full page normally; only ``partial`` when htmx asks for it (and the request is not boosted)."""
    if partial and getattr(request, "htmx", False) and not request.htmx.boosted:
        return render(request, partial, context, status=status)
    return render(request, template, context, status=status)
