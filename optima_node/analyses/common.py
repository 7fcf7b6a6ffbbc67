"""Helpers shared by the analyses: refusals, small-cell suppression and a per-process cohort cache."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, MutableMapping
from typing import Any

from optima_node.circe.build import CirceCohort, build_circe_cohort
from optima_node.cohort import Cohort, build_cohort
from optima_node.db import Database
from optima_node.schemas import CirceCohortSpec, CohortSpec, ReasonCode


class AnalysisRefused(Exception):  # a refusal is an outcome, not a failure
    """Raised by an analysis that must not release anything; carries only a reason code."""

    def __init__(self, reason: ReasonCode) -> None:
        super().__init__(reason.value)
        self.reason = reason


def count_row(strata: dict[str, str], count: int, min_cell_count: int) -> dict[str, Any]:
    """A released cell: counts 1..min_cell_count-1 travel as ``count=None, suppressed=True``."""
    if 0 < count < min_cell_count:
        return {"strata": strata, "count": None, "suppressed": True}
    return {"strata": strata, "count": int(count), "suppressed": False}


def raw_rows(keys: Iterable[tuple[str, ...]], names: list[str]) -> list[dict[str, Any]]:
    """Persons per stratum key, unsuppressed, as ``{"strata": {...}, "count": n}`` sorted by key;
    zero cells never appear. What secure aggregation encodes; never released as it is."""
    counts = Counter(keys)
    return [
        {"strata": dict(zip(names, key, strict=True)), "count": int(n)}
        for key, n in sorted(counts.items())
        if n > 0
    ]


def suppress_rows(rows: Iterable[dict[str, Any]], min_cell_count: int) -> list[dict[str, Any]]:
    """The released form of :func:`raw_rows`: each cell under the small-cell rule."""
    return [count_row(row["strata"], row["count"], min_cell_count) for row in rows]


def count_rows(
    keys: Iterable[tuple[str, ...]], names: list[str], min_cell_count: int
) -> list[dict[str, Any]]:
    """Count persons per stratum key; zero cells never appear (they are simply absent)."""
    return suppress_rows(raw_rows(keys, names), min_cell_count)


def protect_margin(rows: list[dict[str, Any]], total_released: bool) -> list[dict[str, Any]]:
    """Secondary suppression for rows that add up to a released total.

    With exactly one suppressed row, total minus the released rows would give its count away, so
    the smallest released row is suppressed as well.
    """
    suppressed = [r for r in rows if r["suppressed"]]
    released = [r for r in rows if not r["suppressed"]]
    if total_released and len(suppressed) == 1 and released:
        smallest = min(released, key=lambda r: (r["count"], sorted(r["strata"].items())))
        smallest.update(count=None, suppressed=True)
    return rows


def load_cohort(
    db: Database, spec: CohortSpec | CirceCohortSpec, cache: MutableMapping[str, Any] | None
) -> Cohort:
    """Build the cohort once per definition while the agent runs (a GLM asks for it every round)."""
    if isinstance(spec, CirceCohortSpec):
        return load_circe(db, spec, cache).cohort
    key = "cohort:" + spec.model_dump_json()
    if cache is not None and key in cache:
        return cache[key]
    cohort = build_cohort(db, spec)
    if cache is not None:
        cache[key] = cohort
    return cohort


def load_circe(
    db: Database, spec: CirceCohortSpec, cache: MutableMapping[str, Any] | None
) -> CirceCohort:
    key = "circe:" + spec.model_dump_json()
    if cache is not None and key in cache:
        return cache[key]
    built = build_circe_cohort(db, spec.circe)
    if cache is not None:
        cache[key] = built
    return built


def attrition_rows(
    db: Database,
    spec: CohortSpec | CirceCohortSpec,
    cache: MutableMapping[str, Any] | None,
    min_cell_count: int,
) -> list[dict[str, Any]]:
    """A Circe cohort's persons after qualification and after each inclusion rule, each cell under
    the small-cell rule, and so is each step's drop from the last released step (ATLAS's
    attrition view); nothing for the portal's own cohort form."""
    if not isinstance(spec, CirceCohortSpec):
        return []
    steps = load_circe(db, spec, cache).attrition
    rows, last_released = [], None
    for i, (name, n) in enumerate(steps):
        row = count_row({"step": str(i), "rule": name[:200]}, n, min_cell_count)
        # The persons a rule removes are a cell too: a step that would reveal 1 … k−1 of them
        # next to the last released step is suppressed as well.
        revealing = last_released is not None and 0 < last_released - n < min_cell_count
        if not row["suppressed"] and revealing:
            row = {**row, "count": None, "suppressed": True}
        if not row["suppressed"]:
            last_released = n
        rows.append(row)
    return rows
