"""Reads: item lists and detail, the platform-team statistics, CDS disagreements per rule."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import django_filters
from django import forms
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, TruncWeek
from django.utils import timezone

from accounts.models import Organisation
from accounts.permissions import get_for_user_or_404

from . import permissions
from .charts import StackedSeries
from .models import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    Attachment,
    Category,
    Comment,
    Component,
    FeedbackItem,
    Label,
    Persona,
    Status,
    Vote,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from django.contrib.auth.models import AnonymousUser, User
    from django.http import HttpRequest


def _yes_no(any_label: str = "Any", yes: str = "Yes", no: str = "No") -> forms.Select:
    return forms.Select(choices=[("", any_label), ("true", yes), ("false", no)])


class FeedbackFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    status = django_filters.MultipleChoiceFilter(choices=Status.choices)
    open = django_filters.BooleanFilter(
        method="only_open", label="Open or closed", widget=_yes_no("Any", "Open", "Closed")
    )
    category = django_filters.ChoiceFilter(choices=Category.choices)
    component = django_filters.ChoiceFilter(choices=Component.choices)
    persona = django_filters.ChoiceFilter(choices=Persona.choices)
    site = django_filters.ModelChoiceFilter(
        queryset=Organisation.objects.filter(is_test_site=True), field_name="site"
    )
    shared = django_filters.BooleanFilter(widget=_yes_no())
    label = django_filters.CharFilter(field_name="labels__name", label="Label")
    mine = django_filters.BooleanFilter(
        method="only_mine", label="Mine (authored or assigned)", widget=_yes_no("Everyone's")
    )
    cds_pathway = django_filters.CharFilter(field_name="cds_pathway_id", label="CDS pathway")

    class Meta:
        model = FeedbackItem
        fields = ["q", "status", "open", "category", "component", "persona", "site", "shared"]

    def search(self, queryset, name, value):
        if value.strip().lstrip("#").isdigit():
            return queryset.filter(pk=int(value.strip().lstrip("#")))
        return queryset.filter(Q(title__icontains=value) | Q(description__icontains=value))

    def only_open(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.filter(status__in=OPEN_STATUSES if value else CLOSED_STATUSES)

    def only_mine(self, queryset, name, value):
        user = getattr(self.request, "user", None)
        if value and user is not None and user.is_authenticated:
            return queryset.filter(Q(author=user) | Q(assignee=user))
        return queryset


def _count(model) -> Coalesce:
    """A correlated COUNT per item (no join, so votes and comments do not multiply each other)."""
    rows = model.objects.filter(item=OuterRef("pk")).order_by().values("item")
    return Coalesce(Subquery(rows.annotate(n=Count("pk")).values("n")[:1]), 0)


def _annotated(queryset: QuerySet, user) -> QuerySet:
    qs = queryset.select_related("site", "author", "assignee").annotate(
        vote_count=_count(Vote), comment_count=_count(Comment)
    )
    if getattr(user, "is_authenticated", False):
        qs = qs.annotate(has_voted=Exists(Vote.objects.filter(item=OuterRef("pk"), user=user)))
    return qs.prefetch_related(Prefetch("labels", queryset=Label.objects.order_by("name")))


def feedback_list(
    *,
    user: User | AnonymousUser,
    filters: Mapping[str, Any] | None = None,
    request: HttpRequest | None = None,
    action: str = "view",
) -> QuerySet:
    qs = permissions.restrict(FeedbackItem.objects.all(), user, action)
    if filters:
        fs = FeedbackFilter(filters, queryset=qs, request=request)
        qs = fs.qs if fs.is_valid() else qs.none()
    # A label filter joins one row per item (label names are unique), so no DISTINCT is needed.
    return _annotated(qs, user).order_by("-created_at", "-pk")


def feedback_get_for_user(
    *, user: User | AnonymousUser, pk: int, action: str = "view"
) -> FeedbackItem:
    """One item with what its page shows; 404 if ``user`` may not do ``action`` on it."""
    qs = permissions.restrict(FeedbackItem.objects.all(), user, action)
    qs = _annotated(qs, user).select_related("duplicate_of", "link_type")
    qs = qs.prefetch_related(
        Prefetch("comments", queryset=Comment.objects.select_related("author", "organisation")),
        Prefetch("attachments", queryset=Attachment.objects.all()),
    )
    return get_for_user_or_404(qs, pk=pk)


def attachment_get_for_user(*, user: User | AnonymousUser, item_pk: int, pk: int) -> Attachment:
    return get_for_user_or_404(
        permissions.restrict(Attachment.objects.select_related("item"), user),
        item_id=item_pk,
        pk=pk,
    )


# --- CDS --------------------------------------------------------------------------------------


def cds_disagreements_by_rule(
    pathway_id: str, *, user: User | AnonymousUser | None = None
) -> list[dict]:
    """Disagreements with a pathway's advice, grouped by the rule that decided, most first.

    ``[{"rule_id", "count", "open", "versions", "items": [FeedbackItem, ...]}, ...]``; the rule id
    is "" when the evaluation was undetermined. Pass ``user`` to restrict to what they may see.
    """
    qs = FeedbackItem.objects.filter(
        category=Category.CDS_DISAGREEMENT, cds_pathway_id=pathway_id
    ).select_related("site")
    if user is not None:
        qs = permissions.restrict(qs, user, "view")
    groups: dict[str, dict] = {}
    for item in qs.order_by("-created_at"):
        group = groups.setdefault(
            item.cds_rule_id,
            {"rule_id": item.cds_rule_id, "count": 0, "open": 0, "versions": set(), "items": []},
        )
        group["count"] += 1
        group["open"] += int(item.is_open)
        group["versions"].add(item.cds_snapshot.get("pathway_version", ""))
        group["items"].append(item)
    result = []
    for group in groups.values():
        group["versions"] = sorted(v for v in group["versions"] if v)
        result.append(group)
    return sorted(result, key=lambda g: (-g["count"], g["rule_id"]))


# --- Platform-team statistics -----------------------------------------------------------------


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _as_date(value) -> date:
    if isinstance(value, datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value


DIMENSIONS = {
    "site": ("site__name", "By site"),
    "component": ("component", "By component"),
    "category": ("category", "By category"),
    "status": ("status", "By status"),
}
CHOICE_LABELS = {
    "component": dict(Component.choices),
    "category": dict(Category.choices),
    "status": dict(Status.choices),
}


def items_over_time(
    *, user: User | AnonymousUser, weeks: int = 12, dimension: str = "status"
) -> StackedSeries:
    """Items created per week (the last ``weeks`` weeks), stacked by ``dimension``."""
    field, title = DIMENSIONS[dimension]
    today = timezone.localdate()
    first = _week_start(today) - timedelta(weeks=weeks - 1)
    buckets = [first + timedelta(weeks=i) for i in range(weeks)]
    qs = permissions.restrict(FeedbackItem.objects.all(), user, "dashboard").filter(
        created_at__date__gte=first
    )
    rows = (
        qs.annotate(week=TruncWeek("created_at"))
        .values("week", field)
        .annotate(n=Count("pk"))
        .order_by()
    )
    labels = CHOICE_LABELS.get(dimension, {})
    series: dict[str, list[int]] = defaultdict(lambda: [0] * weeks)
    index = {b: i for i, b in enumerate(buckets)}
    for row in rows:
        week = _week_start(_as_date(row["week"]))
        if week not in index:
            continue
        name = labels.get(row[field], row[field]) or "—"
        series[str(name)][index[week]] += row["n"]
    if labels:  # choice dimensions keep their order (and so their colours) from chart to chart
        order = {str(label): i for i, label in enumerate(labels.values())}
        ordered = dict(sorted(series.items(), key=lambda kv: order.get(kv[0], len(order))))
    else:
        ordered = dict(sorted(series.items(), key=lambda kv: (-sum(kv[1]), kv[0])))
    return StackedSeries(f"Feedback items per week, {title.lower()}", buckets, ordered)


def _durations(pairs) -> dict:
    hours = [(end - start).total_seconds() / 3600 for start, end in pairs if start and end]
    if not hours:
        return {"count": 0, "median_hours": None, "mean_hours": None}
    return {
        "count": len(hours),
        "median_hours": round(statistics.median(hours), 1),
        "mean_hours": round(statistics.fmean(hours), 1),
    }


def feedback_stats(*, user: User | AnonymousUser, weeks: int = 12) -> dict:
    """Numbers for the platform-team dashboard (empty for anyone else)."""
    qs = permissions.restrict(FeedbackItem.objects.all(), user, "dashboard")
    since = timezone.now() - timedelta(weeks=weeks)
    recent = qs.filter(created_at__gte=since)
    by_status = dict(qs.values_list("status").annotate(n=Count("pk")).order_by())
    to_triage = _durations(recent.exclude(triaged_at=None).values_list("created_at", "triaged_at"))
    to_resolve = _durations(
        recent.filter(status=Status.RESOLVED).values_list("created_at", "closed_at")
    )
    most_voted = list(
        qs.filter(status__in=OPEN_STATUSES)
        .select_related("site")
        .annotate(vote_count=Count("votes"))
        .filter(vote_count__gt=0)
        .order_by("-vote_count", "-created_at")[:10]
    )
    return {
        "weeks": weeks,
        "total": sum(by_status.values()),
        "open": sum(by_status.get(s, 0) for s in OPEN_STATUSES),
        "by_status": {Status(k).label: v for k, v in by_status.items()},
        "time_to_triage": to_triage,
        "time_to_resolution": to_resolve,
        "most_voted": most_voted,
    }
