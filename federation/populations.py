"""The populations a released result states, as cohort definitions and their totals: the words the
kinds use to say what their results release (``AnalysisKind.populations``), checked against earlier
releases by :mod:`federation.releases`. Pure functions."""

from __future__ import annotations

from datetime import date
from typing import Any

from optima_node.schemas import AGE_GROUPS, CohortSpec

Population = dict[str, Any]  # {"cohort": CohortSpec as JSON, "outcome_days": int | None, "total"}


def restrict(cohort: CohortSpec, stratum: str, value: str) -> CohortSpec | None:
    """The cohort narrowed to one stratum's value, or None when the stratum cannot be written
    as a cohort definition (sex "unknown", follow-up bands) or is empty by definition."""
    data = cohort.model_dump()
    if stratum == "sex":
        if value not in ("male", "female") or (cohort.sex and cohort.sex != value):
            return None
        data["sex"] = value
    elif stratum == "age_group":
        if value not in AGE_GROUPS:
            return None
        low = int(value.rstrip("+").split("-")[0])
        high = 150 if value.endswith("+") else int(value.split("-")[1])
        data["age_min"] = max(low, cohort.age_min or 0)
        data["age_max"] = min(high, 150 if cohort.age_max is None else cohort.age_max)
    elif stratum == "index_year":
        try:
            year = int(value)
            first, last = date(year, 1, 1), date(year, 12, 31)
        except ValueError:
            return None
        data["index_date_min"] = max(first, cohort.index_date_min or first)
        data["index_date_max"] = min(last, cohort.index_date_max or last)
    else:
        return None
    try:
        return CohortSpec.model_validate(data)
    except ValueError:  # an empty range: nothing to compare
        return None


def population(cohort: CohortSpec, total: int, outcome_days: int | None = None) -> Population:
    return {"cohort": cohort.model_dump(mode="json"), "outcome_days": outcome_days, "total": total}


def row_populations(cohort: CohortSpec, rows: list[Any], names: list[str]) -> list[Population]:
    out, complete = [], True
    for row in rows:
        if row.suppressed:
            complete = False
            continue
        narrowed: CohortSpec | None = cohort
        for name in names:
            narrowed = narrowed and restrict(narrowed, name, row.strata[name])
        if narrowed is not None:
            out.append(population(narrowed, int(row.count)))
    if complete and names:
        out.append(population(cohort, sum(int(r.count) for r in rows)))
    return out
