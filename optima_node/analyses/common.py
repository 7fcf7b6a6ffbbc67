"""Helpers shared by the analyses: refusals, small-cell suppression and a per-process cohort cache."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, MutableMapping
from typing import Any

from optima_node.cohort import Cohort, build_cohort
from optima_node.db import Database
from optima_node.schemas import CohortSpec, ReasonCode


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


def count_rows(
    keys: Iterable[tuple[str, ...]], names: list[str], min_cell_count: int
) -> list[dict[str, Any]]:
    """Count persons per stratum key; zero cells never appear (they are simply absent)."""
    counts = Counter(keys)
    return [
        count_row(dict(zip(names, key, strict=True)), n, min_cell_count)
        for key, n in sorted(counts.items())
        if n > 0
    ]


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


def load_cohort(db: Database, spec: CohortSpec, cache: MutableMapping[str, Any] | None) -> Cohort:
    """Build the cohort once per definition while the agent runs (a GLM asks for it every round)."""
    key = "cohort:" + spec.model_dump_json()
    if cache is not None and key in cache:
        return cache[key]
    cohort = build_cohort(db, spec)
    if cache is not None:
        cache[key] = cohort
    return cohort
