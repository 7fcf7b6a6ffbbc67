"""The portal's differencing check: released totals of nested cohort definitions, per node.

The node's release ledger compares exact sets of persons and is the authority. The portal cannot
see persons, but it knows each released total and the cohort definition behind it, so it refuses
early what it can prove: a population nested in (or around) one the same requester, or anyone in
the same project, already received from that node, whose total differs by 1 … k − 1 (DataSHIELD's
``nfilter.subset`` on cohort definitions). Pure functions; services.py stores and decides.
"""

from __future__ import annotations

from typing import Any

from optima_node.schemas import CohortSpec, parse_result

from .analysis_types import get_kind
from .populations import Population


def released_populations(
    analysis_type: str, version: int, params: dict[str, Any], result: dict[str, Any]
) -> list[Population]:
    """Each population whose size a node's result states, as a cohort definition and its total
    (what each kind releases is its own: ``AnalysisKind.populations``)."""
    model = parse_result(analysis_type, version, result)
    if "circe" in params["cohort"]:
        # Nesting between ATLAS definitions cannot be decided from their text; the node's release
        # ledger, which compares the persons themselves, is the check for them.
        return []
    cohort = CohortSpec.model_validate(params["cohort"])
    kind = get_kind(analysis_type, version)
    return kind.populations(cohort, model, params) if kind else []


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
