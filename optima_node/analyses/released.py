"""Which sets of persons a released result reveals the size of, for the release ledger.

A count says how many persons a set holds; so does a released stratum, a stratum's events, the
sum of a table's released cells (a total next to suppressed cells), a regression's n and, from its
first round, the persons per level of a 0/1 covariate and outcome. Each such set goes to
:mod:`optima_node.ledger`, which compares it with the sets released earlier. Suppressed cells are
not released, so their persons are only part of the sets around them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel

from optima_node.analyses.characterisation import follow_up_band
from optima_node.analyses.cohort_count import strata_columns
from optima_node.analyses.kaplan_meier import binned_times, strata_labels
from optima_node.analyses.logistic_regression import outcome
from optima_node.cohort import Cohort
from optima_node.schemas import (
    BINARY_COVARIATES,
    CharacterisationResult,
    CohortCountResult,
    CountRow,
    KaplanMeierParams,
    KaplanMeierResult,
    LogisticRegressionParams,
    LogisticRegressionResult,
)

Sets = dict[str, np.ndarray]


def _table(
    prefix: str, names: Sequence[str], columns: Sequence[np.ndarray], rows: Iterable[CountRow]
) -> Sets:
    """Each released cell, the union of the released cells and, for a table of several
    variables, each level's union of released cells (a margin a reader can add up)."""
    n = len(columns[0]) if columns else 0
    sets: Sets = {}
    union = np.zeros(n, dtype=bool)
    margins: dict[tuple[str, str], np.ndarray] = {}
    for row in rows:
        if row.suppressed:
            continue
        mask = np.ones(n, dtype=bool)
        for name, column in zip(names, columns, strict=True):
            mask &= column == row.strata[name]
        label = ",".join(f"{name}={row.strata[name]}" for name in names)
        sets[f"{prefix}:{label}"] = mask
        union |= mask
        if len(names) > 1:
            for name in names:
                key = (name, row.strata[name])
                margins[key] = margins.get(key, np.zeros(n, dtype=bool)) | mask
    sets[f"{prefix}:released"] = union
    for (name, value), mask in margins.items():
        sets[f"{prefix}:{name}={value}"] = mask
    return sets


def _ids(cohort: Cohort, masks: Sets) -> Sets:
    return {label: cohort.person_id[mask] for label, mask in masks.items() if mask.any()}


def released_sets(analysis_type: str, params: Any, result: BaseModel, cohort: Cohort) -> Sets:
    """label → person ids of each set whose size ``result`` reveals."""
    masks: Sets = {}
    everyone = np.ones(len(cohort), dtype=bool)
    if isinstance(result, CohortCountResult):
        names = list(result.stratify_by)
        if names:
            masks |= _table("count", names, strata_columns(cohort, names), result.rows)
        elif result.rows and not result.rows[0].suppressed:
            masks["cohort"] = everyone
    elif isinstance(result, CharacterisationResult):
        if not result.person_count.suppressed:
            masks["cohort"] = everyone
        if not result.deaths.suppressed:
            masks["deaths"] = cohort.event
        sections = (
            ("sex", cohort.sex_label, result.by_sex),
            ("age_group", cohort.age_group, result.by_age_group),
            ("index_year", cohort.index_year.astype(str), result.by_index_year),
            ("follow_up", follow_up_band(cohort.follow_up_days), result.by_follow_up),
        )
        for name, column, rows in sections:
            masks |= _table(name, [name], [np.asarray(column, dtype=object)], rows)
    elif isinstance(result, KaplanMeierResult):
        assert isinstance(params, KaplanMeierParams)
        labels = strata_labels(cohort, params.stratify_by)
        _, event = binned_times(cohort, params.time_unit_days, params.max_time_units)
        union = np.zeros(len(cohort), dtype=bool)
        for stratum in result.strata:
            mask = labels == stratum.stratum
            masks[f"km:{stratum.stratum}"] = mask
            masks[f"km:{stratum.stratum}:events"] = mask & event
            union |= mask
        masks["km:released"] = union
        masks["km:released:events"] = union & event
    elif isinstance(result, LogisticRegressionResult):
        assert isinstance(params, LogisticRegressionParams)
        died, known = outcome(cohort, params.outcome.days)
        masks["glm:n"] = known
        masks["glm:events"] = known & died
        masks["glm:non_events"] = known & ~died
        columns = {"sex_male": cohort.sex_male.astype(bool)}
        for term in result.terms:
            if term in BINARY_COVARIATES:
                level = columns[term]
                for value, in_level in (("1", level), ("0", ~level)):
                    masks[f"glm:{term}={value}"] = known & in_level
                    masks[f"glm:{term}={value}:events"] = known & in_level & died
                    masks[f"glm:{term}={value}:non_events"] = known & in_level & ~died
    return _ids(cohort, masks)
