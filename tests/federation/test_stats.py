"""Pooled statistics against independent references.

Three synthetic sites (different seeds) run the node analyses; federation.stats pools what they
release. The reference side extracts person-level data with its own plain SQL and Python date
arithmetic, pools it, and fits lifelines / statsmodels on it directly.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import date

import numpy as np
import pytest

from federation import stats
from optima_node.analyses import REGISTRY
from optima_node.db import connect
from optima_node.policy import Policy
from optima_node.schemas import PARAMS_MODELS
from optima_node.synth import synthesise

lifelines = pytest.importorskip("lifelines")
sm = pytest.importorskip("statsmodels.api")
from lifelines.statistics import multivariate_logrank_test  # noqa: E402

SEEDS = (11, 22, 33)
LUNG = [4115276, 4110591]
PROSTATE = [4163261]
EXACT = Policy(min_cell_count=1, km_min_time_unit_days=1)


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    urls = []
    for seed in SEEDS:
        path = tmp_path_factory.mktemp(f"site{seed}") / "omop.sqlite3"
        db = connect(f"sqlite:///{path}")
        synthesise(db, 3000, seed, ["prostate", "breast", "lung"])
        db.close()
        urls.append(f"sqlite:///{path}")
    return urls


def run_node(url, analysis_type, params, policy=EXACT, state=None):
    db = connect(url)
    try:
        model = PARAMS_MODELS[(analysis_type, 1)].model_validate(params)
        return REGISTRY[(analysis_type, 1)](db, model, state or {}, policy, None)
    finally:
        db.close()


# --- independent reference extraction ---------------------------------------------------------


def reference_persons(url, concept_ids):
    """Person-level cohort rows from plain SQL and Python dates, written apart from optima_node."""
    db = connect(url)
    con = db.connection
    marks = ",".join(str(int(c)) for c in concept_ids)
    concepts = {
        r[0]
        for r in con.execute(
            f"SELECT descendant_concept_id FROM concept_ancestor WHERE ancestor_concept_id IN ({marks})"
        )
    }
    concepts |= set(concept_ids)
    first: dict[int, date] = {}
    cmarks = ",".join(str(c) for c in concepts)
    for pid, start in con.execute(
        f"SELECT person_id, condition_start_date FROM condition_occurrence WHERE condition_concept_id IN ({cmarks})"
    ):
        d = date.fromisoformat(start)
        if pid not in first or d < first[pid]:
            first[pid] = d
    periods: dict[int, list[tuple[date, date]]] = {}
    for pid, s, e in con.execute(
        "SELECT person_id, observation_period_start_date, observation_period_end_date FROM observation_period"
    ):
        periods.setdefault(pid, []).append((date.fromisoformat(s), date.fromisoformat(e)))
    deaths = {
        pid: date.fromisoformat(d)
        for pid, d in con.execute("SELECT person_id, death_date FROM death")
    }
    people = {
        pid: (g, y)
        for pid, g, y in con.execute(
            "SELECT person_id, gender_concept_id, year_of_birth FROM person"
        )
    }
    db.close()
    rows = []
    for pid, index in first.items():
        ends = [e for s, e in periods.get(pid, []) if s <= index <= e]
        if not ends:
            continue
        end = max(ends)
        death = deaths.get(pid)
        event = death is not None and death <= end
        days = max(((death if event else end) - index).days, 0)
        gender, yob = people[pid]
        rows.append(
            {
                "age": index.year - yob,
                "male": int(gender == 8507),
                "gender": gender,
                "year": index.year,
                "days": days,
                "event": event,
            }
        )
    return rows


def pooled_reference(sites, concept_ids):
    return [row for url in sites for row in reference_persons(url, concept_ids)]


# --- counts -----------------------------------------------------------------------------------


def test_it_pools_counts_exactly_like_a_direct_count(sites):
    params = {"cohort": {"condition_concept_ids": LUNG}, "stratify_by": ["sex", "index_year"]}
    pooled = stats.pool_counts(run_node(url, "cohort_count", params)["rows"] for url in sites)
    reference = Counter(
        (
            "male" if r["gender"] == 8507 else "female" if r["gender"] == 8532 else "unknown",
            str(r["year"]),
        )
        for r in pooled_reference(sites, LUNG)
    )
    assert pooled["total"] == sum(reference.values())
    assert not pooled["total_lower_bound"]
    assert {(r["sex"], r["index_year"]): r["count"] for r in pooled["rows"]} == dict(reference)


def test_it_marks_cells_with_suppressed_parts_as_lower_bounds():
    node_a = [
        {"strata": {"sex": "male"}, "count": 12, "suppressed": False},
        {"strata": {"sex": "female"}, "count": None, "suppressed": True},
    ]
    node_b = [
        {"strata": {"sex": "male"}, "count": None, "suppressed": True},
        {"strata": {"sex": "female"}, "count": 7, "suppressed": False},
    ]
    pooled = stats.pool_counts([node_a, node_b])
    assert pooled["rows"] == [
        {"sex": "female", "count": 7, "lower_bound": True},
        {"sex": "male", "count": 12, "lower_bound": True},
    ]
    assert pooled["total"] == 19 and pooled["total_lower_bound"]


# --- Kaplan-Meier -----------------------------------------------------------------------------


def binned(rows, unit, horizon):
    durations, events = [], []
    for r in rows:
        t = r["days"] // unit
        e = r["event"]
        if t > horizon:
            t, e = horizon, False
        durations.append(t)
        events.append(int(e))
    return np.array(durations), np.array(events)


def assert_matches_lifelines(curve, durations, events):
    kmf = lifelines.KaplanMeierFitter().fit(durations, events)
    sf = kmf.survival_function_.iloc[:, 0]
    ci = kmf.confidence_interval_
    times = [row["time"] for row in curve["table"]]
    assert times == sorted(set(durations.tolist()))
    for row in curve["table"]:
        assert row["survival"] == pytest.approx(sf.loc[row["time"]], abs=1e-10)
        assert row["ci_low"] == pytest.approx(ci.iloc[:, 0].loc[row["time"]], abs=1e-10)
        assert row["ci_high"] == pytest.approx(ci.iloc[:, 1].loc[row["time"]], abs=1e-10)
        assert row["n_at_risk"] == int((durations >= row["time"]).sum())
    median = kmf.median_survival_time_
    assert curve["median_survival"] == (None if math.isinf(median) else median)


def test_it_pools_kaplan_meier_like_lifelines_on_pooled_binned_times(sites):
    params = {
        "cohort": {"condition_concept_ids": LUNG},
        "time_unit_days": 30,
        "max_time_units": 60,
        "stratify_by": "sex",
    }
    results = [run_node(url, "kaplan_meier", params) for url in sites]
    assert not any(r["coarsened"] for r in results)
    pooled = stats.kaplan_meier(stats.pool_km_tables(results))

    rows = pooled_reference(sites, LUNG)
    durations, events = binned(rows, 30, 60)
    sex = np.array(["male" if r["gender"] == 8507 else "female" for r in rows])
    assert [s["stratum"] for s in pooled["strata"]] == ["female", "male"]
    for curve in pooled["strata"]:
        sel = sex == curve["stratum"]
        assert_matches_lifelines(curve, durations[sel], events[sel])
        assert curve["median_survival"] is not None  # lung cancer: the median is reached

    expected = multivariate_logrank_test(durations, sex, events)
    assert pooled["log_rank"]["statistic"] == pytest.approx(
        expected.test_statistic, rel=1e-8, abs=1e-8
    )
    assert pooled["log_rank"]["p_value"] == pytest.approx(expected.p_value, rel=1e-8, abs=1e-12)
    assert pooled["log_rank"]["df"] == 1


def test_it_matches_lifelines_for_three_strata_and_a_median_not_reached(sites):
    params = {
        "cohort": {"condition_concept_ids": PROSTATE},
        "time_unit_days": 90,
        "max_time_units": 20,
        "stratify_by": "age_group",
    }
    pooled = stats.kaplan_meier(
        stats.pool_km_tables(run_node(url, "kaplan_meier", params) for url in sites)
    )
    rows = pooled_reference(sites, PROSTATE)
    durations, events = binned(rows, 90, 20)
    groups = np.array(
        [
            f"{min(r['age'] // 10, 9) * 10}-{min(r['age'] // 10, 9) * 10 + 9}"
            if r["age"] < 90
            else "90+"
            for r in rows
        ]
    )
    assert len(pooled["strata"]) >= 3
    for curve in pooled["strata"]:
        sel = groups == curve["stratum"]
        assert_matches_lifelines(curve, durations[sel], events[sel])
    assert any(c["median_survival"] is None for c in pooled["strata"])
    expected = multivariate_logrank_test(durations, groups, events)
    assert pooled["log_rank"]["statistic"] == pytest.approx(expected.test_statistic, rel=1e-8)
    assert pooled["log_rank"]["df"] == len(pooled["strata"]) - 1


def test_coarsened_pooled_curve_equals_km_on_coarsened_times(sites):
    """With min_cell_count 10 the nodes coarsen; the pooled curve is exact for the released times."""
    policy = Policy(min_cell_count=10)
    params = {"cohort": {"condition_concept_ids": LUNG}, "time_unit_days": 30, "max_time_units": 60}
    results = [run_node(url, "kaplan_meier", params, policy=policy) for url in sites]
    assert any(r["coarsened"] for r in results)
    for r in results:
        for s in r["strata"]:
            for row in s["rows"]:
                assert row["events"] in (0,) or row["events"] >= 10
                assert row["censored"] in (0,) or row["censored"] >= 10
    table = stats.pool_km_tables(results)
    durations = np.array(
        [row["time"] for row in table["all"] for _ in range(row["events"] + row["censored"])]
    )
    events = np.array(
        [1] * 0
        + [flag for row in table["all"] for flag in [1] * row["events"] + [0] * row["censored"]]
    )
    curve = stats.kaplan_meier(table)["strata"][0]
    assert_matches_lifelines(curve, durations, events)
    # Coarsening moves counts in time but never loses persons.
    reference = pooled_reference(sites, LUNG)
    assert len(durations) == len(reference)
    assert events.sum() == sum(r["event"] and r["days"] // 30 <= 60 for r in reference)


# --- logistic regression ----------------------------------------------------------------------


def federated_fit(sites, params, policy=EXACT):
    p = 1 + len(params["covariates"])
    beta = [0.0] * p
    dev_old = None
    for rounds in range(1, stats.GLM_MAX_ROUNDS + 1):
        results = [
            run_node(url, "logistic_regression", params, policy, {"beta": beta}) for url in sites
        ]
        pooled = stats.glm_pool_round(results)
        if dev_old is not None and stats.glm_converged(dev_old, pooled["deviance"]):
            return stats.glm_summary(
                beta,
                pooled["information"],
                pooled["deviance"],
                pooled["n"],
                pooled["n_per_node"],
                rounds,
                terms=results[0]["terms"],
            )
        dev_old = pooled["deviance"]
        beta = stats.glm_update(beta, pooled["information"], pooled["score"])
    raise AssertionError("no convergence")


@pytest.mark.parametrize(
    "covariates", [["age_at_index", "sex_male", "index_year"], ["sex_male", "age_at_index"]]
)
def test_it_fits_the_pooled_logistic_regression_of_statsmodels(sites, covariates):
    days = 365
    params = {
        "cohort": {"condition_concept_ids": LUNG},
        "outcome": {"kind": "death_within_days", "days": days},
        "covariates": covariates,
    }
    fit = federated_fit(sites, params)

    rows = [
        r
        for r in pooled_reference(sites, LUNG)
        if (r["event"] and r["days"] <= days) or r["days"] >= days
    ]
    y = np.array([int(r["event"] and r["days"] <= days) for r in rows])
    order = [c for c in ("age_at_index", "sex_male", "index_year") if c in covariates]
    column = {"age_at_index": "age", "sex_male": "male", "index_year": "year"}
    # The same fixed centring as every node (age 65, year 2015; sex is 0/1 and not centred).
    centre = {"age_at_index": 65.0, "sex_male": 0.0, "index_year": 2015.0}
    x = np.column_stack(
        [np.ones(len(rows))] + [[float(r[column[c]]) - centre[c] for r in rows] for c in order]
    )
    ref = sm.Logit(y, x).fit(disp=0, method="newton", tol=1e-12, maxiter=100)

    assert [c["term"] for c in fit["coefficients"]] == ["intercept", *order]
    assert fit["centring"] == {c: centre[c] for c in order if c != "sex_male"}
    assert fit["n"] == len(rows) and sum(fit["n_per_node"]) == len(rows)
    # The intercept is an odds at the centre, a number a reader can interpret (not ~1e-11).
    assert 1e-3 < fit["coefficients"][0]["odds_ratio"] < 1e3
    for coef, est, se in zip(fit["coefficients"], ref.params, ref.bse, strict=True):
        assert coef["estimate"] == pytest.approx(est, rel=1e-6, abs=1e-9)
        assert coef["std_error"] == pytest.approx(se, rel=1e-6)
        assert coef["odds_ratio"] == pytest.approx(math.exp(est), rel=1e-6)
    assert fit["deviance"] == pytest.approx(-2 * ref.llf, rel=1e-6)
    assert fit["aic"] == pytest.approx(ref.aic, rel=1e-6)
    assert fit["rounds"] <= stats.GLM_MAX_ROUNDS
    # Survival in the synthetic data worsens with age: the estimate must find it.
    age = next(c for c in fit["coefficients"] if c["term"] == "age_at_index")
    assert age["estimate"] > 0 and age["p_value"] < 0.05


def test_glm_helpers():
    assert stats.glm_converged(100.0, 100.0 + 1e-7)
    assert not stats.glm_converged(100.0, 100.1)
    beta = stats.glm_update([0.0, 0.0], np.array([[2.0, 0.0], [0.0, 4.0]]), np.array([1.0, 2.0]))
    assert beta == [0.5, 0.5]
    summary = stats.glm_summary(
        [0.0, 1.0], np.eye(2) * 4, 10.0, 50, [20, 30], 3, terms=["intercept", "sex_male"]
    )
    assert summary["coefficients"][1]["std_error"] == pytest.approx(0.5)
    assert summary["coefficients"][1]["ci_low"] == pytest.approx(1 - 1.959963984540054 * 0.5)
    assert summary["aic"] == 14.0
