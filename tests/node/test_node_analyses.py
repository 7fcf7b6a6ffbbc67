"""The four analyses on a synthetic site, with the site policy applied."""

from __future__ import annotations

import numpy as np
import pytest

from optima_node.analyses import REGISTRY, AnalysisRefused
from optima_node.analyses.logistic_regression import fisher_round
from optima_node.db import connect
from optima_node.disclosure import Released, gate
from optima_node.policy import Policy
from optima_node.schemas import AGE_GROUPS, FOLLOW_UP_BANDS, PARAMS_MODELS, ReasonCode

BREAST = [4112853]


def run(url, analysis_type, params, policy=None, state=None):
    policy = policy or Policy()
    db = connect(url)
    try:
        model = PARAMS_MODELS[(analysis_type, 1)].model_validate(params)
        return REGISTRY[(analysis_type, 1)](db, model, state or {}, policy, None)
    finally:
        db.close()


def test_cohort_count_suppresses_small_cells(synth_url):
    params = {
        "cohort": {"condition_concept_ids": BREAST},
        "stratify_by": ["sex", "age_group", "index_year"],
    }
    exact = run(synth_url, "cohort_count", params, Policy(min_cell_count=1))
    suppressed = run(synth_url, "cohort_count", params, Policy(min_cell_count=5))
    assert len(exact["rows"]) == len(suppressed["rows"])
    for a, b in zip(exact["rows"], suppressed["rows"], strict=True):
        assert a["strata"] == b["strata"]
        if a["count"] < 5:
            assert b == {"strata": a["strata"], "count": None, "suppressed": True}
        else:
            assert b["count"] == a["count"]
    assert any(r["suppressed"] for r in suppressed["rows"])  # breast cancer in men is rare
    assert {r["strata"]["age_group"] for r in exact["rows"]} <= set(AGE_GROUPS)
    assert isinstance(gate("cohort_count", 1, suppressed, Policy()), Released)


def test_descendants_change_the_count(synth_url):
    with_children = run(synth_url, "cohort_count", {"cohort": {"condition_concept_ids": BREAST}})
    without = run(
        synth_url,
        "cohort_count",
        {"cohort": {"condition_concept_ids": BREAST, "include_descendants": False}},
    )
    assert with_children["rows"][0]["count"] > without["rows"][0]["count"] > 0


def test_characterisation(synth_url):
    out = run(
        synth_url, "characterisation", {"cohort": {"condition_concept_ids": [4115276, 4110591]}}
    )
    total = out["person_count"]["count"]
    assert total > 100 and 0 < out["deaths"]["count"] < total
    for section in ("by_sex", "by_age_group", "by_follow_up"):
        released = sum(r["count"] or 0 for r in out[section])
        assert released <= total
    assert {r["strata"]["follow_up"] for r in out["by_follow_up"]} <= set(FOLLOW_UP_BANDS)
    assert isinstance(gate("characterisation", 1, out, Policy()), Released)


def test_kaplan_meier_refuses_a_time_unit_below_policy(synth_url):
    with pytest.raises(AnalysisRefused) as refused:
        run(
            synth_url,
            "kaplan_meier",
            {"cohort": {"condition_concept_ids": BREAST}, "time_unit_days": 7},
        )
    assert refused.value.reason == ReasonCode.TIME_UNIT_BELOW_MINIMUM


def test_kaplan_meier_coarsens_with_a_large_min_cell_count(synth_url):
    params = {
        "cohort": {"condition_concept_ids": [4115276, 4110591]},
        "time_unit_days": 30,
        "max_time_units": 24,
        "stratify_by": "sex",
    }
    exact = run(synth_url, "kaplan_meier", params, Policy(min_cell_count=1))
    coarse = run(synth_url, "kaplan_meier", params, Policy(min_cell_count=8))
    assert not exact["coarsened"] and coarse["coarsened"]
    for a, b in zip(exact["strata"], coarse["strata"], strict=True):
        assert sum(r["events"] for r in a["rows"]) == sum(r["events"] for r in b["rows"])
        assert sum(r["censored"] for r in a["rows"]) == sum(r["censored"] for r in b["rows"])
        assert all(r["events"] in (0,) or r["events"] >= 8 for r in b["rows"])
        assert max(r["time"] for r in a["rows"]) <= 24
    assert isinstance(gate("kaplan_meier", 1, coarse, Policy(min_cell_count=8)), Released)


def test_a_stratum_too_small_to_release_is_named_not_counted(synth_url):
    params = {"cohort": {"condition_concept_ids": BREAST}, "stratify_by": "sex"}
    out = run(synth_url, "kaplan_meier", params, Policy(min_cell_count=10))
    assert out["suppressed_strata"] == ["male"]
    assert [s["stratum"] for s in out["strata"]] == ["female"]


LR = {
    "cohort": {"condition_concept_ids": [4115276, 4110591]},
    "outcome": {"kind": "death_within_days", "days": 365},
}


@pytest.mark.parametrize(
    "params, policy, state, reason",
    [
        (
            {**LR, "covariates": ["age_at_index"]},
            Policy(glm_max_params_ratio=0.001),
            None,
            ReasonCode.GLM_TOO_MANY_PARAMETERS,
        ),
        (
            {**LR, "cohort": {"condition_concept_ids": BREAST, "sex": "male"}},
            Policy(),
            None,
            ReasonCode.OUTCOME_LEVEL_TOO_SMALL,
        ),
        (
            {**LR, "covariates": ["age_at_index"]},
            Policy(),
            {"beta": [0.0]},
            ReasonCode.INVALID_PARAMETERS,
        ),
        (
            {**LR, "cohort": {"condition_concept_ids": [123456789]}},
            Policy(),
            None,
            ReasonCode.TOO_FEW_PERSONS,
        ),
    ],
)
def test_logistic_regression_refusals(synth_url, params, policy, state, reason):
    with pytest.raises(AnalysisRefused) as refused:
        run(synth_url, "logistic_regression", params, policy, state)
    assert refused.value.reason == reason


def test_logistic_regression_round_returns_the_contract(synth_url):
    out = run(
        synth_url,
        "logistic_regression",
        {**LR, "covariates": ["index_year", "sex_male"]},
        state={"beta": [0.1, 0.2, 0.0]},
    )
    assert out["terms"] == ["intercept", "sex_male", "index_year"]
    assert np.array(out["information"]).shape == (3, 3) and len(out["score"]) == 3
    assert out["deviance"] > 0 and out["n"] > 100


@pytest.mark.parametrize("scale", [1.0, 40.0])  # 40: |η| up to ~1,000, where e^η overflows
def test_a_fisher_round_in_blocks_equals_the_textbook_formulas(scale):
    from optima_node.analyses import logistic_regression

    rng = np.random.default_rng(0)
    n = logistic_regression.BLOCK_ROWS * 2 + 1234  # several blocks and a partial one
    x = np.column_stack(
        [np.ones(n), rng.normal(0, 1, n), rng.integers(0, 2, n), rng.normal(0, 2, n)]
    ).astype(float)
    y = (rng.random(n) < 0.3).astype(float)
    beta = np.array([0.1, 0.5, -0.2, 0.3]) * scale
    info, score, deviance = fisher_round(x, y, beta)

    eta = x @ beta
    mu = np.exp(-np.logaddexp(0.0, -eta))
    expected_info = (x * (mu * (1.0 - mu))[:, None]).T @ x
    expected_score = x.T @ (y - mu)
    expected_deviance = -2.0 * np.sum(y * eta - np.logaddexp(0.0, eta))
    np.testing.assert_allclose(info, expected_info, rtol=1e-12, atol=1e-12 * n)
    np.testing.assert_allclose(score, expected_score, rtol=1e-12, atol=1e-9)
    assert deviance == pytest.approx(expected_deviance, rel=1e-12)
    assert np.isfinite(info).all() and np.isfinite(deviance)
