from __future__ import annotations

import json

from django import template

from optima_node.circe.describe import describe
from optima_node.circe.model import CohortExpression

register = template.Library()

LIVENESS_CLASS = {
    "online": "status-ok",
    "stale": "status-warn",
    "offline": "status-err",
    "never_seen": "status-err",
}
RUN_CLASS = {
    "completed": "status-ok",
    "failed": "status-err",
    "rejected_by_policy": "status-err",
    "expired": "status-err",
    "cancelled": "status-warn",
    "awaiting_approval": "status-warn",
    "awaiting_release": "status-warn",
}


@register.filter
def liveness_class(value: str) -> str:
    return LIVENESS_CLASS.get(value, "")


@register.filter
def run_class(value: str) -> str:
    return RUN_CLASS.get(value, "")


@register.filter
def liveness_label(value: str) -> str:
    return str(value).replace("_", " ").capitalize()


@register.filter
def percent(value) -> str:
    return "—" if value is None else f"{100 * float(value):.1f}%"


@register.filter
def seconds(value) -> str:
    if value is None:
        return "—"
    value = float(value)
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


@register.filter
def circe_sections(params) -> list[tuple[str, list[str]]]:
    """An ATLAS/Circe cohort in the analysis parameters, in words; nothing for the cohort form."""
    cohort = (params or {}).get("cohort") if isinstance(params, dict) else None
    if not isinstance(cohort, dict) or "circe" not in cohort:
        return []
    try:
        return describe(CohortExpression.model_validate(cohort["circe"]))
    except ValueError:  # stored before validation existed; the JSON below still shows it
        return []


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


@register.filter
def num(value, digits: int = 4) -> str:
    if value is None:
        return "—"
    try:
        return (
            f"{float(value):.{int(digits)}g}"
            if abs(float(value)) < 1e-3
            else f"{float(value):.{int(digits)}f}"
        )
    except (TypeError, ValueError):
        return str(value)


@register.filter
def strata_label(row: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in row.items() if k not in ("count", "lower_bound"))


@register.filter
def get(mapping, key):
    return (mapping or {}).get(key)


@register.filter
def released_count(count, lower_bound=False) -> str:
    """A released count as people read it: "≥ 12" when part of it was suppressed, and
    "suppressed" when all of it was (never "≥ 0", which says nothing and reads as an error)."""
    if not lower_bound:
        return "—" if count is None else str(count)
    if not count:
        return "suppressed (small count)"
    return f"≥ {count}"
