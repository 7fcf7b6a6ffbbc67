"""Logistic regression: the iterative kind, one round of runs per Fisher scoring step.

The rounds themselves are driven by :mod:`federation.services.advance` (``kind.iterative``)."""

from __future__ import annotations

from typing import Any

from optima_node.schemas import COVARIATE_CENTRES, CohortSpec, LogisticRegressionParams

from .. import plots
from ..populations import Population, population

COEFFICIENT_COLUMNS = [
    "term",
    "estimate",
    "std_error",
    "z",
    "p_value",
    "ci_low",
    "ci_high",
    "odds_ratio",
]


def terms_for(params: dict[str, Any]) -> list[str]:
    """The model terms in contract order."""
    return LogisticRegressionParams.model_validate(params).terms


def initial_state(params: dict[str, Any]) -> dict[str, Any]:
    """The first round starts from β = 0."""
    return {"beta": [0.0] * len(terms_for(params))}


def check_result(model: Any, params: dict[str, Any], state: dict[str, Any] | None) -> str:
    """A node's round answer must be for the analysis' terms and the round's β."""
    expected = terms_for(params)
    if model.terms != expected:
        return f"terms {model.terms} differ from the analysis' {expected}"
    beta = (state or {}).get("beta")
    if beta is not None and len(model.beta) != len(beta):
        return "beta has the wrong length"
    centres = {term: COVARIATE_CENTRES[term] for term in expected if term in COVARIATE_CENTRES}
    if model.centres != centres:
        return (
            f"covariates centred at {model.centres}, not at {centres}: the node's agent must be "
            "updated so every node centres the same way"
        )
    return ""


def form_params(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "outcome": {"kind": "death_within_days", "days": data.get("outcome_days") or 365},
        "covariates": list(data.get("covariates") or []),
    }


def csv_rows(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    rows = [[c[h] for h in COEFFICIENT_COLUMNS] for c in result.get("coefficients", [])]
    return list(COEFFICIENT_COLUMNS), rows


def plot_context(result: dict[str, Any]) -> dict[str, Any]:
    return {"forest_svg": plots.forest_svg(result)} if result.get("coefficients") else {}


def populations(cohort: CohortSpec, model: Any, params: dict[str, Any]) -> list[Population]:
    days = LogisticRegressionParams.model_validate(params).outcome.days
    return [population(cohort, int(model.n), days)]
