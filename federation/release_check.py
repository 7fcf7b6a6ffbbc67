"""The portal's own check of the cells a node releases, before a result is stored or shown.

Each node's disclosure gate (``optima_node.disclosure``) already refuses counts in
1..min_cell_count-1. The portal does not rely on it: a compromised or misconfigured agent could post
anything its token allows. It re-checks every count cell of a result, found through the agent's own
result schemas, against the minimum cell count the node reported in its heartbeat (the policy the
portal knows), or the agent's default when the node never reported one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from optima_node.schemas import (
    CharacterisationResult,
    CohortCountResult,
    CountRow,
    DatabaseProfileResult,
    KaplanMeierResult,
    LogisticRegressionResult,
    parse_result,
)

# optima_node.policy.Policy's default: what an agent applies when its site set nothing.
DEFAULT_MIN_CELL_COUNT = 5


def min_cell_count(node) -> int:
    """The smallest count the node's site policy releases, as its last heartbeat reported it."""
    reported = (node.policy or {}).get("min_cell_count")
    if isinstance(reported, int) and not isinstance(reported, bool) and reported >= 1:
        return reported
    return DEFAULT_MIN_CELL_COUNT


def _small(value: int | None, k: int) -> bool:
    return value is not None and 0 < value < k


def _rows(name: str, rows: Iterable[CountRow], k: int) -> list[str]:
    return [
        f"{name}[{i}]" for i, row in enumerate(rows) if not row.suppressed and _small(row.count, k)
    ]


def small_cells(analysis_type: str, version: int, result: dict[str, Any], k: int) -> list[str]:
    """Where ``result`` releases a count below ``k`` (empty: nothing to refuse).

    A result that does not parse is reported as one problem: the portal cannot verify it.
    """
    try:
        model = parse_result(analysis_type, version, result)
    except KeyError:
        return []  # no count cells the portal knows of (not a node analysis)
    except ValidationError:
        return ["result"]
    if isinstance(model, CohortCountResult):
        return _rows("rows", model.rows, k)
    if isinstance(model, CharacterisationResult):
        found = _rows("person_count", [model.person_count], k)
        found += _rows("deaths", [model.deaths], k)
        for name in ("by_sex", "by_age_group", "by_index_year", "by_follow_up"):
            found += _rows(name, getattr(model, name), k)
        return found
    if isinstance(model, KaplanMeierResult):
        return [
            f"strata[{s}].rows[{r}].{column}"
            for s, stratum in enumerate(model.strata)
            for r, row in enumerate(stratum.rows)
            for column in ("events", "censored")
            if _small(getattr(row, column), k)
        ]
    if isinstance(model, DatabaseProfileResult):
        found = _rows("person_count", [model.person_count], k)
        found += _rows("by_sex_age", model.by_sex_age, k)
        found += _rows("tables", [t.records for t in model.tables], k)
        return found + _rows("cancers", model.cancers, k)
    if isinstance(model, LogisticRegressionResult):
        # The node's rule: each outcome level holds at least k persons, so n is at least 2k.
        return ["n"] if model.n < 2 * k else []
    return []
