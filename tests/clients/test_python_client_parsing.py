"""optima-client without a network: the portal's error bodies become typed errors, cohorts become
the portal's parameters, results become DataFrames, and the reference page is up to date."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from optima_client import (
    AnalysisFailedError,
    AnalysisHandle,
    Cohort,
    NotEntitledError,
    OptimaError,
    PartialResultError,
    RefusedByPolicyError,
    ValidationError,
)
from optima_client.analyses import _progress_bar, _update_bar
from optima_client.errors import error_from_response
from optima_client.results import coefficients_frame, count_frame, kaplan_meier_frame

from federation import stats
from tests.processes import ROOT

RUNS = [
    {"node": "de-omop", "organisation": "DE", "round": 1, "status": "completed", "reason": ""},
    {
        "node": "fr-omop",
        "organisation": "FR",
        "round": 1,
        "status": "rejected_by_policy",
        "reason": "The policy does not allow kaplan_meier.",
    },
]


def test_it_maps_the_portals_error_body_to_a_typed_error_with_its_message():
    error = error_from_response(
        400,
        {
            "error": {
                "status": 400,
                "code": "invalid",
                "message": "Some fields are invalid: params.",
                "fields": {"params": ["time_unit_days: must be ≥ 1"]},
            }
        },
    )
    assert isinstance(error, ValidationError)
    assert error.fields == {"params": ["time_unit_days: must be ≥ 1"]}
    assert str(error) == "Some fields are invalid: params. (params: time_unit_days: must be ≥ 1)"
    denied = error_from_response(403, {"error": {"message": "You hold no active entitlement."}})
    assert isinstance(denied, NotEntitledError) and denied.message.startswith("You hold no")
    proxy = error_from_response(502, None, "<html>Bad gateway</html>")
    assert type(proxy) is OptimaError and proxy.status == 502 and "Bad gateway" in proxy.message


def test_a_cohort_becomes_the_portals_cohort_parameter(tmp_path):
    assert Cohort([4115276], age_min=50, sex="female").to_params() == {
        "condition_concept_ids": [4115276],
        "include_descendants": True,
        "age_min": 50,
        "sex": "female",
    }
    expression = {"PrimaryCriteria": {"CriteriaList": []}, "ConceptSets": []}
    path = tmp_path / "atlas.json"
    path.write_text(json.dumps(expression))
    for source in (expression, json.dumps(expression), path, str(path)):
        assert Cohort.from_circe(source).to_params() == {"circe": expression}
    with pytest.raises(ValueError, match="condition_concept_ids"):
        Cohort().to_params()


def test_the_km_table_is_the_portals_pooled_curve_in_long_form():
    rng = np.random.default_rng(7)
    table = {
        s: [
            {"time": t, "events": int(rng.integers(0, 6)), "censored": int(rng.integers(0, 4))}
            for t in range(1, 25)
        ]
        for s in ("female", "male")
    }
    result = {"time_unit_days": 30, "stratify_by": "sex", **stats.kaplan_meier(table)}
    frame = kaplan_meier_frame(result)
    assert list(frame["stratum"].unique()) == ["female", "male"]
    male = frame[frame["stratum"] == "male"].reset_index(drop=True)
    rows = [r for r in table["male"] if r["events"] or r["censored"]]
    # Independent reading of the same counts: the product-limit estimate.
    at_risk = sum(r["events"] + r["censored"] for r in rows)
    survival = 1.0
    for i, row in enumerate(rows):
        survival *= (at_risk - row["events"]) / at_risk
        assert male.loc[i, "n_at_risk"] == at_risk
        assert male.loc[i, "survival"] == pytest.approx(survival)
        assert male.loc[i, "time_days"] == row["time"] * 30
        at_risk -= row["events"] + row["censored"]
    assert frame.attrs["log_rank"]["df"] == 1


def test_coefficients_and_counts_become_tables_with_their_summary_in_attrs():
    coefficients = coefficients_frame(
        {
            "coefficients": [
                {
                    "term": t,
                    "estimate": b,
                    "std_error": 0.1,
                    "z": b / 0.1,
                    "p_value": 0.5,
                    "ci_low": b - 0.196,
                    "ci_high": b + 0.196,
                    "odds_ratio": float(np.exp(b)),
                }
                for t, b in (("intercept", -1.0), ("age_at_index", 0.03))
            ],
            "n": 812,
            "deviance": 900.5,
            "aic": 904.5,
            "rounds": 5,
            "converged": True,
        }
    )
    assert list(coefficients.index) == ["intercept", "age_at_index"]
    assert coefficients.loc["age_at_index", "odds_ratio"] == pytest.approx(np.exp(0.03))
    assert coefficients.attrs["n"] == 812 and coefficients.attrs["converged"] is True
    counts = count_frame(
        {
            "stratify_by": ["sex"],
            "total": 17,
            "total_lower_bound": True,
            "rows": [
                {"sex": "female", "count": 17, "lower_bound": False},
                {"sex": "male", "count": 0, "lower_bound": True},
            ],
        }
    )
    assert counts["count"].tolist() == [17, 0] and counts.attrs["total_lower_bound"] is True


def handle(**data) -> AnalysisHandle:
    return AnalysisHandle(None, {"id": 9, "type": "kaplan_meier", "runs": RUNS, **data})


def test_a_node_refusing_by_policy_raises_refused_by_policy_with_the_reason():
    with pytest.raises(RefusedByPolicyError) as caught:
        handle(status="failed", reason="").result()
    assert "fr-omop: The policy does not allow kaplan_meier." in caught.value.message
    assert caught.value.analysis_id == 9


def test_a_failed_analysis_raises_with_the_portals_reason():
    runs = [dict(RUNS[0], status="expired", reason="No answer within 24 hours.")]
    with pytest.raises(AnalysisFailedError) as caught:
        handle(status="failed", reason="Only 0 of 1 nodes answered.", runs=runs).result()
    assert not isinstance(caught.value, RefusedByPolicyError)
    assert caught.value.message == "Only 0 of 1 nodes answered."


def test_a_partial_result_raises_unless_allowed():
    result = {"time_unit_days": 30, "strata": [], "partial": True}
    partial = handle(status="completed", partial=True, reason="Partial result.", result=result)
    with pytest.raises(PartialResultError, match="Partial result"):
        partial.result()
    assert partial.result(allow_partial=True).attrs["partial"] is True


def test_the_reference_page_is_up_to_date():
    done = subprocess.run(
        [sys.executable, "clients/python/tools/gen_reference.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_the_client_imports_without_django():
    code = "import sys, optima_client; sys.exit('django' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd="/").returncode == 0


@pytest.mark.slow_check
def test_it_builds_a_wheel_depending_only_on_http_and_pandas(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), "."],
        cwd=shutil.copytree(  # a copy: the build leaves build/ and *.egg-info behind
            ROOT / "clients" / "python",
            tmp_path / "source",
            ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
        ),
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("optima_client-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith("/METADATA"))).decode()
    assert {"optima_client/client.py", "optima_client/analyses.py"} <= names
    requires = sorted(re.findall(r"^Requires-Dist: ([A-Za-z0-9_.-]+)", metadata, re.M))
    assert requires == ["matplotlib", "pandas", "requests", "tqdm"]  # matplotlib: [plot] only


def test_the_progress_bar_counts_the_runs_done_in_the_current_round():
    bar = _progress_bar("logistic_regression")
    data = {
        "type": "logistic_regression",
        "status": "running",
        "current_round": 1,
        "runs": [{"round": 1, "status": "completed"}, {"round": 1, "status": "running"}],
    }
    _update_bar(bar, data)
    assert (bar.n, bar.total) == (1, 2) and "round 1" in bar.desc
    data["current_round"] = 2
    data["runs"] += [{"round": 2, "status": "completed"}, {"round": 2, "status": "dispatched"}]
    _update_bar(bar, data)
    assert (bar.n, bar.total) == (1, 2) and "round 2" in bar.desc
    bar.close()
