from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.htmx import render_page

from ..models import Notification
from ..selectors import unread_count


@login_required
def notification_list(request):
    qs = Notification.objects.filter(user=request.user).order_by("-created_at", "-pk")
    page = Paginator(qs, 30).get_page(request.GET.get("page"))
    return render_page(
        request,
        "governance/notification_list.html",
        {"page": page, "unread": unread_count(user=request.user)},
        partial="governance/partials/notification_rows.html",
    )


def notification_count(request):
    return render(
        request,
        "governance/partials/notification_count.html",
        {"unread": unread_count(user=request.user)},
    )


@login_required
@require_POST
def notification_read(request, pk: int):
    notification = get_object_or_404(Notification, pk=pk, user=request.user)
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    if notification.url.startswith("/") and not notification.url.startswith("//"):
        return redirect(notification.url)
    return redirect("governance:notifications")


@login_required
@require_POST
def notification_read_all(request):
    Notification.objects.filter(user=request.user, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    if getattr(request, "htmx", False):
        return render(request, "governance/partials/notification_count.html", {"unread": 0})
    return redirect("governance:notifications")
