"""The signed-in person's notifications: the list, the header's unread count, mark read."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from . import notifications
from .htmx import render_page
from .permissions import get_for_user_or_404
from .selectors import notification_list_for_user, notification_unread_count


@login_required
def notification_list(request):
    page = Paginator(notification_list_for_user(request.user), 30).get_page(request.GET.get("page"))
    return render_page(
        request,
        "accounts/notification_list.html",
        {"page": page, "unread": notification_unread_count(request.user)},
        partial="accounts/partials/notification_rows.html",
    )


def notification_count(request):
    """The header badge's fragment, loaded by htmx so a page's own queries do not grow."""
    return render(
        request,
        "accounts/partials/notification_count.html",
        {"unread": notification_unread_count(request.user)},
    )


@login_required
@require_POST
def notification_read(request, pk: int):
    notification = get_for_user_or_404(notification_list_for_user(request.user), pk=pk)
    notifications.mark_read(user=request.user, ids=[notification.pk])
    if notification.url.startswith("/") and url_has_allowed_host_and_scheme(
        notification.url, allowed_hosts={request.get_host()}
    ):
        return redirect(notification.url)
    return redirect("accounts:notifications")


@login_required
@require_POST
def notification_read_all(request):
    notifications.mark_read(user=request.user, all=True)
    if getattr(request, "htmx", False):
        return render(request, "accounts/partials/notification_count.html", {"unread": 0})
    return redirect("accounts:notifications")
