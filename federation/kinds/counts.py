"""Cohort count and characterisation: one round, pooled counts with small-cell lower bounds."""

from __future__ import annotations

from typing import Any

from optima_node.schemas import CohortSpec

from ..populations import Population, population, row_populations

Rows = tuple[list[str], list[list[Any]]]


def cohort_count_form_params(data: dict[str, Any]) -> dict[str, Any]:
    return {"stratify_by": list(data.get("stratify_by") or [])}


def cohort_count_csv(result: dict[str, Any]) -> Rows:
    strata = list(result.get("stratify_by", []))
    header = [*strata, "count", "lower_bound"]
    rows = [
        [r.get(s, "") for s in strata] + [r["count"], r["lower_bound"]]
        for r in result.get("rows", [])
    ]
    if strata:
        blanks = [""] * (len(strata) - 1)
        rows.append(["total", *blanks, result.get("total"), result.get("total_lower_bound")])
    return header, rows


def cohort_count_populations(
    cohort: CohortSpec, model: Any, params: dict[str, Any]
) -> list[Population]:
    return row_populations(cohort, model.rows, list(model.stratify_by))


def characterisation_csv(result: dict[str, Any]) -> Rows:
    header = ["section", "stratum", "count", "lower_bound"]
    rows = []
    for key in ("person_count", "deaths"):
        cell = result.get(key, {})
        rows.append([key, "", cell.get("count"), cell.get("lower_bound")])
    for section in ("by_sex", "by_age_group", "by_index_year", "by_follow_up"):
        for r in result.get(section, []):
            label = ", ".join(
                f"{k}={v}" for k, v in r.items() if k not in ("count", "lower_bound", "suppressed")
            )
            rows.append([section, label, r["count"], r["lower_bound"]])
    return header, rows


def characterisation_populations(
    cohort: CohortSpec, model: Any, params: dict[str, Any]
) -> list[Population]:
    out = []
    if not model.person_count.suppressed:
        out.append(population(cohort, int(model.person_count.count)))
    for name, rows in (
        ("sex", model.by_sex),
        ("age_group", model.by_age_group),
        ("index_year", model.by_index_year),
    ):
        out += row_populations(cohort, rows, [name])
    return out
