"""Database profiles in the catalogue: their shape, freshness, and what HealthDCAT-AP says of them.

A profile is the pooled ``database_profile`` result the nodes serving a dataset released (built by
``federation.kinds.profile``; the catalogue receives it through ``services.dataset_profile_attach``
and never imports federation). Counts are ``{"count": n, "lower_bound": bool}``: a lower bound
when some node suppressed a small cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

REQUIRED_KEYS = ("person_count", "by_sex_age", "tables", "cancers")
FRESH, OVERDUE, UNKNOWN = "fresh", "overdue", "unknown"
FRESHNESS_CHOICES = ((FRESH, "Fresh"), (OVERDUE, "Update overdue"))


def _date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def check_shape(data: Any) -> dict[str, Any]:
    """A pooled profile, or ValidationError naming what is missing."""
    if not isinstance(data, dict):
        raise ValidationError({"profile": ["A profile is a JSON object."]})
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise ValidationError({"profile": [f"The profile lacks {', '.join(missing)}."]})
    for key in ("by_sex_age", "tables", "cancers"):
        if not isinstance(data[key], list):
            raise ValidationError({"profile": [f"{key} must be a list."]})
    return data


def data_updated_on(data: dict[str, Any]) -> date | None:
    """When the data behind the dataset was last refreshed: the CDM source release date the nodes
    report, or else the newest record of any clinical table."""
    released = _date(data.get("source_release_date"))
    if released:
        return released
    dates = [d for d in (_date(t.get("newest_date")) for t in data.get("tables", [])) if d]
    return max(dates, default=None)


def refresh_due_on(updated_on: date | None, interval_days: int | None) -> date | None:
    if updated_on is None or not interval_days:
        return None
    return updated_on + timedelta(days=interval_days)


@dataclass(frozen=True)
class Freshness:
    updated_on: date | None
    days_ago: int | None
    interval_days: int | None
    due_on: date | None
    state: str  # FRESH, OVERDUE or UNKNOWN (no profile, or no date in it)

    @property
    def overdue(self) -> bool:
        return self.state == OVERDUE


def freshness(dataset: Any, today: date | None = None) -> Freshness:
    """How fresh the data behind ``dataset`` is, from its attached profile and agreed interval."""
    today = today or timezone.localdate()
    profile = getattr(dataset, "profile", None) if _has_profile(dataset) else None
    interval = dataset.update_interval_days
    updated = profile.data_updated_on if profile else None
    if updated is None:
        state = OVERDUE if interval and profile is None else UNKNOWN
        return Freshness(None, None, interval, None, state)
    due = refresh_due_on(updated, interval)
    state = OVERDUE if due and due < today else FRESH
    return Freshness(updated, (today - updated).days, interval, due, state)


def _has_profile(dataset: Any) -> bool:
    from django.core.exceptions import ObjectDoesNotExist

    try:
        return dataset.profile is not None
    except ObjectDoesNotExist:
        return False


def _count(cell: Any) -> int | None:
    return int(cell["count"]) if isinstance(cell, dict) and cell.get("count") is not None else None


def dcat_values(data: dict[str, Any]) -> dict[str, Any]:
    """What HealthDCAT-AP has terms for: numberOfRecords (records over the clinical tables),
    numberOfUniqueIndividuals, the temporal coverage (the observation span), the population
    coverage (in words) and the CDM tables (``hasVariables``)."""
    tables = [t for t in data.get("tables", []) if t.get("table")]
    records = [int(t.get("records") or 0) for t in tables if t["table"] != "person"]
    persons = _count(data.get("person_count"))
    cancers = [
        f"{c['cancer']} {c['count']}"
        for c in data.get("cancers", [])
        if c.get("cancer") and c.get("count")
    ]
    start, end = _date(data.get("observation_start")), _date(data.get("observation_end"))
    coverage = ""
    if persons is not None:
        coverage = f"{persons} persons in the OMOP CDM"
        if start and end:
            coverage += f", observed {start.isoformat()} to {end.isoformat()}"
        if cancers:
            coverage += "; persons with a cancer diagnosis: " + ", ".join(cancers)
        coverage += " (database profile; small counts suppressed at the nodes)."
    return {
        "number_of_records": sum(records) if records else None,
        "number_of_individuals": persons,
        "temporal_start": start,
        "temporal_end": end,
        "population_coverage": coverage,
        "variables": [t["table"] for t in tables if t.get("records")],
    }
