"""Kaplan–Meier survival: one round, pooled life tables, a survival plot with numbers at risk."""

from __future__ import annotations

from typing import Any

from optima_node.schemas import CohortSpec

from .. import plots
from ..populations import Population, population, restrict

KM_COLUMNS = [
    "stratum",
    "time",
    "n_at_risk",
    "n_events",
    "n_censored",
    "survival",
    "std_error",
    "ci_low",
    "ci_high",
]


def form_params(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "stratify_by": data.get("km_stratify_by") or "none",
        "time_unit_days": data.get("time_unit_days") or 30,
        "max_time_units": data.get("max_time_units") or 120,
    }


def csv_rows(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    rows = [
        [s["stratum"]] + [r[h] for h in KM_COLUMNS[1:]]
        for s in result.get("strata", [])
        for r in s["table"]
    ]
    return list(KM_COLUMNS), rows


def plot_context(result: dict[str, Any]) -> dict[str, Any]:
    if not result.get("strata"):
        return {}
    ticks = plots.km_ticks(result)
    return {
        "km_svg": plots.kaplan_meier_svg(result),
        "risk_ticks": ticks,
        "risk_rows": [
            {"stratum": s["stratum"], "counts": plots.number_at_risk(s["table"], ticks)}
            for s in result["strata"]
        ],
    }


def populations(cohort: CohortSpec, model: Any, params: dict[str, Any]) -> list[Population]:
    out, sizes = [], {}
    for stratum in model.strata:
        size = sum(r.events + r.censored for r in stratum.rows)
        sizes[stratum.stratum] = size
        if model.stratify_by == "none":
            out.append(population(cohort, size))
            continue
        narrowed = restrict(cohort, model.stratify_by, stratum.stratum)
        if narrowed is not None:
            out.append(population(narrowed, size))
    if model.stratify_by != "none" and not model.suppressed_strata:
        out.append(population(cohort, sum(sizes.values())))
    return out
