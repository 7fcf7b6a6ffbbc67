"""Pool one round of node results into the documented result shape of each analysis type.

The statistics are :mod:`federation.stats`; this module only arranges node payloads for it and
adds the contributors, so the researcher can see exactly which nodes a pooled number stands on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from . import stats


def pool_cohort_count(results: Sequence[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    pooled = stats.pool_counts(r["rows"] for r in results)
    out = {"stratify_by": list(params.get("stratify_by", [])), **pooled}
    if any(r.get("attrition") for r in results):
        out["attrition"] = pool_attrition(r.get("attrition") or [] for r in results)
    return out


def pool_attrition(node_steps: Iterable[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """A Circe cohort's attrition summed per step over the nodes (ATLAS's view): a step with a
    suppressed part at some node is a lower bound, like any pooled count."""
    rows = stats.pool_counts(node_steps)["rows"]
    return sorted(({**row, "step": int(row["step"])} for row in rows), key=lambda row: row["step"])


def _pool_cell(rows: list[dict[str, Any]]) -> dict[str, Any]:
    pooled = stats.pool_counts([[row] for row in rows])
    return {"count": pooled["total"], "lower_bound": pooled["total_lower_bound"]}


def pool_characterisation(
    results: Sequence[dict[str, Any]], params: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "person_count": _pool_cell([r["person_count"] for r in results]),
        "deaths": _pool_cell([r["deaths"] for r in results]),
    }
    for section in ("by_sex", "by_age_group", "by_index_year", "by_follow_up"):
        out[section] = stats.pool_counts(r[section] for r in results)["rows"]
    return out


def pool_kaplan_meier(results: Sequence[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    table = stats.pool_km_tables(results)
    curve = stats.kaplan_meier(table)
    suppressed = sorted({s for r in results for s in r.get("suppressed_strata", [])})
    return {
        "time_unit_days": results[0]["time_unit_days"] if results else params["time_unit_days"],
        "max_time_units": results[0]["max_time_units"] if results else params["max_time_units"],
        "stratify_by": params.get("stratify_by", "none"),
        **curve,
        "suppressed_strata": suppressed,
        "coarsened": any(r.get("coarsened") for r in results),
    }
