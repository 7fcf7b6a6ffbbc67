"""Cohort semantics: index date, observation period, descendants, filters, follow-up."""

from __future__ import annotations

import sqlite3
from datetime import date

import numpy as np
import pytest

from optima_node.check import create_table_sql
from optima_node.cohort import build_cohort, concept_set
from optima_node.db import connect
from optima_node.schemas import CohortSpec

TABLES = ("person", "observation_period", "condition_occurrence", "death", "concept_ancestor")


@pytest.fixture
def tiny(tmp_path):
    """Hand-made persons, one per rule."""
    path = tmp_path / "tiny.db"
    con = sqlite3.connect(path)
    for t in TABLES:
        con.execute(create_table_sql(t, "sqlite"))
    persons = [  # id, gender, year_of_birth
        (1, 8507, 1950),  # parent concept, dies inside the period
        (2, 8532, 1960),  # child concept only: needs include_descendants
        (3, 8507, 1940),  # index outside any observation period
        (4, 8532, 1970),  # death after the period end: censored at the period end
        (5, 0, 1980),  # unknown gender; two condition rows, the earliest is the index
        (6, 8507, 1955),  # index in an earlier period, a later period exists
    ]
    con.executemany(
        "INSERT INTO person (person_id, gender_concept_id, year_of_birth, race_concept_id, ethnicity_concept_id) VALUES (?,?,?,0,0)",
        persons,
    )
    periods = [
        (1, 1, "2010-01-01", "2015-12-31"),
        (2, 2, "2012-01-01", "2020-12-31"),
        (3, 3, "2019-01-01", "2020-12-31"),
        (4, 4, "2011-01-01", "2016-06-30"),
        (5, 5, "2000-01-01", "2022-12-31"),
        (6, 6, "2005-01-01", "2008-12-31"),
        (7, 6, "2012-01-01", "2020-12-31"),
    ]
    con.executemany("INSERT INTO observation_period VALUES (?,?,?,?,32817)", periods)
    conditions = [
        (1, 1, 100, "2012-03-01"),
        (2, 2, 101, "2014-05-05"),
        (3, 3, 100, "2018-01-01"),
        (4, 4, 100, "2013-01-01"),
        (5, 5, 100, "2016-01-01"),
        (6, 5, 101, "2015-02-02"),
        (7, 6, 100, "2007-07-07"),
        (8, 1, 999, "2011-01-01"),  # another disease earlier: not an index
    ]
    con.executemany(
        "INSERT INTO condition_occurrence (condition_occurrence_id, person_id, condition_concept_id, condition_start_date, condition_type_concept_id) VALUES (?,?,?,?,32817)",
        conditions,
    )
    con.executemany(
        "INSERT INTO death (person_id, death_date) VALUES (?,?)",
        [(1, "2014-03-01"), (4, "2017-01-01")],
    )
    con.executemany(
        "INSERT INTO concept_ancestor VALUES (?,?,?,?)", [(100, 100, 0, 0), (100, 101, 1, 1)]
    )
    con.commit()
    con.close()
    return connect(f"sqlite:///{path}")


def by_person(cohort):
    return {int(p): i for i, p in enumerate(cohort.person_id)}


def test_it_applies_the_index_and_period_rules(tiny):
    cohort = build_cohort(tiny, CohortSpec(condition_concept_ids=[100]))
    idx = by_person(cohort)
    assert sorted(idx) == [1, 2, 4, 5, 6]
    assert cohort.index_date[idx[5]] == np.datetime64("2015-02-02")  # earliest of parent/child rows
    assert cohort.index_date[idx[6]] == np.datetime64("2007-07-07")
    assert cohort.period_end[idx[6]] == np.datetime64(
        "2008-12-31"
    )  # the period containing the index
    assert cohort.age_at_index[idx[1]] == 2012 - 1950
    assert cohort.sex_male.tolist() == [1, 0, 0, 0, 1]
    assert cohort.sex_label[idx[5]] == "unknown"
    assert cohort.event[idx[1]] and not cohort.event[idx[4]]
    assert cohort.follow_up_days[idx[1]] == (date(2014, 3, 1) - date(2012, 3, 1)).days
    assert cohort.follow_up_days[idx[4]] == (date(2016, 6, 30) - date(2013, 1, 1)).days


def test_include_descendants_matters(tiny):
    assert concept_set(tiny, CohortSpec(condition_concept_ids=[100])) == [100, 101]
    cohort = build_cohort(tiny, CohortSpec(condition_concept_ids=[100], include_descendants=False))
    assert sorted(cohort.person_id.tolist()) == [1, 4, 5, 6]
    assert cohort.index_date[by_person(cohort)[5]] == np.datetime64("2016-01-01")


def test_without_concept_ancestor_the_ids_are_used_as_given(tiny):
    tiny.execute("DROP TABLE concept_ancestor")
    tiny.forget_tables()
    assert concept_set(tiny, CohortSpec(condition_concept_ids=[100])) == [100]


@pytest.mark.parametrize(
    "filters, expected",
    [
        ({"sex": "male"}, [1, 6]),
        ({"sex": "female"}, [2, 4]),
        ({"index_date_min": "2013-01-01", "index_date_max": "2014-05-05"}, [2, 4]),
        (
            {"age_min": 43, "age_max": 54},
            [2, 4, 6],
        ),  # ages 62, 54, 43, 35, 52 (persons 1, 2, 4, 5, 6)
        ({"age_min": 62}, [1]),
    ],
)
def test_filters(tiny, filters, expected):
    cohort = build_cohort(tiny, CohortSpec(condition_concept_ids=[100], **filters))
    assert sorted(cohort.person_id.tolist()) == expected


def test_bad_cohort_specs_are_rejected():
    with pytest.raises(ValueError):
        CohortSpec(condition_concept_ids=[])
    with pytest.raises(ValueError):
        CohortSpec(condition_concept_ids=[1], age_min=50, age_max=40)
    with pytest.raises(ValueError):
        CohortSpec(condition_concept_ids=[1], sex="other")
    with pytest.raises(ValueError):
        CohortSpec(condition_concept_ids=[1], unexpected=True)


def test_sqlite_dates_with_a_time_part(tiny):
    """Outside ETLs often write '2012-03-01 00:00:00' into SQLite date columns."""
    con = tiny.connection
    con.execute(
        "UPDATE condition_occurrence SET condition_start_date = condition_start_date || ' 00:00:00'"
    )
    con.execute(
        "UPDATE observation_period SET observation_period_end_date = '2012-03-01' WHERE person_id = 1"
    )
    con.execute("UPDATE death SET death_date = '2012-03-01 00:00:00' WHERE person_id = 1")
    cohort = build_cohort(tiny, CohortSpec(condition_concept_ids=[100]))
    i = by_person(cohort)[1]
    # the index date equals the period end: still inside, and the same-day death is an event
    assert cohort.index_date[i] == cohort.period_end[i] == np.datetime64("2012-03-01")
    assert cohort.event[i] and cohort.follow_up_days[i] == 0
