"""Probe finding: a logistic regression released a cell of one person.

Breast cancer aged 80-89, death within 730 days, covariate ``sex_male``: n = 154, two men, one of
whom died. The released intercept and sex coefficient (with their standard errors) let anyone
solve for the 2 and the 1. The node must refuse, with a reason code only, whenever a level of a
0/1 covariate crossed with an outcome level holds 1 … min_cell_count − 1 persons, and whenever a
continuous covariate is constant within an outcome level.
"""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from optima_node.agent import Agent
from optima_node.analyses import REGISTRY, AnalysisRefused
from optima_node.analyses import logistic_regression as lr
from optima_node.db import connect
from optima_node.disclosure import Refused, Released, gate
from optima_node.policy import Policy
from optima_node.schemas import (
    LogisticRegressionParams,
    LogisticRegressionResult,
    ReasonCode,
    RunAssignment,
)
from tests.security.omop_builders import BREAST, Person, women, write_cdm

PARAMS = {
    "cohort": {"condition_concept_ids": [BREAST], "age_min": 80, "age_max": 89},
    "outcome": {"kind": "death_within_days", "days": 730},
    "covariates": ["sex_male"],
}


def run_round(url: str, params: dict, beta: list[float] | None = None, policy=None):
    db = connect(url)
    try:
        model = LogisticRegressionParams.model_validate(params)
        state = {"beta": beta} if beta is not None else {}
        return REGISTRY[("logistic_regression", 1)](db, model, state, policy or Policy(), None)
    finally:
        db.close()


@pytest.fixture
def probe_site(tmp_path) -> str:
    """The probe's cohort: 152 women (40 died within two years) and 2 men, one of whom died."""
    men = [
        Person(male=True, year_of_birth=1930, died_after_days=200),
        Person(male=True, year_of_birth=1931, died_after_days=None),
    ]
    return write_cdm(tmp_path / "probe.sqlite3", women(152, died=40) + men)


def test_the_probe_regression_is_refused_with_a_reason_code_only(probe_site):
    with pytest.raises(AnalysisRefused) as refused:
        run_round(probe_site, PARAMS)
    assert refused.value.reason == ReasonCode.GLM_COVARIATE_CELL_TOO_SMALL
    # …in every round, not just the first: a later β would let the cells be solved for as well.
    with pytest.raises(AnalysisRefused):
        run_round(probe_site, PARAMS, beta=[-1.0, 0.5])


def test_the_agent_posts_the_refusal_without_any_number(probe_site):
    agent = Agent(client=None, db=connect(probe_site), policy=Policy())
    outcome = agent.execute(
        RunAssignment(
            run_id=1,
            attempt=1,
            analysis_id=1,
            type="logistic_regression",
            version=1,
            params=PARAMS,
            requester_id="7",
        )
    )
    agent.db.close()
    assert outcome.status == "refused"
    assert outcome.result is None
    assert outcome.reason_code == ReasonCode.GLM_COVARIATE_CELL_TOO_SMALL
    body = outcome.model_dump_json()
    assert "154" not in body and '"n"' not in body


def test_without_the_covariate_the_same_cohort_is_released(probe_site):
    out = run_round(probe_site, {**PARAMS, "covariates": []})
    assert out["n"] == 154


def test_the_gate_refuses_the_cell_even_if_the_analysis_let_it_through(probe_site, monkeypatch):
    monkeypatch.setattr(lr, "check_terms", lambda *args: None)
    output = run_round(probe_site, PARAMS)  # β = 0: the round that gives the cells away
    decision = gate("logistic_regression", 1, output, Policy())
    assert decision == Refused(ReasonCode.GLM_COVARIATE_CELL_TOO_SMALL)


def test_a_continuous_covariate_constant_within_an_outcome_level_is_refused(tmp_path):
    # Everyone who died was born in 1930: their (released) mean age would be exact.
    dead = [Person(male=False, year_of_birth=1930, died_after_days=50 + i) for i in range(10)]
    alive = women(30, died=0)
    url = write_cdm(tmp_path / "constant.sqlite3", dead + alive)
    with pytest.raises(AnalysisRefused) as refused:
        run_round(url, {**PARAMS, "covariates": ["age_at_index"]})
    assert refused.value.reason == ReasonCode.GLM_COVARIATE_CONSTANT


def test_the_threshold_is_the_site_policy(probe_site):
    # Cells of one person: refused at 2, released only by a site that chose min_cell_count 1.
    with pytest.raises(AnalysisRefused):
        run_round(probe_site, PARAMS, policy=Policy(min_cell_count=2))
    assert run_round(probe_site, PARAMS, policy=Policy(min_cell_count=1))["n"] == 154


def test_a_healthy_design_passes_and_the_fit_matches_statsmodels(tmp_path):
    """Twenty men of whom eight died: every cell is at least five, so the fit is released, and
    Fisher scoring on the node's released rounds equals statsmodels on the person-level data."""
    men = [
        Person(male=True, year_of_birth=1926 + i % 10, died_after_days=300 if i < 8 else None)
        for i in range(20)
    ]
    persons = women(134, died=40) + men
    url = write_cdm(tmp_path / "healthy.sqlite3", persons)
    params = {**PARAMS, "covariates": ["age_at_index", "sex_male"]}
    beta = [0.0, 0.0, 0.0]
    for _ in range(25):
        out = run_round(url, params, beta=beta)
        decision = gate("logistic_regression", 1, out, Policy())
        assert isinstance(decision, Released)
        result: LogisticRegressionResult = decision.result
        step = np.linalg.solve(np.asarray(result.information), np.asarray(result.score))
        beta = (np.asarray(beta) + step).tolist()
        if np.abs(step).max() < 1e-10:
            break
    age = np.array([2015 - p.year_of_birth for p in persons], dtype=float) - 65  # node centring
    male = np.array([p.male for p in persons], dtype=float)
    died = np.array([p.died_after_days is not None for p in persons], dtype=float)
    reference = sm.Logit(died, sm.add_constant(np.column_stack([age, male]))).fit(disp=0)
    np.testing.assert_allclose(beta, reference.params, rtol=1e-6, atol=1e-8)
