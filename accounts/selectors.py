from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from . import permissions
from .models import AuditEvent, Organisation, Role


def restrict_audit(queryset: QuerySet, user) -> QuerySet:
    """Platform admins see the whole trail; org admins their organisations' events; others nothing."""
    if permissions.is_platform_admin(user):
        return queryset
    org_ids = permissions.org_ids_with_role(user, Role.ORG_ADMIN)
    return queryset.filter(organisation_id__in=org_ids) if org_ids else queryset.none()


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


def audit_event_list(*, user, filters: dict | None = None) -> QuerySet:
    qs = restrict_audit(AuditEvent.objects.select_related("organisation"), user)
    fs = AuditEventFilter(filters or {}, queryset=qs)
    return fs.qs if fs.is_valid() else qs.none()


def audit_events_for_object(*, user, obj) -> QuerySet:
    """The timeline of one object, for people who may already see the object itself."""
    return AuditEvent.objects.filter(
        object_type=obj._meta.label_lower, object_id=str(obj.pk)
    ).order_by("seq")
