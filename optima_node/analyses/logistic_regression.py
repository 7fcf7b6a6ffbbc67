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
from optima_node.schemas import LogisticRegressionParams, LogisticRegressionState, ReasonCode


def design(cohort: Cohort, params: LogisticRegressionParams) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) for persons whose outcome is known at ``days``; the others are left out."""
    days = params.outcome.days
    follow_up = cohort.follow_up_days
    event = cohort.event
    died_within = event & (follow_up <= days)
    known = died_within | (follow_up >= days)
    columns = {
        "intercept": np.ones(len(cohort)),
        "age_at_index": cohort.age_at_index.astype(float),
        "sex_male": cohort.sex_male.astype(float),
        "index_year": cohort.index_year.astype(float),
    }
    x = np.column_stack([columns[term][known] for term in params.terms])
    return np.ascontiguousarray(x), died_within[known].astype(float)


def fisher_round(
    x: np.ndarray, y: np.ndarray, beta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """XᵀWX, Xᵀ(y − μ) and the deviance at β, vectorised."""
    eta = x @ beta
    mu = np.exp(-np.logaddexp(0.0, -eta))  # expit without overflow
    weight = mu * (1.0 - mu)
    information = (x * weight[:, None]).T @ x
    score = x.T @ (y - mu)
    # log-likelihood of a Bernoulli with logit link: y·η − log(1 + e^η)
    deviance = -2.0 * float(np.sum(y * eta - np.logaddexp(0.0, eta)))
    return information, score, deviance


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
    information, score, deviance = fisher_round(x, y, np.asarray(beta_state.beta, dtype=float))
    return {
        "terms": terms,
        "beta": beta_state.beta,
        "n": n,
        "information": information.tolist(),
        "score": score.tolist(),
        "deviance": deviance,
    }
