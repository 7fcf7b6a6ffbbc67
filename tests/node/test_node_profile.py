"""The database profile: every count under the small-cell rule and the site's rounding, checked
against counts computed independently with plain SQL on the synthetic CDM."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from datetime import date

import pytest

from optima_node.cli import main
from optima_node.db import connect
from optima_node.disclosure import Refused, Released, gate
from optima_node.policy import Policy
from optima_node.profile import compute_profile
from optima_node.schemas import PROFILE_CANCERS, DatabaseProfileParams, ReasonCode

KIND = "database_profile"
K = 60  # high enough that the synthetic site has thin cells


def _sqlite_path(url: str) -> str:
    return url[len("sqlite:///") :]


def _independent(url: str) -> dict:
    con = sqlite3.connect(_sqlite_path(url))
    q = lambda sql, *a: con.execute(sql, a).fetchall()  # noqa: E731
    cancers = {}
    for code, ids in PROFILE_CANCERS:
        marks = ",".join("?" for _ in ids)
        descendants = {
            r[0]
            for r in q(
                f"SELECT descendant_concept_id FROM concept_ancestor "
                f"WHERE ancestor_concept_id IN ({marks})",
                *ids,
            )
        } | set(ids)
        marks = ",".join("?" for _ in descendants)
        cancers[code] = q(
            f"SELECT COUNT(DISTINCT person_id) FROM condition_occurrence "
            f"WHERE condition_concept_id IN ({marks})",
            *descendants,
        )[0][0]
    first = q(
        "SELECT p.gender_concept_id, p.year_of_birth, MIN(o.observation_period_start_date) "
        "FROM person p JOIN observation_period o USING (person_id) GROUP BY p.person_id"
    )
    bands = Counter()
    for gender, yob, start in first:
        age = int(start[:4]) - yob
        band = "90+" if age >= 90 else f"{age // 10 * 10}-{age // 10 * 10 + 9}"
        bands[({8507: "male", 8532: "female"}.get(gender, "other"), band)] += 1
    out = {
        "persons": q("SELECT COUNT(*) FROM person")[0][0],
        "conditions": q("SELECT COUNT(*) FROM condition_occurrence")[0][0],
        "newest_condition": q("SELECT MAX(condition_start_date) FROM condition_occurrence")[0][0],
        "span": q(
            "SELECT MIN(observation_period_start_date), MAX(observation_period_end_date) "
            "FROM observation_period"
        )[0],
        "cancers": cancers,
        "bands": bands,
    }
    con.close()
    return out


def _profile(url: str, policy: Policy) -> dict:
    db = connect(url)
    try:
        return compute_profile(db, DatabaseProfileParams(), policy)
    finally:
        db.close()


def test_it_matches_an_independent_count_and_suppresses_small_cells(synth_url):
    policy = Policy(min_cell_count=K)
    profile = _profile(synth_url, policy)
    expected = _independent(synth_url)
    assert profile["person_count"]["count"] == expected["persons"]
    assert profile["observation_start"].isoformat() == expected["span"][0][:10]
    assert profile["observation_end"].isoformat() == expected["span"][1][:10]
    assert profile["cdm_version"] == "5.4" and profile["source_release_date"] == date(2025, 1, 1)
    tables = {t["table"]: t for t in profile["tables"]}
    assert tables["condition_occurrence"]["records"]["count"] == expected["conditions"]
    assert (
        tables["condition_occurrence"]["newest_date"].isoformat()
        == (expected["newest_condition"][:10])
    )
    for row in profile["cancers"]:
        n = expected["cancers"][row["strata"]["cancer"]]
        assert row == {
            "strata": row["strata"],
            "count": None if 0 < n < K else n,
            "suppressed": 0 < n < K,
        }
    assert {r["strata"]["cancer"] for r in profile["cancers"]} == {c for c, _ in PROFILE_CANCERS}
    small = [r for r in profile["by_sex_age"] if r["suppressed"]]
    assert small, "the synthetic site has thin age bands"
    for row in profile["by_sex_age"]:
        n = expected["bands"][(row["strata"]["sex"], row["strata"]["age_group"])]
        assert row["suppressed"] or row["count"] == n
        if 0 < n < K:
            assert row["suppressed"]
    assert isinstance(gate(KIND, 1, profile, policy), Released)


def test_it_rounds_counts_as_the_policy_says(synth_url):
    policy = Policy(min_cell_count=5, profile_rounding=10)
    profile = _profile(synth_url, policy)
    expected = _independent(synth_url)
    persons = expected["persons"]
    assert profile["person_count"]["count"] == (2 * persons + 10) // 20 * 10
    released = [r for r in [*profile["by_sex_age"], *profile["cancers"]] if not r["suppressed"]]
    assert released and all(r["count"] % 10 == 0 and r["count"] >= 5 for r in released)
    assert isinstance(gate(KIND, 1, profile, policy), Released)
    # The same profile is refused under a policy that rounds differently.
    assert gate(KIND, 1, profile, Policy(min_cell_count=5, profile_rounding=5)) == Refused(
        ReasonCode.UNVERIFIABLE_OUTPUT
    )


def test_the_gate_refuses_a_small_count_or_a_date_of_a_suppressed_table(synth_url):
    policy = Policy(min_cell_count=10)
    profile = _profile(synth_url, policy)
    leaked = json.loads(json.dumps(profile, default=str))
    leaked["cancers"][0] = {"strata": {"cancer": "breast"}, "count": 3, "suppressed": False}
    assert isinstance(gate(KIND, 1, leaked, policy), Refused)
    dated = json.loads(json.dumps(profile, default=str))
    dated["tables"][0]["records"] = {"strata": {"table": "x"}, "count": None, "suppressed": True}
    dated["tables"][0]["newest_date"] = "2024-01-01"
    assert isinstance(gate(KIND, 1, dated, policy), Refused)


def test_a_policy_without_the_type_refuses_it(synth_url):
    policy = Policy(allowed_analysis_types=["cohort_count"])
    assert gate(KIND, 1, _profile(synth_url, Policy()), policy) == Refused(
        ReasonCode.POLICY_TYPE_NOT_ALLOWED
    )


def test_check_profile_prints_the_released_profile(synth_url, tmp_path, capsys):
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text("[policy]\nmin_cell_count = 20\n")
    assert main(["check", "--db", synth_url, "--profile", "--policy-file", str(policy_file)]) == 0
    out = capsys.readouterr().out
    printed = json.loads(out[out.index("{") :])
    assert printed["person_count"]["count"] == _independent(synth_url)["persons"]
    assert all(
        r["suppressed"] or r["count"] >= 20 for r in [*printed["by_sex_age"], *printed["cancers"]]
    )


@pytest.mark.parametrize("k", [1, 1000])
def test_extreme_policies_still_pass_the_gate(synth_url, k):
    policy = Policy(min_cell_count=k)
    assert isinstance(gate(KIND, 1, _profile(synth_url, policy), policy), Released)
