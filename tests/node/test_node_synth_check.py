"""optima-node synth and check."""

from __future__ import annotations

import sqlite3
import time

import pytest

from optima_node.check import create_table_sql, field_spec
from optima_node.cli import main
from optima_node.db import connect
from optima_node.synth import LOCAL_BREAST_DUCTAL, SynthError, synthesise


def dump(path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def test_it_is_deterministic_per_seed(tmp_path):
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        assert (
            main(
                [
                    "synth",
                    "--out",
                    f"sqlite:///{tmp_path / name}.db",
                    "--persons",
                    "300",
                    "--seed",
                    str(seed),
                ]
            )
            == 0
        )
    assert dump(tmp_path / "a.db") == dump(tmp_path / "b.db")
    assert dump(tmp_path / "a.db") != dump(tmp_path / "c.db")


def test_it_synthesises_5000_persons_in_seconds(tmp_path):
    started = time.monotonic()
    db = connect(f"sqlite:///{tmp_path / 'big.db'}")
    counts = synthesise(db, 5000, 1, ["prostate", "breast", "lung"])
    assert time.monotonic() - started < 5
    assert counts["person"] == 5000
    assert counts["death"] > 500 and counts["measurement"] > 5000


def test_it_uses_descendant_concepts_and_all_measurements(synth_url):
    con = connect(synth_url).connection
    used = {
        r[0] for r in con.execute("SELECT DISTINCT condition_concept_id FROM condition_occurrence")
    }
    # each cancer has a child concept in concept_ancestor that some conditions use
    for parent, child in (
        (4163261, 200962),
        (4112853, LOCAL_BREAST_DUCTAL),
        (4115276, 2_000_000_002),
    ):
        assert child in used
        assert con.execute(
            "SELECT 1 FROM concept_ancestor WHERE ancestor_concept_id=? AND descendant_concept_id=?",
            (parent, child),
        ).fetchone()
        assert con.execute(
            "SELECT 1 FROM concept_ancestor WHERE ancestor_concept_id=443392 AND descendant_concept_id=?",
            (child,),
        ).fetchone()
    measured = {
        r[0] for r in con.execute("SELECT DISTINCT measurement_concept_id FROM measurement")
    }
    assert {
        3013603,
        36203168,
        36203170,
        36203114,
        2_000_001_001,
        2_000_001_002,
        2_000_001_003,
        2_000_001_004,
        2_000_001_005,
    } <= measured
    genders = dict(
        con.execute(
            "SELECT gender_concept_id, COUNT(*) FROM person GROUP BY gender_concept_id"
        ).fetchall()
    )
    assert set(genders) == {8507, 8532}


def test_check_passes_on_a_synthetic_database(synth_url, capsys):
    assert main(["check", "--db", synth_url]) == 0
    out = capsys.readouterr().out
    assert "result: OK" in out and "MISSING" not in out and "mistyped" not in out


def test_check_reports_missing_tables_fields_and_types(tmp_path, capsys):
    path = tmp_path / "bad.db"
    con = sqlite3.connect(path)
    con.execute(create_table_sql("person", "sqlite"))
    # observation_period without a required column and with a text end date
    con.execute(
        "CREATE TABLE observation_period (observation_period_id INTEGER, person_id INTEGER, observation_period_start_date DATE, observation_period_end_date TEXT)"
    )
    con.commit()
    con.close()
    assert main(["check", "--db", f"sqlite:///{path}"]) == 1
    out = capsys.readouterr().out
    assert "MISSING required tables: condition_occurrence, death" in out
    assert "MISSING required field: observation_period.period_type_concept_id" in out
    assert (
        "mistyped column: observation_period.observation_period_end_date is text, spec says date"
        in out
    )
    assert "result: FAILED" in out


def test_ddl_covers_every_spec_table():
    for table in field_spec():
        assert create_table_sql(table, "sqlite").startswith(f"CREATE TABLE {table} (")
        assert "VARCHAR(MAX)" not in create_table_sql(table, "postgresql")


def test_synth_refuses_to_overwrite_without_replace(synth_url, capsys):
    assert main(["synth", "--out", synth_url, "--persons", "10"]) == 2
    assert "pass --replace" in capsys.readouterr().err


def test_synth_rejects_unknown_cancers(tmp_path):
    with pytest.raises(SynthError, match="unknown cancer"):
        synthesise(connect(f"sqlite:///{tmp_path / 'x.db'}"), 10, 1, ["liver"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["synth", "--out", "mysql://x", "--persons", "5"], "unsupported database URL"),
        (["synth", "--out", "sqlite:///", "--persons", "5"], "sqlite:///path"),
        (["check", "--db", "sqlite:////nonexistent/dir/x.db"], "cannot open SQLite database"),
        (["check"], "give --db or set OMOP_DATABASE_URL"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(argv, message, capsys, monkeypatch):
    monkeypatch.delenv("OMOP_DATABASE_URL", raising=False)
    monkeypatch.delenv("OMOP_DATABASE_URL_FILE", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["synth", "--out", "sqlite:///x.db", "--persons", "many"],
        ["frobnicate"],
        ["policy"],
    ],
)
def test_usage_errors_are_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error:" in err
