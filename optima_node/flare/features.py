"""Features for federated learning, read from the site's OMOP database.

Same cohort semantics as the federated analyses (:func:`optima_node.cohort.build_cohort`) and the
same outcome as ``logistic_regression`` v1: death within ``days`` of the index date, persons whose
outcome is unknown at ``days`` (censored earlier) are left out. Covariates are standardised with
fixed constants (no statistics leave the site to compute them); stage is the highest stage group
recorded as a measurement, with a "stage known" indicator where a site has none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optima_node.cohort import Cohort, build_cohort
from optima_node.db import Database
from optima_node.schemas import FederatedLearningParams

# Site-local "cancer stage group, 1-4" measurement concept (optima_node.synth.LOCAL_STAGE).
STAGE_CONCEPT_ID = 2_000_001_001
# (centre, scale) per covariate: fixed, so that every site and the reference use the same inputs.
SCALING: dict[str, tuple[float, float]] = {
    "age_at_index": (65.0, 12.0),
    "sex_male": (0.0, 1.0),
    "index_year": (2015.0, 4.5),
    "stage": (2.5, 1.0),
    "stage_known": (0.0, 1.0),
}
VALIDATION_SHARE_MODULUS = 5  # one person in five validates


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    @property
    def n(self) -> int:
        return len(self.y_train) + len(self.y_val)


def stage_by_person(db: Database, person_ids: np.ndarray) -> dict[int, float]:
    """Highest recorded stage group (1-4) per person; empty when the site records none."""
    if not db.has_table("measurement") or len(person_ids) == 0:
        return {}
    table = db.t("measurement")
    sql = (
        f"SELECT person_id, MAX(value_as_number) FROM {table} "  # noqa: S608
        "WHERE measurement_concept_id = ? AND value_as_number IS NOT NULL GROUP BY person_id"
    )
    wanted = set(person_ids.tolist())
    return {
        int(pid): float(v)
        for pid, v in db.execute(sql, [STAGE_CONCEPT_ID])
        if int(pid) in wanted and 1 <= float(v) <= 4
    }


def design(
    db: Database, params: FederatedLearningParams, cohort: Cohort | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X standardised, y, person_id) for persons whose outcome is known at ``days``."""
    cohort = cohort if cohort is not None else build_cohort(db, params.cohort)
    days = params.outcome.days
    follow_up = cohort.follow_up_days
    died_within = cohort.event & (follow_up <= days)
    known = died_within | (follow_up >= days)
    raw: dict[str, np.ndarray] = {
        "age_at_index": cohort.age_at_index.astype(float),
        "sex_male": cohort.sex_male.astype(float),
        "index_year": cohort.index_year.astype(float),
    }
    if "stage" in params.covariates:
        stages = stage_by_person(db, cohort.person_id)
        stage = np.array([stages.get(int(p), np.nan) for p in cohort.person_id], dtype=float)
        have = ~np.isnan(stage)
        raw["stage_known"] = have.astype(float)
        # Unknown stage sits at the centre, so it contributes nothing but the indicator.
        raw["stage"] = np.where(have, stage, SCALING["stage"][0])
    columns = []
    for feature in params.features:
        centre, scale = SCALING[feature]
        columns.append((raw[feature][known] - centre) / scale)
    x = np.column_stack(columns) if columns else np.zeros((int(known.sum()), 0))
    return np.ascontiguousarray(x), died_within[known].astype(float), cohort.person_id[known]


def is_validation(person_id: np.ndarray) -> np.ndarray:
    """A fixed, reproducible person-level split (Knuth's multiplicative hash)."""
    mixed = (person_id.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    return (mixed % np.uint64(VALIDATION_SHARE_MODULUS)) == 0


def split(x: np.ndarray, y: np.ndarray, person_id: np.ndarray) -> Split:
    val = is_validation(person_id)
    return Split(x[~val], y[~val], x[val], y[val])


def load_split(db: Database, params: FederatedLearningParams) -> Split:
    return split(*design(db, params))
