"""Circe definitions compiled by the node against an independent pandas reading of Circe's rules,
person for person and date for date, on SQLite and (when a server is reachable) PostgreSQL."""

from __future__ import annotations

import os

import pytest

from optima_node.circe.build import build_circe_cohort
from optima_node.circe.model import CohortExpression
from optima_node.db import connect
from tests.node import circe_cdm as c
from tests.node.circe_definitions import DEFINITIONS
from tests.node.circe_reference import as_date, expected

FRAMES = c.generate()


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory):
    db = connect(f"sqlite:///{tmp_path_factory.mktemp('circe') / 'cdm.sqlite3'}")
    c.write(db, FRAMES)
    yield db
    db.close()


@pytest.fixture(scope="module")
def postgresql_db():
    url = os.environ.get("OPTIMA_NODE_TEST_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        url = "postgresql://postgres@127.0.0.1:5432/postgres"
    schema = f"circe_test_{os.getpid()}"
    try:
        db = connect(url, schema)
    except Exception as exc:
        if os.environ.get("CI", "").lower() in {"1", "true"}:
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"no PostgreSQL at {url}: {exc}")
    c.write(db, FRAMES)
    yield db
    db.rollback()
    db.execute_script([f"DROP SCHEMA IF EXISTS {schema} CASCADE"])
    db.commit()
    db.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request):
    return request.getfixturevalue(f"{request.param}_db")


def test_it_has_at_least_fifteen_definitions_covering_every_construct():
    text = repr(DEFINITIONS)
    assert len(DEFINITIONS) >= 15
    for construct in (
        "includeDescendants",
        "includeMapped",
        "isExcluded",
        "ConditionOccurrence",
        "DrugExposure",
        "ProcedureOccurrence",
        "Measurement",
        "Observation",
        "Death",
        "PriorDays",
        "PrimaryCriteriaLimit",
        "QualifiedLimit",
        "Age",
        "Gender",
        "Occurrence",
        "DateOffset",
        "CensoringCriteria",
        "EraPad",
        "'bt'",
    ):
        assert construct in text, construct


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_it_matches_the_reference(db, name):
    definition = DEFINITIONS[name]
    want_entries, want_attrition = expected(FRAMES, definition)
    got = build_circe_cohort(db, CohortExpression.model_validate(definition))
    db.rollback()
    entries = [(e.person_id, as_date(e.start_date), as_date(e.end_date)) for e in got.entries]
    assert entries == want_entries
    assert [n for _, n in got.attrition] == want_attrition
    assert len(want_entries) > 0, "a definition that selects nobody proves little"
    firsts = {}
    for person, start, _ in want_entries:
        firsts.setdefault(person, start)
    assert got.cohort.person_id.tolist() == sorted(firsts)
    assert [str(d) for d in got.cohort.index_date] == [str(firsts[p]) for p in sorted(firsts)]
