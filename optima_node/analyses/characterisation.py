"""characterisation v1: a table-one of the cohort, every cell under the same small-cell rule,
plus secondary suppression where a section would otherwise reveal its one suppressed cell."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import numpy as np

from optima_node.analyses.common import (
    count_row,
    load_cohort,
    protect_margin,
    raw_rows,
    suppress_rows,
)
from optima_node.db import Database
from optima_node.policy import Policy
from optima_node.schemas import FOLLOW_UP_BANDS, CharacterisationParams

# Upper bounds (exclusive, in days) of the follow-up bands <1y, 1-2y, 2-5y; the rest is 5y+.
FOLLOW_UP_EDGES_DAYS = (365, 730, 1826)


def follow_up_band(days: np.ndarray) -> np.ndarray:
    return np.asarray(FOLLOW_UP_BANDS, dtype=object)[
        np.searchsorted(FOLLOW_UP_EDGES_DAYS, days, side="right")
    ]


SECTIONS: tuple[str, ...] = ("by_sex", "by_age_group", "by_index_year", "by_follow_up")


def raw_table(
    db: Database,
    params: CharacterisationParams,
    policy: Policy | None = None,
    cache: MutableMapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Every cell before suppression: secure aggregation's input, never released as it is."""
    cohort = load_cohort(db, params.cohort, cache)

    def by(name: str, values: np.ndarray) -> list[dict[str, Any]]:
        return raw_rows(((str(v),) for v in values), [name])

    return {
        "person_count": len(cohort),
        "deaths": int(cohort.event.sum()),
        "by_sex": by("sex", cohort.sex_label),
        "by_age_group": by("age_group", cohort.age_group),
        "by_index_year": by("index_year", cohort.index_year),
        "by_follow_up": by("follow_up", follow_up_band(cohort.follow_up_days)),
    }


def run(
    db: Database,
    params: CharacterisationParams,
    state: dict[str, Any],
    policy: Policy,
    cache: MutableMapping[str, Any] | None = None,
) -> dict[str, Any]:
    raw = raw_table(db, params, policy, cache)
    k = policy.min_cell_count
    person_count = count_row({}, raw["person_count"], k)
    # Each section adds up to the person count, so a lone suppressed cell needs a partner.
    sections = {
        name: protect_margin(
            suppress_rows(raw[name], k), total_released=not person_count["suppressed"]
        )
        for name in SECTIONS
    }
    return {"person_count": person_count, "deaths": count_row({}, raw["deaths"], k), **sections}
