"""Synthetic OMOP CDM v5.4 data for demos and tests: cancer patients whose survival depends on
age, sex and stage, so that every analysis has something non-trivial to find.

Everything is drawn from one seeded numpy generator in a fixed order: the same seed and arguments
give the same rows. Concept ids are standard OMOP ids where we know them; the few we had to invent
sit in the 2 000 000 000+ range that OMOP reserves for site-local concepts (vocabulary "OPTIMA").
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from optima_node.check import create_table_sql
from optima_node.concepts import EHR, FEMALE, MALE
from optima_node.db import Database

POSITIVE, NEGATIVE = 9191, 9189
MALIGNANT_NEOPLASTIC_DISEASE = 443392
ESSENTIAL_HYPERTENSION = 320128

# Site-local concepts (OMOP reserves ids above 2 000 000 000 for them).
LOCAL_BREAST_DUCTAL = 2_000_000_001
LOCAL_NSCLC_ADENO = 2_000_000_002
LOCAL_STAGE = 2_000_001_001
LOCAL_ISUP = 2_000_001_002
LOCAL_KI67 = 2_000_001_003
LOCAL_PDL1 = 2_000_001_004
LOCAL_EGFR = 2_000_001_005
LOCAL_ALK = 2_000_001_006
PSA, ER, PR, HER2 = 3013603, 36203168, 36203170, 36203114

# (concept_id, name, domain, vocabulary, class, standard, code)
# fmt: off
CONCEPTS: tuple[tuple[int, str, str, str, str, str | None, str], ...] = (
    (MALE, "MALE", "Gender", "Gender", "Gender", "S", "M"),
    (FEMALE, "FEMALE", "Gender", "Gender", "Gender", "S", "F"),
    (EHR, "EHR", "Type Concept", "Type Concept", "Type Concept", "S", "OMOP4976890"),
    (POSITIVE, "Positive", "Meas Value", "SNOMED", "Qualifier Value", "S", "10828004"),
    (NEGATIVE, "Negative", "Meas Value", "SNOMED", "Qualifier Value", "S", "260385009"),
    (MALIGNANT_NEOPLASTIC_DISEASE, "Malignant neoplastic disease", "Condition", "SNOMED", "Clinical Finding", "S", "363346000"),
    (4163261, "Malignant tumor of prostate", "Condition", "SNOMED", "Clinical Finding", "S", "399068003"),
    (200962, "Primary malignant neoplasm of prostate", "Condition", "SNOMED", "Clinical Finding", "S", "93974005"),
    (4112853, "Malignant tumor of breast", "Condition", "SNOMED", "Clinical Finding", "S", "254837009"),
    (LOCAL_BREAST_DUCTAL, "Malignant tumor of breast, ductal (OPTIMA local)", "Condition", "OPTIMA", "Clinical Finding", "S", "LOCAL-BREAST-DUCTAL"),
    (4115276, "Non-small cell lung cancer", "Condition", "SNOMED", "Clinical Finding", "S", "254637007"),
    (LOCAL_NSCLC_ADENO, "Non-small cell lung cancer, adenocarcinoma (OPTIMA local)", "Condition", "OPTIMA", "Clinical Finding", "S", "LOCAL-NSCLC-ADENO"),
    (4110591, "Small cell carcinoma of lung", "Condition", "SNOMED", "Clinical Finding", "S", "254632001"),
    (ESSENTIAL_HYPERTENSION, "Essential hypertension", "Condition", "SNOMED", "Clinical Finding", "S", "59621000"),
    (PSA, "Prostate specific Ag [Mass/volume] in Serum or Plasma", "Measurement", "LOINC", "Lab Test", "S", "2857-1"),
    (ER, "Estrogen receptor Ag [Presence] in Breast cancer specimen by Immune stain", "Measurement", "LOINC", "Lab Test", "S", "85337-4"),
    (PR, "Progesterone receptor Ag [Presence] in Breast cancer specimen by Immune stain", "Measurement", "LOINC", "Lab Test", "S", "85339-0"),
    (HER2, "HER2 [Presence] in Breast cancer specimen by Immune stain", "Measurement", "LOINC", "Lab Test", "S", "85319-2"),
    (LOCAL_STAGE, "Cancer stage group, 1-4 (OPTIMA local)", "Measurement", "OPTIMA", "Clinical Observation", "S", "LOCAL-STAGE"),
    (LOCAL_ISUP, "ISUP grade group (OPTIMA local)", "Measurement", "OPTIMA", "Clinical Observation", "S", "LOCAL-ISUP"),
    (LOCAL_KI67, "Ki-67 proliferation index, % (OPTIMA local)", "Measurement", "OPTIMA", "Lab Test", "S", "LOCAL-KI67"),
    (LOCAL_PDL1, "PD-L1 tumour proportion score, % (OPTIMA local)", "Measurement", "OPTIMA", "Lab Test", "S", "LOCAL-PDL1"),
    (LOCAL_EGFR, "EGFR mutation (OPTIMA local)", "Measurement", "OPTIMA", "Lab Test", "S", "LOCAL-EGFR"),
    (LOCAL_ALK, "ALK rearrangement (OPTIMA local)", "Measurement", "OPTIMA", "Lab Test", "S", "LOCAL-ALK"),
)
# fmt: on

# (ancestor, descendant, min_levels, max_levels); self rows are added for every condition concept.
HIERARCHY: tuple[tuple[int, int, int], ...] = (
    (MALIGNANT_NEOPLASTIC_DISEASE, 4163261, 1),
    (MALIGNANT_NEOPLASTIC_DISEASE, 200962, 2),
    (4163261, 200962, 1),
    (MALIGNANT_NEOPLASTIC_DISEASE, 4112853, 1),
    (MALIGNANT_NEOPLASTIC_DISEASE, LOCAL_BREAST_DUCTAL, 2),
    (4112853, LOCAL_BREAST_DUCTAL, 1),
    (MALIGNANT_NEOPLASTIC_DISEASE, 4115276, 1),
    (MALIGNANT_NEOPLASTIC_DISEASE, LOCAL_NSCLC_ADENO, 2),
    (4115276, LOCAL_NSCLC_ADENO, 1),
    (MALIGNANT_NEOPLASTIC_DISEASE, 4110591, 1),
)


@dataclass(frozen=True)
class CancerModel:
    concepts: tuple[int, ...]  # condition concepts recorded at diagnosis
    concept_weights: tuple[float, ...]
    male_share: float
    stage_weights: tuple[float, float, float, float]
    yearly_hazard: float  # baseline hazard of death for a 65-year-old woman at stage I


CANCERS: dict[str, CancerModel] = {
    "prostate": CancerModel((4163261, 200962), (0.7, 0.3), 1.0, (0.35, 0.35, 0.2, 0.1), 0.02),
    "breast": CancerModel(
        (4112853, LOCAL_BREAST_DUCTAL), (0.75, 0.25), 0.01, (0.4, 0.35, 0.17, 0.08), 0.02
    ),
    "lung": CancerModel(
        (4115276, LOCAL_NSCLC_ADENO, 4110591), (0.5, 0.35, 0.15), 0.55, (0.2, 0.15, 0.3, 0.35), 0.12
    ),
}
NON_CANCER_SHARE = 0.15
STAGE_LOG_HR = np.array([0.0, 0.5, 1.2, 2.0])
AGE_LOG_HR_PER_YEAR = 0.04
MALE_LOG_HR = 0.3
FIRST_INDEX, LAST_INDEX = np.datetime64("2008-01-01"), np.datetime64("2022-12-31")
ADMIN_END = np.datetime64("2024-12-31")

SYNTH_TABLES: tuple[str, ...] = (
    "person",
    "observation_period",
    "condition_occurrence",
    "death",
    "measurement",
    "cdm_source",
    "concept",
    "concept_ancestor",
)


class SynthError(ValueError):
    pass


def _dates(values: np.ndarray, dialect: str) -> list[object]:
    # SQLite stores ISO text; psycopg wants date objects.
    return (
        values.astype(str).tolist()
        if dialect == "sqlite"
        else values.astype("datetime64[D]").tolist()
    )


Tables = dict[str, tuple[list[str], list[tuple]]]


@dataclass
class _Cohort:
    """The people drawn so far, one array entry per person (the steps below add to it)."""

    person_id: np.ndarray
    has_cancer: np.ndarray
    cancer_idx: np.ndarray  # index into the chosen cancers; -1: no cancer, only hypertension
    male: np.ndarray
    age: np.ndarray
    index_date: np.ndarray
    year_of_birth: np.ndarray
    stage: np.ndarray | None = None
    condition: np.ndarray | None = None
    hazard: np.ndarray | None = None
    death_at: np.ndarray | None = None
    dies_in_period: np.ndarray | None = None
    registry_death: np.ndarray | None = None
    period_start: np.ndarray | None = None
    period_end: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.person_id)


def generate(persons: int, seed: int, cancers: Sequence[str]) -> Tables:
    """Draw all tables in memory: table -> (columns, rows). Dates are numpy datetime64[D].

    The steps draw from one generator in this order; reordering them changes every table."""
    _check_arguments(persons, cancers)
    rng = np.random.default_rng(seed)
    models = [CANCERS[c] for c in cancers]
    cohort = _draw_people(rng, persons, models)
    _draw_diagnoses(rng, cohort, models)
    _draw_follow_up(rng, cohort)
    tables: Tables = {"person": _person_table(cohort)}
    tables["observation_period"] = _observation_period_table(rng, cohort)
    tables["condition_occurrence"] = _condition_table(rng, cohort)
    tables["death"] = _death_table(cohort)
    tables["measurement"] = _measurement_table(rng, cohort, cancers)
    tables["cdm_source"] = _cdm_source_table(seed)
    tables.update(_vocabulary_tables())
    return tables


def _check_arguments(persons: int, cancers: Sequence[str]) -> None:
    if persons < 1:
        raise SynthError("--persons must be at least 1")
    unknown = [c for c in cancers if c not in CANCERS]
    if unknown or not cancers:
        raise SynthError(
            f"unknown cancer(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(CANCERS)}"
        )


def _draw_people(rng: np.random.Generator, n: int, models: list[CancerModel]) -> _Cohort:
    """Who has which cancer, sex, age and index date."""
    has_cancer = rng.random(n) >= NON_CANCER_SHARE
    cancer_idx = np.where(has_cancer, rng.integers(0, len(models), n), -1)
    male_share = np.full(n, 0.5)
    for k, m in enumerate(models):
        male_share[cancer_idx == k] = m.male_share
    male = rng.random(n) < male_share
    age = np.clip(np.round(rng.normal(66, 11, n)), 18, 99).astype(int)
    span = int((LAST_INDEX - FIRST_INDEX).astype(int))
    index_date = FIRST_INDEX + rng.integers(0, span + 1, n).astype("timedelta64[D]")
    index_year = index_date.astype("datetime64[Y]").astype(int) + 1970
    return _Cohort(
        person_id=np.arange(1, n + 1),
        has_cancer=has_cancer,
        cancer_idx=cancer_idx,
        male=male,
        age=age,
        index_date=index_date,
        year_of_birth=index_year - age,
    )


def _draw_diagnoses(rng: np.random.Generator, c: _Cohort, models: list[CancerModel]) -> None:
    """Stage, the diagnosis concept and the baseline hazard of death of each person."""
    stage = np.zeros(c.n, dtype=int)
    hazard = np.full(c.n, 0.015)
    condition = np.full(c.n, ESSENTIAL_HYPERTENSION)
    u_stage, u_concept = rng.random(c.n), rng.random(c.n)
    for k, m in enumerate(models):
        sel = c.cancer_idx == k
        stage[sel] = 1 + np.searchsorted(
            np.cumsum(m.stage_weights), u_stage[sel], side="right"
        ).clip(0, 3)
        pick = np.searchsorted(np.cumsum(m.concept_weights), u_concept[sel], side="right").clip(
            0, len(m.concepts) - 1
        )
        condition[sel] = np.array(m.concepts)[pick]
        hazard[sel] = m.yearly_hazard
    hazard[condition == 4110591] *= 3  # small-cell lung cancer
    c.stage, c.condition, c.hazard = stage, condition, hazard


def _draw_follow_up(rng: np.random.Generator, c: _Cohort) -> None:
    """Death (proportional hazards on age, sex and stage), loss to follow-up and the
    observation period around the index date."""
    n, index_date, stage = c.n, c.index_date, c.stage
    log_hr = (
        AGE_LOG_HR_PER_YEAR * (c.age - 65)
        + MALE_LOG_HR * c.male
        + np.where(stage > 0, STAGE_LOG_HR[stage - 1], 0)
    )
    survival_days = np.ceil(rng.exponential(365.25 / (c.hazard * np.exp(log_hr)))).astype(int)
    loss_days = np.ceil(rng.exponential(365.25 * 15, n)).astype(int)
    death_at = index_date + survival_days.astype("timedelta64[D]")
    censor_at = np.minimum(index_date + loss_days.astype("timedelta64[D]"), ADMIN_END)
    dies_in_period = death_at <= censor_at
    period_end = np.where(dies_in_period, death_at, censor_at)
    # Some deaths after the period ends reach the CDM from a registry: they must stay censored.
    registry_death = ~dies_in_period & (death_at <= ADMIN_END) & (rng.random(n) < 0.3)
    period_start = index_date - rng.integers(0, 3 * 365, n).astype("timedelta64[D]")
    # 2% start observing after diagnosis: their index date is outside any period, so they drop out.
    late = rng.random(n) < 0.02
    period_start = np.where(
        late, index_date + rng.integers(1, 200, n).astype("timedelta64[D]"), period_start
    )
    c.death_at, c.dies_in_period, c.registry_death = death_at, dies_in_period, registry_death
    c.period_start, c.period_end = period_start, np.maximum(period_end, period_start)


def _person_table(c: _Cohort) -> tuple[list[str], list[tuple]]:
    columns = [
        "person_id",
        "gender_concept_id",
        "year_of_birth",
        "race_concept_id",
        "ethnicity_concept_id",
        "person_source_value",
        "gender_source_value",
    ]
    ids = c.person_id.tolist()
    rows = zip(
        ids,
        np.where(c.male, MALE, FEMALE).tolist(),
        c.year_of_birth.tolist(),
        [0] * c.n,
        [0] * c.n,
        [f"synth-{i}" for i in ids],
        np.where(c.male, "M", "F").tolist(),
        strict=True,
    )
    return columns, list(rows)


def _observation_period_table(
    rng: np.random.Generator, c: _Cohort
) -> tuple[list[str], list[tuple]]:
    """The current period; a tenth also had an earlier, separate one that ended before it."""
    earlier = rng.random(c.n) < 0.1
    e_end = c.period_start - rng.integers(30, 400, c.n).astype("timedelta64[D]")
    e_start = e_end - rng.integers(100, 2000, c.n).astype("timedelta64[D]")
    op_person = np.concatenate([c.person_id, c.person_id[earlier]])
    op_start = np.concatenate([c.period_start, e_start[earlier]])
    op_end = np.concatenate([c.period_end, e_end[earlier]])
    columns = [
        "observation_period_id",
        "person_id",
        "observation_period_start_date",
        "observation_period_end_date",
        "period_type_concept_id",
    ]
    rows = zip(
        range(1, len(op_person) + 1),
        op_person.tolist(),
        op_start,
        op_end,
        [EHR] * len(op_person),
        strict=True,
    )
    return columns, list(rows)


def _condition_table(rng: np.random.Generator, c: _Cohort) -> tuple[list[str], list[tuple]]:
    """The diagnosis; a later repeat record (sometimes with a sibling concept) for half;
    hypertension before diagnosis for a fifth of the cancer patients."""
    repeat = c.has_cancer & (rng.random(c.n) < 0.5)
    repeat_gap = rng.integers(20, 400, c.n).astype("timedelta64[D]")
    prior_htn = c.has_cancer & (rng.random(c.n) < 0.2)
    htn_gap = rng.integers(30, 3000, c.n).astype("timedelta64[D]")
    c_person = np.concatenate([c.person_id, c.person_id[repeat], c.person_id[prior_htn]])
    c_concept = np.concatenate(
        [c.condition, c.condition[repeat], np.full(prior_htn.sum(), ESSENTIAL_HYPERTENSION)]
    )
    c_date = np.concatenate(
        [c.index_date, (c.index_date + repeat_gap)[repeat], (c.index_date - htn_gap)[prior_htn]]
    )
    columns = [
        "condition_occurrence_id",
        "person_id",
        "condition_concept_id",
        "condition_start_date",
        "condition_type_concept_id",
    ]
    rows = zip(
        range(1, len(c_person) + 1),
        c_person.tolist(),
        c_concept.tolist(),
        c_date,
        [EHR] * len(c_person),
        strict=True,
    )
    return columns, list(rows)


def _death_table(c: _Cohort) -> tuple[list[str], list[tuple]]:
    recorded = c.dies_in_period | c.registry_death
    rows = zip(
        c.person_id[recorded].tolist(),
        c.death_at[recorded],
        [EHR] * int(recorded.sum()),
        strict=True,
    )
    return ["person_id", "death_date", "death_type_concept_id"], list(rows)


def _measurement_table(
    rng: np.random.Generator, c: _Cohort, cancers: Sequence[str]
) -> tuple[list[str], list[tuple]]:
    columns = [
        "measurement_id",
        "person_id",
        "measurement_concept_id",
        "measurement_date",
        "measurement_type_concept_id",
        "value_as_number",
        "value_as_concept_id",
    ]
    rows = _measurements(
        rng, cancers, c.cancer_idx, c.condition, c.stage, c.person_id, c.index_date
    )
    return columns, rows


def _cdm_source_table(seed: int) -> tuple[list[str], list[tuple]]:
    columns = [
        "cdm_source_name",
        "cdm_source_abbreviation",
        "cdm_holder",
        "source_description",
        "source_release_date",
        "cdm_release_date",
        "cdm_version",
        "cdm_version_concept_id",
        "vocabulary_version",
    ]
    row = (
        f"OPTIMA synthetic site (seed {seed})",
        "SYNTH",
        "OPTIMA",
        "Synthetic data from optima-node synth; not real patients.",
        np.datetime64("2025-01-01"),
        np.datetime64("2025-01-01"),
        "5.4",
        756265,
        "OPTIMA-SYNTH 2025-01",
    )
    return columns, [row]


def _vocabulary_tables() -> Tables:
    """The concepts the data uses and their ancestry (every condition is its own ancestor)."""
    valid_from, valid_to = np.datetime64("1970-01-01"), np.datetime64("2099-12-31")
    concept_columns = [
        "concept_id",
        "concept_name",
        "domain_id",
        "vocabulary_id",
        "concept_class_id",
        "standard_concept",
        "concept_code",
        "valid_start_date",
        "valid_end_date",
    ]
    conditions = sorted({c[0] for c in CONCEPTS if c[2] == "Condition"})
    ancestry = [(c, c, 0, 0) for c in conditions] + [(a, d, lv, lv) for a, d, lv in HIERARCHY]
    ancestor_columns = [
        "ancestor_concept_id",
        "descendant_concept_id",
        "min_levels_of_separation",
        "max_levels_of_separation",
    ]
    return {
        "concept": (concept_columns, [(*c, valid_from, valid_to) for c in CONCEPTS]),
        "concept_ancestor": (ancestor_columns, ancestry),
    }


def _measurements(
    rng: np.random.Generator,
    cancers: Sequence[str],
    cancer_idx: np.ndarray,
    condition: np.ndarray,
    stage: np.ndarray,
    person_id: np.ndarray,
    index_date: np.ndarray,
) -> list[tuple]:
    rows: list[tuple] = []

    def add(
        sel: np.ndarray,
        concept: int,
        number: np.ndarray | None = None,
        value_concept: np.ndarray | None = None,
    ) -> None:
        count = int(sel.sum())
        numbers = number[sel].tolist() if number is not None else [None] * count
        values = value_concept[sel].tolist() if value_concept is not None else [None] * count
        for pid, when, num, val in zip(
            person_id[sel].tolist(), index_date[sel], numbers, values, strict=True
        ):
            rows.append((pid, concept, when, EHR, num, val))

    def posneg(p: float) -> np.ndarray:
        return np.where(rng.random(len(person_id)) < p, POSITIVE, NEGATIVE)

    has_cancer = cancer_idx >= 0
    add(has_cancer, LOCAL_STAGE, number=stage.astype(float))
    for k, name in enumerate(cancers):
        sel = cancer_idx == k
        if name == "prostate":
            psa = np.round(np.exp(rng.normal(1.8 + 0.6 * stage, 0.7)), 1)
            add(sel, PSA, number=psa)
            isup = np.clip(stage + rng.integers(-1, 2, len(stage)), 1, 5).astype(float)
            add(sel, LOCAL_ISUP, number=isup)
        elif name == "breast":
            add(sel, ER, value_concept=posneg(0.75))
            add(sel, PR, value_concept=posneg(0.65))
            add(sel, HER2, value_concept=posneg(0.15))
            add(sel, LOCAL_KI67, number=np.round(np.clip(rng.normal(20, 12, len(stage)), 1, 95)))
        elif name == "lung":
            nsclc = sel & (condition != 4110591)
            add(nsclc, LOCAL_PDL1, number=np.round(np.clip(rng.gamma(1.2, 25, len(stage)), 0, 100)))
            add(nsclc, LOCAL_EGFR, value_concept=posneg(0.12))
            add(nsclc, LOCAL_ALK, value_concept=posneg(0.04))
    return [(i, *row) for i, row in enumerate(rows, start=1)]


def write(
    db: Database, tables: dict[str, tuple[list[str], list[tuple]]], replace: bool = False
) -> None:
    """Create the synthetic tables from the CDM spec DDL and fill them, in one transaction."""
    existing = [t for t in SYNTH_TABLES if db.has_table(t)]
    if existing and not replace:
        raise SynthError(
            f"target already has OMOP tables ({', '.join(existing)}); pass --replace to overwrite them"
        )
    statements = []
    if db.dialect == "postgresql" and db.schema:
        statements.append(f"CREATE SCHEMA IF NOT EXISTS {db.schema}")
    statements += [f"DROP TABLE IF EXISTS {db.t(t)}" for t in existing]
    statements += [create_table_sql(t, db.dialect, db.t(t)) for t in SYNTH_TABLES]
    db.execute_script(statements)
    for table in SYNTH_TABLES:
        columns, rows = tables[table]
        db.insert_many(table, columns, _convert_dates(rows, db.dialect))
    db.commit()
    db.forget_tables()


def _convert_dates(rows: list[tuple], dialect: str) -> list[tuple]:
    """Vectorised date conversion: find the datetime64 columns from the first row."""
    if not rows:
        return rows
    date_cols = [i for i, v in enumerate(rows[0]) if isinstance(v, np.datetime64)]
    if not date_cols:
        return rows
    columns = [list(col) for col in zip(*rows, strict=True)]
    for i in date_cols:
        columns[i] = _dates(np.array(columns[i], dtype="datetime64[D]"), dialect)
    return list(zip(*columns, strict=True))


def synthesise(
    db: Database, persons: int, seed: int, cancers: Sequence[str], replace: bool = False
) -> dict[str, int]:
    """Generate and write a synthetic CDM; returns row counts per table."""
    tables = generate(persons, seed, cancers)
    write(db, tables, replace=replace)
    return {t: len(tables[t][1]) for t in SYNTH_TABLES}


def csv_zip(tables: Tables) -> bytes:
    """The tables as an OMOP extract: a zip of one CSV per table, named as the OHDSI ETL tools
    write them (``PERSON.csv``), dates as ISO text and missing values empty."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for table in SYNTH_TABLES:
            columns, rows = tables[table]
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(
                ["" if v is None else v for v in row] for row in _convert_dates(rows, "sqlite")
            )
            archive.writestr(f"{table.upper()}.csv", text.getvalue())
    return out.getvalue()
