from __future__ import annotations

from typing import TYPE_CHECKING

import django_filters
from django.db.models import QuerySet

from . import permissions
from .models import AuditEvent, Notification, Organisation

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.db.models import Model


_WHEN = "Enter a date such as 2026-03-01 or a time such as 2026-03-01T08:30."


class AuditEventFilter(django_filters.FilterSet):
    action = django_filters.CharFilter(lookup_expr="istartswith", label="Action starts with")
    actor = django_filters.CharFilter(
        field_name="actor_repr", lookup_expr="iexact", label="Actor (username)"
    )
    object_type = django_filters.CharFilter(lookup_expr="iexact")
    object_id = django_filters.CharFilter()
    organisation = django_filters.ModelChoiceFilter(
        queryset=Organisation.objects.all(), field_name="organisation"
    )
    since = django_filters.IsoDateTimeFilter(
        field_name="timestamp",
        lookup_expr="gte",
        label="From (date or ISO time)",
        error_messages={"invalid": _WHEN},
    )
    until = django_filters.IsoDateTimeFilter(
        field_name="timestamp",
        lookup_expr="lte",
        label="Until (date or ISO time)",
        error_messages={"invalid": _WHEN},
    )

    class Meta:
        model = AuditEvent
        fields = ["action", "actor", "object_type", "object_id", "organisation", "since", "until"]


def audit_event_list(*, user: User, filters: dict | None = None) -> QuerySet:
    qs = permissions.restrict(AuditEvent.objects.select_related("organisation"), user)
    fs = AuditEventFilter(filters or {}, queryset=qs)
    return fs.qs if fs.is_valid() else qs.none()


def audit_events_for_object(*, user: User, obj: Model) -> QuerySet:
    """The timeline of one object, for people who may already see the object itself."""
    return AuditEvent.objects.filter(
        object_type=obj._meta.label_lower, object_id=str(obj.pk)
    ).order_by("seq")


def notification_list_for_user(user: User, *, unread_only: bool = False) -> QuerySet:
    """A person's own notifications, newest first (nobody else's, whatever their role)."""
    qs = permissions.restrict(Notification.objects.all(), user)
    if unread_only:
        qs = qs.filter(read_at__isnull=True)
    return qs.order_by("-created_at", "-pk")


def notification_unread_count(user: User) -> int:
    return notification_list_for_user(user, unread_only=True).count()
