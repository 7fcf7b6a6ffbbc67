"""One module per analysis type. Each exposes ``run(db, params, state, policy) -> dict``.

An analysis applies its own disclosure rule (suppression, coarsening, refusal) and returns plain
data; :mod:`optima_node.disclosure` then validates and re-checks it before anything leaves the node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from optima_node.analyses import (
    characterisation,
    cohort_count,
    database_profile,
    kaplan_meier,
    logistic_regression,
)
from optima_node.analyses.common import AnalysisRefused
from optima_node.schemas import AnalysisType

Runner = Callable[..., dict[str, Any]]

REGISTRY: dict[tuple[str, int], Runner] = {
    (AnalysisType.COHORT_COUNT.value, 1): cohort_count.run,
    (AnalysisType.CHARACTERISATION.value, 1): characterisation.run,
    (AnalysisType.KAPLAN_MEIER.value, 1): kaplan_meier.run,
    (AnalysisType.LOGISTIC_REGRESSION.value, 1): logistic_regression.run,
    (AnalysisType.DATABASE_PROFILE.value, 1): database_profile.run,
}

# Unsuppressed count tables for secure aggregation (optima_node.secagg_layout encodes them):
# ``raw_table(db, params, policy, cache) -> dict``; never released as they are.
RAW_TABLES: dict[tuple[str, int], Callable[..., dict[str, Any]]] = {
    (AnalysisType.COHORT_COUNT.value, 1): cohort_count.raw_table,
    (AnalysisType.CHARACTERISATION.value, 1): characterisation.raw_table,
    (AnalysisType.KAPLAN_MEIER.value, 1): kaplan_meier.raw_table,
}

__all__ = ["RAW_TABLES", "REGISTRY", "AnalysisRefused", "Runner"]
