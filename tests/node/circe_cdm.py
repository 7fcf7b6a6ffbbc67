"""A small random OMOP CDM with every table a Circe definition may touch, kept as pandas frames
so the equivalence tests can compute expected cohorts without SQL."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from optima_node.check import create_table_sql
from optima_node.db import Database

MALE, FEMALE = 8507, 8532
BREAST, BREAST_DUCTAL, BREAST_LOBULAR = 4112853, 4300101, 4300102
PROSTATE, PROSTATE_ADENO = 4163261, 4300201
LUNG, LUNG_NSCLC, LUNG_SCLC = 4115276, 4300301, 4300302
HYPERTENSION = 320128
ICD10_C50 = 45591000  # a source code some rows carry instead of the standard concept
TAMOXIFEN, LETROZOLE, CISPLATIN, ENZALUTAMIDE = 1436678, 1315946, 1397599, 42900250
MASTECTOMY, PROSTATECTOMY, LOBECTOMY = 4286804, 4235738, 4154704
PSA, HAEMOGLOBIN = 3013603, 3000963
SMOKER, FAMILY_HISTORY = 4275495, 4167217

CONDITIONS = [
    BREAST,
    BREAST_DUCTAL,
    BREAST_LOBULAR,
    PROSTATE,
    PROSTATE_ADENO,
    LUNG,
    LUNG_NSCLC,
    LUNG_SCLC,
    HYPERTENSION,
    ICD10_C50,
]
DRUGS = [TAMOXIFEN, LETROZOLE, CISPLATIN, ENZALUTAMIDE]
PROCEDURES = [MASTECTOMY, PROSTATECTOMY, LOBECTOMY]
MEASUREMENTS = [PSA, HAEMOGLOBIN]
OBSERVATIONS = [SMOKER, FAMILY_HISTORY]
ANCESTRY = [
    (BREAST, BREAST_DUCTAL),
    (BREAST, BREAST_LOBULAR),
    (PROSTATE, PROSTATE_ADENO),
    (LUNG, LUNG_NSCLC),
    (LUNG, LUNG_SCLC),
]
TABLES = (
    "person",
    "observation_period",
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "measurement",
    "observation",
    "death",
    "concept_ancestor",
    "concept_relationship",
)


def _day(rng: np.random.Generator, low: date, span: int) -> date:
    return low + timedelta(days=int(rng.integers(0, max(span, 1))))


def generate(persons: int = 400, seed: int = 18) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    rows: dict[str, list[dict]] = {t: [] for t in TABLES}
    ids = dict.fromkeys(TABLES, 0)

    def add(table: str, **values: object) -> None:
        ids[table] += 1
        id_column = {"observation_period": "observation_period_id"}.get(table, f"{table}_id")
        rows[table].append({id_column: ids[table], **values})

    for person in range(1, persons + 1):
        gender = MALE if rng.random() < 0.5 else FEMALE
        rows["person"].append(
            {
                "person_id": person,
                "gender_concept_id": gender,
                "year_of_birth": int(rng.integers(1930, 1995)),
                "race_concept_id": 0,
                "ethnicity_concept_id": 0,
            }
        )
        start = _day(rng, date(2005, 1, 1), 2500)
        periods = [(start, start + timedelta(days=int(rng.integers(200, 3000))))]
        if rng.random() < 0.3:
            second = periods[0][1] + timedelta(days=int(rng.integers(30, 400)))
            periods.append((second, second + timedelta(days=int(rng.integers(100, 1500)))))
        for op_start, op_end in periods:
            add(
                "observation_period",
                person_id=person,
                observation_period_start_date=op_start,
                observation_period_end_date=op_end,
                period_type_concept_id=32817,
            )
        low = periods[0][0] - timedelta(days=200)
        span = (periods[-1][1] - low).days + 200

        def events(table: str, concepts: list[int], most: int, **extra: object) -> None:
            for _ in range(int(rng.integers(0, most + 1))):
                day = _day(rng, low, span)
                values = {k: (v(day) if callable(v) else v) for k, v in extra.items()}
                add(table, person_id=person, **values, **_concept(table, rng, concepts, day))

        events("condition_occurrence", CONDITIONS, 4, condition_type_concept_id=32817)
        events("drug_exposure", DRUGS, 4, drug_type_concept_id=32817)
        events("procedure_occurrence", PROCEDURES, 2, procedure_type_concept_id=32817)
        events("measurement", MEASUREMENTS, 4, measurement_type_concept_id=32817)
        events("observation", OBSERVATIONS, 2, observation_type_concept_id=32817)
        if rng.random() < 0.25:
            death = _day(rng, periods[0][0], span)
            rows["death"].append(
                {"person_id": person, "death_date": death, "death_type_concept_id": 32817}
            )
    rows["concept_ancestor"] = [
        {
            "ancestor_concept_id": a,
            "descendant_concept_id": d,
            "min_levels_of_separation": int(a != d),
            "max_levels_of_separation": int(a != d),
        }
        for a, d in ANCESTRY + [(c, c) for c in CONDITIONS if c != ICD10_C50]
    ]
    rows["concept_relationship"] = [
        {
            "concept_id_1": ICD10_C50,
            "concept_id_2": BREAST,
            "relationship_id": "Maps to",
            "valid_start_date": date(1970, 1, 1),
            "valid_end_date": date(2099, 12, 31),
        }
    ]
    return {t: pd.DataFrame(rows[t]) for t in TABLES}


def _concept(table: str, rng: np.random.Generator, concepts: list[int], day: date) -> dict:
    concept = int(rng.choice(concepts))
    prefix = {
        "condition_occurrence": "condition",
        "drug_exposure": "drug",
        "procedure_occurrence": "procedure",
        "measurement": "measurement",
        "observation": "observation",
    }[table]
    out: dict[str, object] = {f"{prefix}_concept_id": concept}
    if table == "condition_occurrence":
        out["condition_start_date"] = day
        out["condition_end_date"] = (
            day + timedelta(days=int(rng.integers(0, 60))) if rng.random() < 0.6 else None
        )
    elif table == "drug_exposure":
        out["drug_exposure_start_date"] = day
        out["drug_exposure_end_date"] = day + timedelta(days=int(rng.integers(0, 120)))
    else:
        out[f"{prefix}_date"] = day
    if table in {"measurement", "observation"}:
        out["value_as_number"] = (
            None if rng.random() < 0.15 else float(np.round(rng.uniform(0, 20), 1))
        )
    return out


def write(db: Database, frames: dict[str, pd.DataFrame]) -> None:
    statements = []
    if db.dialect == "postgresql" and db.schema:
        statements.append(f"CREATE SCHEMA IF NOT EXISTS {db.schema}")
    statements += [f"DROP TABLE IF EXISTS {db.t(t)}" for t in TABLES]
    statements += [create_table_sql(t, db.dialect, db.t(t)) for t in TABLES]
    db.execute_script(statements)
    for table, frame in frames.items():
        records = frame.astype(object).where(frame.notna(), None).itertuples(index=False)
        values = [tuple(_cell(v, db.dialect) for v in row) for row in records]
        db.insert_many(table, list(frame.columns), values)
    db.commit()
    db.forget_tables()


def _cell(value: object, dialect: str) -> object:
    if isinstance(value, date) and dialect == "sqlite":
        return value.isoformat()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value
