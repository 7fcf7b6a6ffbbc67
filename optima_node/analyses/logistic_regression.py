"""logistic_regression v1: one Fisher-scoring round of a federated GLM (DataSHIELD ds.glm method).

The portal sends β; the node returns XᵀWX, the score Xᵀ(y − μ), the deviance at β and n. Summed
over nodes these give exactly the pooled Newton step, so the pooled fit equals a fit on pooled data.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import numpy as np

from optima_node.analyses.common import AnalysisRefused, load_cohort
from optima_node.cohort import Cohort
from optima_node.db import Database
from optima_node.policy import Policy
from optima_node.schemas import (
    BINARY_COVARIATES,
    CONTINUOUS_COVARIATES,
    COVARIATE_CENTRES,
    LogisticRegressionParams,
    LogisticRegressionState,
    ReasonCode,
)


def outcome(cohort: Cohort, days: int) -> tuple[np.ndarray, np.ndarray]:
    """(died within ``days``, outcome known at ``days``) per person of the cohort."""
    follow_up = cohort.follow_up_days
    died_within = cohort.event & (follow_up <= days)
    return died_within, died_within | (follow_up >= days)


def centres_for(terms: list[str]) -> dict[str, float]:
    """The centre subtracted from each continuous term of the model (what the result reports)."""
    return {term: COVARIATE_CENTRES[term] for term in terms if term in COVARIATE_CENTRES}


def design(cohort: Cohort, params: LogisticRegressionParams) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) for persons whose outcome is known at ``days``; the others are left out.

    Continuous covariates are centred at ``COVARIATE_CENTRES`` (the same at every node)."""
    died_within, known = outcome(cohort, params.outcome.days)
    columns = {
        "intercept": np.ones(len(cohort)),
        "age_at_index": cohort.age_at_index.astype(float) - COVARIATE_CENTRES["age_at_index"],
        "sex_male": cohort.sex_male.astype(float),
        "index_year": cohort.index_year.astype(float) - COVARIATE_CENTRES["index_year"],
    }
    x = np.column_stack([columns[term][known] for term in params.terms])
    return np.ascontiguousarray(x), died_within[known].astype(float)


def check_terms(x: np.ndarray, y: np.ndarray, terms: list[str], min_cell_count: int) -> None:
    """Refuse a design whose terms would disclose small groups (DataSHIELD's glm term checks).

    XᵀWX and the score carry, per term, sums over persons split by outcome: at β = 0 they give
    each dummy level's count per outcome level exactly, and later rounds let them be solved for.
    So every level of a 0/1 covariate crossed with each outcome level must hold 0 or at least
    ``min_cell_count`` persons, and a continuous covariate must vary within each outcome level
    (a constant would be that group's exact value). A term of unknown kind is refused.
    """
    outcome = y > 0.5
    for j, term in enumerate(terms):
        if term == "intercept":
            continue
        column = x[:, j]
        if term in BINARY_COVARIATES:
            level = column > 0.5
            for in_outcome in (outcome, ~outcome):
                with_level = int(np.count_nonzero(level & in_outcome))
                for cell in (with_level, int(np.count_nonzero(in_outcome)) - with_level):
                    if 0 < cell < min_cell_count:
                        raise AnalysisRefused(ReasonCode.GLM_COVARIATE_CELL_TOO_SMALL)
        elif term in CONTINUOUS_COVARIATES:
            for in_outcome in (outcome, ~outcome):
                values = column[in_outcome]
                if values.size and values.min() == values.max():
                    raise AnalysisRefused(ReasonCode.GLM_COVARIATE_CONSTANT)
        else:
            raise AnalysisRefused(ReasonCode.INVALID_PARAMETERS)


BLOCK_ROWS = 32768  # rows per block: a block's temporaries stay in the CPU cache


def fisher_round(
    x: np.ndarray, y: np.ndarray, beta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """XᵀWX, Xᵀ(y − μ) and the deviance at β, in blocks of rows.

    One exp per row serves μ, the weight μ(1 − μ) and log(1 + e^η): with e = exp(−|η|),
    μ = 1/(1 + e) when η ≥ 0 and e/(1 + e) otherwise, μ(1 − μ) = e/(1 + e)², and
    log(1 + e^η) = max(η, 0) + log1p(e), all without overflow. Working through the rows in blocks
    keeps every temporary small, which on a million rows is faster than whole-array passes.
    """
    p = x.shape[1]
    information = np.zeros((p, p))
    score = np.zeros(p)
    loglik = 0.0  # Bernoulli log-likelihood with the logit link: Σ y·η − log(1 + e^η)
    for start in range(0, len(y), BLOCK_ROWS):
        xb = x[start : start + BLOCK_ROWS]
        yb = y[start : start + BLOCK_ROWS]
        eta = xb @ beta
        e = np.exp(-np.abs(eta))
        r = 1.0 / (1.0 + e)
        mu = np.where(eta >= 0.0, r, e * r)
        information += (xb.T * (e * r * r)) @ xb
        score += (yb - mu) @ xb
        loglik += float(yb @ eta) - float(np.maximum(eta, 0.0).sum()) - float(np.log1p(e).sum())
    return information, score, -2.0 * loglik


def run(
    db: Database,
    params: LogisticRegressionParams,
    state: dict[str, Any],
    policy: Policy,
    cache: MutableMapping[str, Any] | None = None,
) -> dict[str, Any]:
    terms = params.terms
    beta_state = LogisticRegressionState.model_validate(state or {"beta": [0.0] * len(terms)})
    if len(beta_state.beta) != len(terms):
        raise AnalysisRefused(ReasonCode.INVALID_PARAMETERS)
    key = "glm:" + params.model_dump_json()
    if cache is not None and key in cache:
        x, y = cache[key]
    else:
        x, y = design(load_cohort(db, params.cohort, cache), params)
        if cache is not None:
            cache[key] = (x, y)
    n = len(y)
    if n == 0:
        raise AnalysisRefused(ReasonCode.TOO_FEW_PERSONS)
    if len(terms) > policy.glm_max_params_ratio * n:
        raise AnalysisRefused(ReasonCode.GLM_TOO_MANY_PARAMETERS)
    events = int(y.sum())
    if min(events, n - events) < policy.min_cell_count:
        raise AnalysisRefused(ReasonCode.OUTCOME_LEVEL_TOO_SMALL)
    # Every round, before any statistic leaves (cheap next to the Fisher round itself).
    check_terms(x, y, terms, policy.min_cell_count)
    information, score, deviance = fisher_round(x, y, np.asarray(beta_state.beta, dtype=float))
    return {
        "terms": terms,
        "beta": beta_state.beta,
        "n": n,
        "information": information.tolist(),
        "score": score.tolist(),
        "deviance": deviance,
        "centres": centres_for(terms),
    }
