"""cohort_count v1: persons in the cohort, optionally per sex, 10-year age band and index year."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import numpy as np

from optima_node.analyses.common import attrition_rows, load_cohort, raw_rows, suppress_rows
from optima_node.cohort import Cohort
from optima_node.db import Database
from optima_node.policy import Policy
from optima_node.schemas import CohortCountParams


def strata_columns(cohort: Cohort, names: list[str]) -> list[np.ndarray]:
    by_name = {
        "sex": lambda: cohort.sex_label,
        "age_group": lambda: cohort.age_group,
        "index_year": lambda: cohort.index_year.astype(str),
    }
    return [np.asarray(by_name[name](), dtype=object) for name in names]


def raw_table(
    db: Database,
    params: CohortCountParams,
    policy: Policy | None = None,
    cache: MutableMapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Persons per stratum before suppression: secure aggregation's input, never released as is."""
    cohort = load_cohort(db, params.cohort, cache)
    names = list(params.stratify_by)
    columns = strata_columns(cohort, names)
    keys = zip(*columns, strict=True) if names else (() for _ in range(len(cohort)))
    return {"stratify_by": names, "rows": raw_rows(keys, names)}


def run(
    db: Database,
    params: CohortCountParams,
    state: dict[str, Any],
    policy: Policy,
    cache: MutableMapping[str, Any] | None = None,
) -> dict[str, Any]:
    raw = raw_table(db, params, policy, cache)
    out = {
        "stratify_by": raw["stratify_by"],
        "rows": suppress_rows(raw["rows"], policy.min_cell_count),
    }
    attrition = attrition_rows(db, params.cohort, cache, policy.min_cell_count)
    return {**out, "attrition": attrition} if attrition else out
