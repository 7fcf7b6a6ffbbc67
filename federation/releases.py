"""The portal's differencing check: released totals of nested cohort definitions, per node.

The node's release ledger compares exact sets of persons and is the authority. The portal cannot
see persons, but it knows each released total and the cohort definition behind it, so it refuses
early what it can prove: a population nested in (or around) one the same requester, or anyone in
the same project, already received from that node, whose total differs by 1 … k − 1 (DataSHIELD's
``nfilter.subset`` on cohort definitions). Pure functions; services.py stores and decides.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from optima_node.schemas import (
    AGE_GROUPS,
    CohortSpec,
    LogisticRegressionParams,
    parse_result,
)

Population = dict[str, Any]  # {"cohort": CohortSpec as JSON, "outcome_days": int | None, "total"}


def _restrict(cohort: CohortSpec, stratum: str, value: str) -> CohortSpec | None:
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


def _population(cohort: CohortSpec, total: int, outcome_days: int | None = None) -> Population:
    return {"cohort": cohort.model_dump(mode="json"), "outcome_days": outcome_days, "total": total}


def _rows(cohort: CohortSpec, rows: list[Any], names: list[str]) -> list[Population]:
    out, complete = [], True
    for row in rows:
        if row.suppressed:
            complete = False
            continue
        narrowed: CohortSpec | None = cohort
        for name in names:
            narrowed = narrowed and _restrict(narrowed, name, row.strata[name])
        if narrowed is not None:
            out.append(_population(narrowed, int(row.count)))
    if complete and names:
        out.append(_population(cohort, sum(int(r.count) for r in rows)))
    return out


def released_populations(
    analysis_type: str, version: int, params: dict[str, Any], result: dict[str, Any]
) -> list[Population]:
    """Each population whose size a node's result states, as a cohort definition and its total."""
    model = parse_result(analysis_type, version, result)
    cohort = CohortSpec.model_validate(params["cohort"])
    if analysis_type == "cohort_count":
        return _rows(cohort, model.rows, list(model.stratify_by))
    if analysis_type == "characterisation":
        out = []
        if not model.person_count.suppressed:
            out.append(_population(cohort, int(model.person_count.count)))
        for name, rows in (
            ("sex", model.by_sex),
            ("age_group", model.by_age_group),
            ("index_year", model.by_index_year),
        ):
            out += _rows(cohort, rows, [name])
        return out
    if analysis_type == "kaplan_meier":
        out, sizes = [], {}
        for stratum in model.strata:
            size = sum(r.events + r.censored for r in stratum.rows)
            sizes[stratum.stratum] = size
            if model.stratify_by == "none":
                out.append(_population(cohort, size))
                continue
            narrowed = _restrict(cohort, model.stratify_by, stratum.stratum)
            if narrowed is not None:
                out.append(_population(narrowed, size))
        if model.stratify_by != "none" and not model.suppressed_strata:
            out.append(_population(cohort, sum(sizes.values())))
        return out
    if analysis_type == "logistic_regression":
        days = LogisticRegressionParams.model_validate(params).outcome.days
        return [_population(cohort, int(model.n), days)]
    return []


def _within(inner: CohortSpec, outer: CohortSpec) -> bool:
    """Every person ``inner`` defines is one ``outer`` defines (same data)."""
    if sorted(inner.condition_concept_ids) != sorted(outer.condition_concept_ids):
        return False
    if inner.include_descendants != outer.include_descendants:
        return False
    if outer.sex is not None and inner.sex != outer.sex:
        return False

    def at_least(a, b) -> bool:  # inner lower bound at least outer's (None: unbounded)
        return b is None or (a is not None and a >= b)

    def at_most(a, b) -> bool:
        return b is None or (a is not None and a <= b)

    return (
        at_least(inner.age_min, outer.age_min)
        and at_most(inner.age_max, outer.age_max)
        and at_least(inner.index_date_min, outer.index_date_min)
        and at_most(inner.index_date_max, outer.index_date_max)
    )


def _nested(a: Population, b: Population) -> bool:
    """``a`` ⊆ ``b``: the cohort is within, and an outcome restriction (a regression's persons
    with a known outcome) is the same or only on ``a``."""
    if b["outcome_days"] is not None and a["outcome_days"] != b["outcome_days"]:
        return False
    return _within(CohortSpec.model_validate(a["cohort"]), CohortSpec.model_validate(b["cohort"]))


def differencing_risk(
    new: list[Population], earlier: list[Population], min_cell_count: int
) -> bool:
    """True when a new population and an earlier one are nested and their totals differ by
    1 … min_cell_count − 1 persons."""
    for a in new:
        for b in earlier:
            gap = abs(int(a["total"]) - int(b["total"]))
            if 0 < gap < min_cell_count and (_nested(a, b) or _nested(b, a)):
                return True
    return False


def in_scope(scope: str, *, researcher_id: int, project_ids: list[str], record) -> bool:
    """Whether an earlier release record counts for this requester under the node's scope."""
    if scope == "all" or record.researcher_id == researcher_id:
        return True
    return scope == "project" and bool(set(project_ids) & set(record.project_ids or []))
