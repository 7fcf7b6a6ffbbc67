"""Portal-side pooling of node results: counts, Kaplan-Meier with log-rank, federated GLM.

Pure numpy/scipy on plain data (the JSON the nodes released), no Django, so it can be tested
against independent reference implementations (lifelines, statsmodels) and reused by tasks.
The node side of these contracts is :mod:`optima_node.analyses`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats as sps

from optima_node.schemas import COVARIATE_CENTRES

GLM_MAX_ROUNDS = 25
GLM_TOLERANCE = 1e-8
CONFIDENCE = 0.95
GLM_TERMS: tuple[str, ...] = ("intercept", "age_at_index", "sex_male", "index_year")


# --- counts -----------------------------------------------------------------------------------


def pool_counts(node_rows: Iterable[Iterable[Mapping[str, Any]]]) -> dict[str, Any]:
    """Sum released counts per stratum across nodes.

    ``node_rows`` holds, per node, the ``rows`` of a cohort_count result (or one section of a
    characterisation): ``{"strata": {...}, "count": int | None, "suppressed": bool}``. A pooled cell
    that includes any suppressed part has ``lower_bound: true``: its count is the sum of the
    released parts, and the true count is larger (each suppressed part holds 1..min_cell_count-1).
    """
    cells: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for rows in node_rows:
        for row in rows:
            strata = dict(row.get("strata") or {})
            key = tuple(sorted(strata.items()))
            cell = cells.setdefault(key, {"strata": strata, "count": 0, "lower_bound": False})
            if row.get("suppressed") or row.get("count") is None:
                cell["lower_bound"] = True
            else:
                cell["count"] += int(row["count"])
    rows_out = [
        {**cell["strata"], "count": cell["count"], "lower_bound": cell["lower_bound"]}
        for _, cell in sorted(cells.items())
    ]
    return {
        "total": sum(r["count"] for r in rows_out),
        "total_lower_bound": any(r["lower_bound"] for r in rows_out),
        "rows": rows_out,
    }


# --- Kaplan-Meier -----------------------------------------------------------------------------


def pool_km_tables(node_results: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, int]]]:
    """Sum events and censorings per stratum and time unit over nodes' kaplan_meier results."""
    pooled: dict[str, dict[int, list[int]]] = {}
    for result in node_results:
        for stratum in result["strata"]:
            table = pooled.setdefault(str(stratum["stratum"]), {})
            for row in stratum["rows"]:
                cell = table.setdefault(int(row["time"]), [0, 0])
                cell[0] += int(row["events"])
                cell[1] += int(row["censored"])
    return {
        name: [{"time": t, "events": e, "censored": c} for t, (e, c) in sorted(table.items())]
        for name, table in sorted(pooled.items())
    }


def _stratum_arrays(rows: Iterable[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    merged: dict[int, list[int]] = {}
    for row in rows:
        cell = merged.setdefault(int(row["time"]), [0, 0])
        cell[0] += int(row["events"])
        cell[1] += int(row["censored"])
    kept = sorted((t, e, c) for t, (e, c) in merged.items() if e or c)
    if not kept:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
    times, events, censored = (np.asarray(col) for col in zip(*kept, strict=True))
    return times.astype(np.int64), events.astype(float), censored.astype(float)


def _km_curve(times: np.ndarray, events: np.ndarray, censored: np.ndarray) -> dict[str, Any]:
    total = events.sum() + censored.sum()
    removed_before = np.concatenate([[0.0], np.cumsum(events + censored)[:-1]])
    at_risk = total - removed_before
    with np.errstate(divide="ignore", invalid="ignore"):
        # Same algebra as lifelines: S = exp(Σ log((n − d)/n)), Greenwood Σ d/(n(n − d)) with
        # the term set to 0 when everyone at risk dies, exponential-Greenwood (log(−log)) bounds.
        survival = np.exp(np.cumsum(np.log(at_risk - events) - np.log(at_risk)))
        greenwood_terms = np.where(at_risk > events, events / (at_risk * (at_risk - events)), 0.0)
        greenwood = np.cumsum(greenwood_terms)
        z = sps.norm.ppf(1 - (1 - CONFIDENCE) / 2)
        v = np.log(survival)
        ci_low = np.exp(-np.exp(np.log(-v) - z * np.sqrt(greenwood) / v))
        ci_high = np.exp(-np.exp(np.log(-v) + z * np.sqrt(greenwood) / v))
    ci_low = np.where(np.isnan(ci_low), 1.0, ci_low)
    ci_high = np.where(np.isnan(ci_high), 1.0, ci_high)
    std_error = survival * np.sqrt(greenwood)
    below = np.flatnonzero(survival <= 0.5)
    median = int(times[below[0]]) if below.size else None  # None: not reached (lifelines: inf)
    table = [
        {
            "time": int(times[i]),
            "n_at_risk": int(at_risk[i]),
            "n_events": int(events[i]),
            "n_censored": int(censored[i]),
            "survival": float(survival[i]),
            "std_error": float(std_error[i]),
            "ci_low": float(ci_low[i]),
            "ci_high": float(ci_high[i]),
        }
        for i in range(len(times))
    ]
    return {"median_survival": median, "table": table}


def log_rank(event_table: Mapping[str, Iterable[Mapping[str, Any]]]) -> dict[str, float] | None:
    """Multivariate log-rank test between strata (as lifelines.statistics.multivariate_logrank_test)."""
    arrays = {name: _stratum_arrays(rows) for name, rows in event_table.items()}
    names = sorted(arrays)
    if len(names) < 2:
        return None
    grid = np.unique(np.concatenate([arrays[n][0] for n in names]))
    g = len(names)
    d = np.zeros((len(grid), g))
    n = np.zeros((len(grid), g))
    for j, name in enumerate(names):
        times, events, censored = arrays[name]
        pos = np.searchsorted(grid, times)
        d[pos, j] = events
        removed = np.zeros(len(grid))
        removed[pos] = events + censored
        n[:, j] = removed.sum() - np.concatenate([[0.0], np.cumsum(removed)[:-1]])
    d_all, n_all = d.sum(1), n.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.where(n_all[:, None] > 0, n * (d_all / n_all)[:, None], 0.0)
        ratio = (n_all - d_all) / (n_all - 1)
        factor = np.where(np.isfinite(ratio), ratio, 1.0) * d_all / n_all**2
    factor = np.where(n_all > 0, factor, 0.0)
    z = d.sum(0) - expected.sum(0)
    # Hypergeometric covariance: V_jk = Σ f·n_j(n·δ_jk − n_k), f = d(n − d)/(n²(n − 1)).
    weighted = n * factor[:, None]
    v = np.diag((weighted * n_all[:, None]).sum(0)) - weighted.T @ n
    statistic = float(z[:-1] @ np.linalg.pinv(v[:-1, :-1]) @ z[:-1])
    df = g - 1
    return {"statistic": statistic, "df": df, "p_value": float(sps.chi2.sf(statistic, df))}


def kaplan_meier(event_table: Mapping[str, Iterable[Mapping[str, Any]]]) -> dict[str, Any]:
    """Kaplan-Meier per stratum from pooled per-time-unit counts, plus a log-rank test.

    ``event_table`` maps stratum -> rows ``{"time", "events", "censored"}`` (as from
    :func:`pool_km_tables`). Times are in the analysis' time units. Survival, Greenwood standard
    error and the 95% exponential-Greenwood interval match lifelines' KaplanMeierFitter on the same
    binned times; ``median_survival`` is the first time with S(t) <= 0.5, or None if not reached.
    """
    materialised = {str(name): list(rows) for name, rows in event_table.items()}
    strata = []
    for name in sorted(materialised):
        times, events, censored = _stratum_arrays(materialised[name])
        strata.append({"stratum": name, **_km_curve(times, events, censored)})
    return {"strata": strata, "log_rank": log_rank(materialised)}


# --- federated logistic regression (Fisher scoring, DataSHIELD ds.glm) --------------------------


def glm_pool_round(node_results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum one round's node contributions: information, score, deviance and n."""
    if not node_results:
        raise ValueError("no node results to pool")
    info = sum(np.asarray(r["information"], dtype=float) for r in node_results)
    score = sum(np.asarray(r["score"], dtype=float) for r in node_results)
    return {
        "information": np.asarray(info),
        "score": np.asarray(score),
        "deviance": float(sum(float(r["deviance"]) for r in node_results)),
        "n": int(sum(int(r["n"]) for r in node_results)),
        "n_per_node": [int(r["n"]) for r in node_results],
    }


def glm_update(beta: Sequence[float], sum_info: np.ndarray, sum_score: np.ndarray) -> list[float]:
    """One Fisher-scoring step on the pooled information and score: β + I⁻¹U."""
    step = np.linalg.solve(np.asarray(sum_info, dtype=float), np.asarray(sum_score, dtype=float))
    return (np.asarray(beta, dtype=float) + step).tolist()


def glm_converged(dev_old: float, dev_new: float) -> bool:
    """glm()'s criterion: |ΔD| / (|D| + 0.1) < 1e-8."""
    return abs(dev_new - dev_old) / (abs(dev_new) + 0.1) < GLM_TOLERANCE


def glm_summary(
    beta: Sequence[float],
    info: np.ndarray,
    deviance: float,
    n: int,
    n_per_node: Sequence[int],
    rounds: int,
    terms: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Coefficient table with Wald standard errors from the pooled information at β."""
    estimate = np.asarray(beta, dtype=float)
    p = len(estimate)
    names = list(terms) if terms is not None else list(GLM_TERMS[:p])
    if len(names) != p:
        raise ValueError("terms and beta differ in length")
    covariance = np.linalg.inv(np.asarray(info, dtype=float))
    std_error = np.sqrt(np.diag(covariance))
    z = estimate / std_error
    crit = sps.norm.ppf(1 - (1 - CONFIDENCE) / 2)
    coefficients = [
        {
            "term": names[i],
            "estimate": float(estimate[i]),
            "std_error": float(std_error[i]),
            "z": float(z[i]),
            "p_value": float(2 * sps.norm.sf(abs(z[i]))),
            "ci_low": float(estimate[i] - crit * std_error[i]),
            "ci_high": float(estimate[i] + crit * std_error[i]),
            "odds_ratio": float(np.exp(estimate[i])),
        }
        for i in range(p)
    ]
    return {
        "coefficients": coefficients,
        # Continuous covariates were centred at these values at every node: the intercept is the
        # log-odds there (with 0/1 covariates at 0).
        "centring": {t: COVARIATE_CENTRES[t] for t in names if t in COVARIATE_CENTRES},
        "n": int(n),
        "deviance": float(deviance),
        "aic": float(deviance + 2 * p),
        "rounds": int(rounds),
        "n_per_node": [int(k) for k in n_per_node],
    }
