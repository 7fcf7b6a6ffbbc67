"""Build a cohort from OMOP tables. Person-level rows live only in this process's memory.

SQL text here is assembled from validated identifiers (Database.t) and ``?`` placeholders only;
values always travel as bound parameters, hence the S608 suppressions.

The SQL finds each person's index date, the observation period containing it and any death; the
rest (age, filters, follow-up) is vectorised numpy, which keeps the SQL identical on both dialects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from optima_node.concepts import FEMALE, MALE
from optima_node.db import Database
from optima_node.schemas import AGE_GROUPS, CohortSpec


@dataclass(frozen=True)
class Cohort:
    """One row per person, as parallel numpy arrays."""

    person_id: np.ndarray
    index_date: np.ndarray  # datetime64[D]
    year_of_birth: np.ndarray
    gender_concept_id: np.ndarray
    period_end: np.ndarray  # datetime64[D], end of the period containing the index date
    death_date: np.ndarray  # datetime64[D], NaT when no death is recorded

    def __len__(self) -> int:
        return len(self.person_id)

    @property
    def index_year(self) -> np.ndarray:
        return self.index_date.astype("datetime64[Y]").astype(np.int64) + 1970

    @property
    def age_at_index(self) -> np.ndarray:
        return self.index_year - self.year_of_birth

    @property
    def sex_male(self) -> np.ndarray:
        return (self.gender_concept_id == MALE).astype(np.int64)

    @property
    def sex_label(self) -> np.ndarray:
        return np.where(
            self.gender_concept_id == MALE,
            "male",
            np.where(self.gender_concept_id == FEMALE, "female", "unknown"),
        )

    @property
    def age_group(self) -> np.ndarray:
        band = np.clip(self.age_at_index // 10, 0, len(AGE_GROUPS) - 1)
        return np.asarray(AGE_GROUPS, dtype=object)[band.astype(np.int64)]

    @property
    def event(self) -> np.ndarray:
        """Death on or before the end of the observation period containing the index date."""
        return ~np.isnat(self.death_date) & (self.death_date <= self.period_end)

    @property
    def follow_up_days(self) -> np.ndarray:
        """Days from index to the earlier of death and period end. A death recorded before the
        index date (a data error) counts as a death on the index date rather than negative time."""
        end = np.where(self.event, np.minimum(self.death_date, self.period_end), self.period_end)
        return np.maximum((end - self.index_date).astype(np.int64), 0)

    def subset(self, mask: np.ndarray) -> Cohort:
        return Cohort(
            self.person_id[mask],
            self.index_date[mask],
            self.year_of_birth[mask],
            self.gender_concept_id[mask],
            self.period_end[mask],
            self.death_date[mask],
        )


def _datetime64(values: Sequence[Any]) -> np.ndarray:
    # psycopg returns date objects, SQLite ISO text, sometimes with a time part.
    cleaned = [v[:10] if isinstance(v, str) else ("NaT" if v is None else v) for v in values]
    return np.array(cleaned, dtype="datetime64[D]")


def concept_set(db: Database, spec: CohortSpec) -> list[int]:
    """The requested concepts, plus their descendants when the node has concept_ancestor rows."""
    ids = set(spec.condition_concept_ids)
    if spec.include_descendants and db.has_table("concept_ancestor"):
        marks = ", ".join("?" for _ in spec.condition_concept_ids)
        table = db.t("concept_ancestor")
        sql = f"SELECT DISTINCT descendant_concept_id FROM {table} WHERE ancestor_concept_id IN ({marks})"  # noqa: S608
        rows = db.execute(sql, spec.condition_concept_ids)
        ids.update(int(r[0]) for r in rows)
    return sorted(ids)


def build_cohort(db: Database, spec: CohortSpec) -> Cohort:
    concepts = concept_set(db, spec)
    marks = ", ".join("?" for _ in concepts)
    params: list[Any] = list(concepts)
    sex_filter = ""
    if spec.sex is not None:
        sex_filter = "WHERE p.gender_concept_id = ?"
        params.append(MALE if spec.sex == "male" else FEMALE)
    # SQLite keeps dates as text, sometimes with a time part ("2020-01-01 00:00:00"); date()
    # makes comparisons and MIN/MAX day-exact there. PostgreSQL columns are real dates.
    day = (lambda column: f"date({column})") if db.dialect == "sqlite" else (lambda column: column)
    # If periods overlap (bad data), the one reaching furthest defines follow-up; duplicate death
    # rows resolve to the earliest date.
    sql = f"""
        SELECT i.person_id, i.index_date, p.year_of_birth, p.gender_concept_id,
               MAX({day("op.observation_period_end_date")}) AS period_end,
               MIN({day("d.death_date")}) AS death_date
        FROM (
            SELECT person_id, MIN({day("condition_start_date")}) AS index_date
            FROM {db.t("condition_occurrence")}
            WHERE condition_concept_id IN ({marks})
            GROUP BY person_id
        ) i
        JOIN {db.t("person")} p ON p.person_id = i.person_id
        JOIN {db.t("observation_period")} op
          ON op.person_id = i.person_id
         AND {day("op.observation_period_start_date")} <= i.index_date
         AND {day("op.observation_period_end_date")} >= i.index_date
        LEFT JOIN {db.t("death")} d ON d.person_id = i.person_id
        {sex_filter}
        GROUP BY i.person_id, i.index_date, p.year_of_birth, p.gender_concept_id
        ORDER BY i.person_id
    """  # noqa: S608
    rows = db.execute(sql, params)
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in range(6)]
    cohort = Cohort(
        person_id=np.asarray(columns[0], dtype=np.int64),
        index_date=_datetime64(columns[1]),
        year_of_birth=np.asarray(columns[2], dtype=np.int64),
        gender_concept_id=np.asarray(columns[3], dtype=np.int64),
        period_end=_datetime64(columns[4]),
        death_date=_datetime64(columns[5]),
    )
    return apply_filters(cohort, spec)


def apply_filters(cohort: Cohort, spec: CohortSpec) -> Cohort:
    mask = np.ones(len(cohort), dtype=bool)
    if spec.index_date_min is not None:
        mask &= cohort.index_date >= np.datetime64(spec.index_date_min)
    if spec.index_date_max is not None:
        mask &= cohort.index_date <= np.datetime64(spec.index_date_max)
    age = cohort.age_at_index
    if spec.age_min is not None:
        mask &= age >= spec.age_min
    if spec.age_max is not None:
        mask &= age <= spec.age_max
    if (
        spec.sex is not None
    ):  # already filtered in SQL; kept so the rule lives in one readable place
        mask &= cohort.gender_concept_id == (MALE if spec.sex == "male" else FEMALE)
    return cohort.subset(mask)
