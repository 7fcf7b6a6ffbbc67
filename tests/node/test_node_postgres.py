"""The same agent on PostgreSQL: synth into a schema, check it, and get the SQLite answers.

Uses OPTIMA_NODE_TEST_POSTGRES_URL, else a PostgreSQL DATABASE_URL, else the local server on
127.0.0.1:5432; the agent writes into its own schema there.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from optima_node.analyses import REGISTRY
from optima_node.cli import main
from optima_node.db import connect
from optima_node.policy import Policy
from optima_node.schemas import PARAMS_MODELS

pytestmark = pytest.mark.postgres
SCHEMA = f"cdm_test_{os.getpid()}"


def _candidate_url() -> str:
    url = os.environ.get("OPTIMA_NODE_TEST_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        return url
    return "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="module")
def pg_url():
    """The PostgreSQL server the portal's tests use (CI starts it); skipped locally if none runs."""
    url = _candidate_url()
    try:
        connect(url).close()
    except Exception as exc:
        if os.environ.get("CI", "").lower() in {"1", "true"}:
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"no PostgreSQL at {url}: {exc}")
    yield url
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


def run(url, schema, analysis_type, params, state=None):
    db = connect(url, schema)
    try:
        model = PARAMS_MODELS[(analysis_type, 1)].model_validate(params)
        return REGISTRY[(analysis_type, 1)](db, model, state or {}, Policy(min_cell_count=1), None)
    finally:
        db.close()


def test_postgres_gives_the_sqlite_answers(pg_url, tmp_path, capsys):
    sqlite_url = f"sqlite:///{tmp_path / 'same.db'}"
    args = ["--persons", "1500", "--seed", "3", "--cancers", "lung,prostate"]
    assert main(["synth", "--out", pg_url, "--schema", SCHEMA, "--replace", *args]) == 0
    assert main(["synth", "--out", sqlite_url, *args]) == 0
    assert main(["check", "--db", pg_url, "--schema", SCHEMA]) == 0
    out = capsys.readouterr().out
    assert "result: OK" in out and "mistyped" not in out

    lung = {
        "condition_concept_ids": [4115276, 4110591],
        "index_date_min": "2010-01-01",
        "sex": "male",
    }
    cases = [
        ("cohort_count", {"cohort": lung, "stratify_by": ["age_group", "index_year"]}, None),
        ("characterisation", {"cohort": lung}, None),
        ("kaplan_meier", {"cohort": lung, "stratify_by": "age_group"}, None),
        ("database_profile", {}, None),
    ]
    for analysis_type, params, state in cases:
        assert run(pg_url, SCHEMA, analysis_type, params, state) == run(
            sqlite_url, None, analysis_type, params, state
        )
    lr = {
        "cohort": lung,
        "outcome": {"kind": "death_within_days", "days": 730},
        "covariates": ["age_at_index", "index_year"],
    }
    a = run(pg_url, SCHEMA, "logistic_regression", lr, {"beta": [0.1, 0.01, 0.0]})
    b = run(sqlite_url, None, "logistic_regression", lr, {"beta": [0.1, 0.01, 0.0]})
    assert a["n"] == b["n"]
    np.testing.assert_allclose(a["information"], b["information"], rtol=1e-12)
    np.testing.assert_allclose(a["deviance"], b["deviance"], rtol=1e-12)
