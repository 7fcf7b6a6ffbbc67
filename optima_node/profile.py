"""The database profile: what the catalogue may say, measured, about the CDM behind a dataset.

CDM and vocabulary versions, the source release date, the person count, the observation span,
persons by sex and 10-year age band at first observation, records and the newest date per clinical
table, and persons with each cancer of the portal's indication hierarchy. Every count goes through
the site's small-cell rule (1 … min_cell_count − 1 suppressed) and is then rounded to the policy's
``profile_rounding``; a count whose rounded value would fall below min_cell_count is suppressed too.
:mod:`optima_node.disclosure` re-checks all of it before it leaves the node.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from optima_node.concepts import FEMALE, MALE
from optima_node.db import Database, to_date
from optima_node.policy import Policy
from optima_node.schemas import AGE_GROUPS, PROFILE_TABLES, DatabaseProfileParams


def released_count(strata: dict[str, str], count: int, policy: Policy) -> dict[str, Any]:
    """One cell under the small-cell rule, then rounded half up to the policy's multiple."""
    k, step = policy.min_cell_count, policy.profile_rounding
    rounded = ((2 * count + step) // (2 * step)) * step
    if 0 < count < k or 0 < rounded < k:
        return {"strata": strata, "count": None, "suppressed": True}
    return {"strata": strata, "count": int(rounded), "suppressed": False}


def age_group(age: int) -> str:
    return AGE_GROUPS[min(max(age, 0) // 10, len(AGE_GROUPS) - 1)]


def _sex(gender_concept_id: Any) -> str:
    return {MALE: "male", FEMALE: "female"}.get(int(gender_concept_id or 0), "other")


def _versions(db: Database) -> dict[str, Any]:
    out: dict[str, Any] = {
        "cdm_version": None,
        "vocabulary_version": None,
        "source_release_date": None,
        "cdm_release_date": None,
    }
    if not db.has_table("cdm_source"):
        return out
    rows = db.execute(
        "SELECT cdm_version, vocabulary_version, source_release_date, cdm_release_date "  # noqa: S608
        f"FROM {db.t('cdm_source')}"
    )
    if rows:
        cdm, vocabulary, source_release, cdm_release = rows[0]
        out["cdm_version"] = str(cdm)[:40] if cdm else None
        out["vocabulary_version"] = str(vocabulary)[:80] if vocabulary else None
        out["source_release_date"] = to_date(source_release)
        out["cdm_release_date"] = to_date(cdm_release)
    return out


def _first_observations(db: Database) -> list[tuple[str, str]]:
    """(sex, age band) of each person at the start of their first observation period."""
    sql = (
        "SELECT p.gender_concept_id, p.year_of_birth, MIN(op.observation_period_start_date) "  # noqa: S608
        f"FROM {db.t('person')} p JOIN {db.t('observation_period')} op "
        "ON op.person_id = p.person_id GROUP BY p.person_id, p.gender_concept_id, p.year_of_birth"
    )
    out = []
    for gender, year_of_birth, first_start in db.execute(sql):
        start = to_date(first_start)
        if start is None or year_of_birth is None:
            continue
        out.append((_sex(gender), age_group(start.year - int(year_of_birth))))
    return out


def _tables(db: Database, policy: Policy) -> list[dict[str, Any]]:
    out = []
    for table, date_column in PROFILE_TABLES:
        if not db.has_table(table):
            continue
        name = db.t(table)
        if date_column and date_column in db.columns(table):
            records, newest = db.execute(f"SELECT COUNT(*), MAX({date_column}) FROM {name}")[0]  # noqa: S608
        else:
            records, newest = db.execute(f"SELECT COUNT(*) FROM {name}")[0][0], None  # noqa: S608
        row = released_count({"table": table}, int(records), policy)
        released = not row["suppressed"] and row["count"]
        out.append(
            {
                "table": table,
                "records": row,
                # A date of a handful of records says something about them: it goes with the count.
                "newest_date": to_date(newest) if released else None,
            }
        )
    return out


def _cancers(db: Database, params: DatabaseProfileParams, policy: Policy) -> list[dict[str, Any]]:
    out = []
    for cancer in params.cancers:
        ids = set(cancer.concept_ids)
        if db.has_table("concept_ancestor"):
            marks = ", ".join("?" for _ in cancer.concept_ids)
            ids.update(
                int(r[0])
                for r in db.execute(
                    f"SELECT DISTINCT descendant_concept_id FROM {db.t('concept_ancestor')} "  # noqa: S608
                    f"WHERE ancestor_concept_id IN ({marks})",
                    cancer.concept_ids,
                )
            )
        concepts = sorted(ids)
        marks = ", ".join("?" for _ in concepts)
        persons = db.execute(
            f"SELECT COUNT(DISTINCT person_id) FROM {db.t('condition_occurrence')} "  # noqa: S608
            f"WHERE condition_concept_id IN ({marks})",
            concepts,
        )[0][0]
        out.append(released_count({"cancer": cancer.code}, int(persons), policy))
    return out


def compute_profile(db: Database, params: DatabaseProfileParams, policy: Policy) -> dict[str, Any]:
    """The profile as plain data, every count already under the site's rule."""
    from optima_node.analyses.common import protect_margin  # the analyses package imports us

    persons = db.execute(f"SELECT COUNT(*) FROM {db.t('person')}")[0][0]  # noqa: S608
    person_count = released_count({}, int(persons), policy)
    span = db.execute(
        "SELECT MIN(observation_period_start_date), MAX(observation_period_end_date) "  # noqa: S608
        f"FROM {db.t('observation_period')}"
    )[0]
    cells = Counter(_first_observations(db))
    by_sex_age = [
        released_count({"sex": sex, "age_group": band}, n, policy)
        for (sex, band), n in sorted(cells.items())
    ]
    # The cells add up to (nearly) the person count: one lone suppressed cell needs a partner.
    by_sex_age = protect_margin(by_sex_age, total_released=not person_count["suppressed"])
    return {
        **_versions(db),
        "rounding": policy.profile_rounding,
        "person_count": person_count,
        "observation_start": to_date(span[0]),
        "observation_end": to_date(span[1]),
        "by_sex_age": by_sex_age,
        "tables": _tables(db, policy),
        "cancers": _cancers(db, params, policy),
    }
