"""Hand-made OMOP CDM files for the node's attack tests: exactly the persons a probe describes."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from optima_node.check import create_table_sql
from optima_node.concepts import FEMALE, MALE

BREAST = 4112853
TABLES = ("person", "observation_period", "condition_occurrence", "death")


@dataclass(frozen=True)
class Person:
    male: bool
    year_of_birth: int
    died_after_days: int | None  # None: alive at the period's end
    index: date = date(2015, 3, 1)
    follow_up_days: int = 3000  # observation continues this long after the index date


def write_cdm(path: Path, persons: list[Person], concept: int = BREAST) -> str:
    """A SQLite CDM holding ``persons`` (ids 1, 2, …), all with ``concept`` at their index date."""
    con = sqlite3.connect(path)
    for table in TABLES:
        con.execute(create_table_sql(table, "sqlite"))
    for pid, p in enumerate(persons, start=1):
        con.execute(
            "INSERT INTO person (person_id, gender_concept_id, year_of_birth, race_concept_id,"
            " ethnicity_concept_id) VALUES (?,?,?,0,0)",
            (pid, MALE if p.male else FEMALE, p.year_of_birth),
        )
        end = p.index + timedelta(days=p.follow_up_days)
        con.execute(
            "INSERT INTO observation_period VALUES (?,?,?,?,32817)",
            (pid, pid, "2000-01-01", end.isoformat()),
        )
        con.execute(
            "INSERT INTO condition_occurrence (condition_occurrence_id, person_id,"
            " condition_concept_id, condition_start_date, condition_type_concept_id)"
            " VALUES (?,?,?,?,32817)",
            (pid, pid, concept, p.index.isoformat()),
        )
        if p.died_after_days is not None:
            died = p.index + timedelta(days=p.died_after_days)
            con.execute("INSERT INTO death (person_id, death_date) VALUES (?,?)", (pid, died))
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def women(count: int, *, died: int, first_year: int = 1926) -> list[Person]:
    """``count`` women aged 80-89 at a 2015 index; the first ``died`` die within two years."""
    return [
        Person(
            male=False,
            year_of_birth=first_year + (i % 10),
            died_after_days=100 + 7 * i if i < died else None,
        )
        for i in range(count)
    ]
