"""Disclosure control on pooled counts (secure aggregation), against independent references.

The Kaplan-Meier reference is lifelines fitted on the pooled binned person-level times; the first
pooled cell of 1..t-1 is found here from those times, apart from federation.pooled_disclosure.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.pooled_disclosure import control
from optima_node import secagg
from optima_node.analyses import RAW_TABLES
from optima_node.db import connect
from optima_node.policy import Policy
from optima_node.schemas import PARAMS_MODELS
from optima_node.secagg_layout import decode, encode
from tests.federation.factories import LUNG

lifelines = pytest.importorskip("lifelines")
from lifelines.statistics import multivariate_logrank_test  # noqa: E402

from tests.federation.test_stats import pooled_reference  # noqa: E402

KM_PARAMS = {
    "cohort": {"condition_concept_ids": LUNG},
    "time_unit_days": 90,
    "max_time_units": 40,
    "stratify_by": "age_group",
}


def first_small_time(durations, events, t):
    """The first binned time with 1..t-1 events or 1..t-1 censorings (None: there is none)."""
    for time in sorted(set(durations.tolist())):
        at = durations == time
        died, censored = int(events[at].sum()), int((~events[at]).sum())
        if 0 < died < t or 0 < censored < t:
            return time
    return None


def km_table(durations, events):
    """The pooled raw table of one stratum, counted directly from person-level times."""
    return [
        {
            "time": int(time),
            "events": int(events[durations == time].sum()),
            "censored": int((~events[durations == time]).sum()),
        }
        for time in sorted(set(durations.tolist()))
    ]


def assert_equals_lifelines_before(stratum, durations, events, tau):
    kmf = lifelines.KaplanMeierFitter().fit(durations, events)
    sf = kmf.survival_function_.iloc[:, 0]
    ci = kmf.confidence_interval_
    times = [row["time"] for row in stratum["table"]]
    expected = sorted(x for x in set(durations.tolist()) if tau is None or x < tau)
    assert times == expected  # every time before the first small cell, and none after it
    for row in stratum["table"]:
        assert row["survival"] == pytest.approx(sf.loc[row["time"]], abs=1e-10)
        assert row["ci_low"] == pytest.approx(ci.iloc[:, 0].loc[row["time"]], abs=1e-10)
        assert row["ci_high"] == pytest.approx(ci.iloc[:, 1].loc[row["time"]], abs=1e-10)
        assert row["n_at_risk"] == int((durations >= row["time"]).sum())


def assert_no_small_cell(result, t):
    for stratum in result["strata"]:
        for row in stratum["table"]:
            assert not 0 < row["n_events"] < t and not 0 < row["n_censored"] < t, row


# --- counts -----------------------------------------------------------------------------------


def test_it_releases_pooled_counts_and_suppresses_small_ones():
    table = {
        "stratify_by": ["age_group"],
        "rows": [
            {"strata": {"age_group": "60-69"}, "count": 40},
            {"strata": {"age_group": "50-59"}, "count": 3},
            {"strata": {"age_group": "40-49"}, "count": 0},
            {"strata": {"age_group": "70-79"}, "count": 5},
            {"strata": {"age_group": "80-89"}, "count": 9},
        ],
    }
    params = {"stratify_by": ["age_group"]}
    out = control("cohort_count", params, table, 5)
    assert out["secure_aggregation"] is True and out["threshold"] == 5
    assert out["rows"] == [
        {"age_group": "50-59", "count": None, "suppressed": True, "lower_bound": False},
        {"age_group": "60-69", "count": 40, "suppressed": False, "lower_bound": False},
        {"age_group": "70-79", "count": 5, "suppressed": False, "lower_bound": False},
        {"age_group": "80-89", "count": 9, "suppressed": False, "lower_bound": False},
    ]
    # The total adds the released cells only (else total − cells would reveal the 3).
    assert out["total"] == 54 and out["total_lower_bound"] is True
    # A dataset whose terms say "no cell below 10" gets 10.
    strict = control("cohort_count", params, table, 10)
    assert [r["count"] for r in strict["rows"]] == [None, 40, None, None]
    assert strict["total"] == 40


def test_a_section_never_gives_away_its_suppressed_cells_through_the_person_count():
    def table(female, male, unknown):
        rows = [("female", female), ("male", male), ("unknown", unknown)]
        section = [{"strata": {"sex": s}, "count": n} for s, n in rows if n]
        return {
            "person_count": female + male + unknown,
            "deaths": 7,
            "by_sex": section,
            "by_age_group": [{"strata": {"age_group": "60-69"}, "count": female + male + unknown}],
            "by_index_year": [],
            "by_follow_up": [],
        }

    # Male 2 alone hidden: person count − female = 2, so female is hidden too.
    out = control("characterisation", {}, table(30, 2, 0), 5)
    assert out["person_count"] == {"count": 32, "suppressed": False, "lower_bound": False}
    assert [r["count"] for r in out["by_sex"]] == [None, None]
    # Two hidden cells adding up to 6 (≥ 5) may stand next to a released one.
    out = control("characterisation", {}, table(30, 2, 4), 5)
    assert [r["count"] for r in out["by_sex"]] == [30, None, None]
    assert out["by_age_group"][0]["count"] == 36
    # A person count of 1..t-1 hides every cell.
    out = control("characterisation", {}, table(3, 0, 0), 5)
    assert out["person_count"]["suppressed"] and out["by_sex"][0]["suppressed"]


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        control("cohort_count", {}, {"rows": []}, 0)
    with pytest.raises(ValueError):
        control("logistic_regression", {}, {}, 5)
    with pytest.raises(ValueError):
        control("cohort_count", {}, {"rows": [{"strata": {}, "count": -1}]}, 5)


# --- Kaplan-Meier -----------------------------------------------------------------------------


def simulated_sites(seed):
    """Three sites' binned times (90-day units, horizon 40) in two strata of different size."""
    rng = np.random.default_rng(seed)
    durations, events, strata = [], [], []
    for persons in (600, 900, 1300):
        for name, share, scale in (("60-69", 0.85, 1500.0), ("90+", 0.15, 600.0)):
            n = int(persons * share)
            death = rng.exponential(scale, n)
            censor = rng.uniform(0, 5000, n)
            days = np.minimum(death, censor).astype(int)
            time, event = days // 90, death <= censor
            event[time > 40], time[time > 40] = False, 40
            durations.append(time)
            events.append(event)
            strata.append(np.full(n, name, dtype=object))
    return np.concatenate(durations), np.concatenate(events), np.concatenate(strata)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kaplan_meier_is_exact_before_the_first_small_pooled_cell(seed):
    durations, events, strata = simulated_sites(seed)
    table = {
        "time_unit_days": 90,
        "max_time_units": 40,
        "stratify_by": "age_group",
        "strata": [
            {"stratum": s, "rows": km_table(durations[strata == s], events[strata == s])}
            for s in ("60-69", "90+")
        ],
    }
    out = control("kaplan_meier", KM_PARAMS, table, 5)
    assert out["secure_aggregation"] and out["threshold"] == 5 and not out["coarsened"]
    assert_no_small_cell(out, 5)
    limits = []
    for stratum in out["strata"]:
        sel = strata == stratum["stratum"]
        tau = first_small_time(durations[sel], events[sel], 5)
        remaining = int((durations[sel] >= tau).sum()) if tau is not None else 0
        assert not 0 < remaining < 5  # these draws do not exercise the at-risk rule (tested below)
        assert_equals_lifelines_before(stratum, durations[sel], events[sel], tau)
        assert stratum["exact_until"] == (None if tau is None else tau - 1)
        assert stratum["truncated"] == (tau is not None)
        if tau is not None:
            limits.append(tau - 1)
    assert out["exact_until"] == (min(limits) if limits else None)
    assert out["exact_until_days"] == (None if not limits else min(limits) * 90)


def test_the_log_rank_test_uses_the_exact_follow_up_only():
    durations, events, strata = simulated_sites(4)
    table = {
        "strata": [
            {"stratum": s, "rows": km_table(durations[strata == s], events[strata == s])}
            for s in ("60-69", "90+")
        ]
    }
    out = control("kaplan_meier", KM_PARAMS, table, 5)
    until = out["exact_until"]
    assert until is not None
    # Reference: lifelines on the times administratively censored just after exact_until.
    later = durations > until
    censored_at = np.where(later, until + 1, durations)
    observed = np.where(later, False, events)
    expected = multivariate_logrank_test(censored_at, strata, observed)
    assert out["log_rank"]["statistic"] == pytest.approx(expected.test_statistic, rel=1e-8)
    assert out["log_rank"]["p_value"] == pytest.approx(expected.p_value, rel=1e-8, abs=1e-12)


def test_a_small_number_still_at_risk_moves_the_truncation_back():
    rows = [
        {"time": 0, "events": 10, "censored": 0},
        {"time": 2, "events": 5, "censored": 5},
        {"time": 3, "events": 2, "censored": 1},  # first small cell; 3 persons left after time 2
    ]
    out = control(
        "kaplan_meier",
        {**KM_PARAMS, "stratify_by": "none"},
        {"strata": [{"stratum": "all", "rows": rows}]},
        5,
    )
    (stratum,) = out["strata"]
    assert [r["time"] for r in stratum["table"]] == [0]
    assert stratum["table"][0]["n_at_risk"] == 23 and stratum["exact_until"] == 1
    assert stratum["table"][0]["survival"] == pytest.approx(13 / 23, abs=1e-12)


def test_strata_too_small_or_without_an_exact_part_are_named_not_shown():
    table = {
        "strata": [
            {"stratum": "female", "rows": [{"time": 1, "events": 2, "censored": 1}]},
            {"stratum": "male", "rows": [{"time": 0, "events": 3, "censored": 40}]},
            {"stratum": "unknown", "rows": [{"time": 0, "events": 0, "censored": 0}]},
        ]
    }
    out = control("kaplan_meier", {**KM_PARAMS, "stratify_by": "sex"}, table, 5)
    assert out["strata"] == [] and out["suppressed_strata"] == ["female", "male"]
    assert out["log_rank"] is None


# --- end to end on three synthetic OMOP sites --------------------------------------------------


def secure_pooled_table(urls, analysis_type, params):
    """Each site's unsuppressed table, masked; the portal's unmasked sum, decoded."""
    ids = list(range(1, len(urls) + 1))
    identity = {i: Ed25519PrivateKey.generate() for i in ids}
    pinned = {i: secagg.public_identity(identity[i]) for i in ids}
    model = PARAMS_MODELS[(analysis_type, 1)].model_validate(params)
    vectors = []
    for url in urls:
        db = connect(url)
        try:
            raw = RAW_TABLES[(analysis_type, 1)](db, model, Policy(), None)
        finally:
            db.close()
        vectors.append(encode(analysis_type, params, raw))
    keys = {
        i: secagg.new_round_key(
            identity[i], analysis_id=3, round_id="3-1", node_id=i, vector_length=len(vectors[0])
        )
        for i in ids
    }
    relayed = [k.announcement for k in keys.values()]
    masked = [
        secagg.mask(v, key=keys[i], peers=relayed, identities=pinned, analysis_id=3, round_id="3-1")
        for i, v in zip(ids, vectors, strict=True)
    ]
    return decode(analysis_type, params, secagg.unmask_sum(masked))


def age_group(age):
    return "90+" if age >= 90 else f"{max(age, 0) // 10 * 10}-{max(age, 0) // 10 * 10 + 9}"


def test_three_sites_pooled_counts_by_age_group(site_urls):
    params = {"cohort": {"condition_concept_ids": LUNG}, "stratify_by": ["age_group"]}
    out = control("cohort_count", params, secure_pooled_table(site_urls, "cohort_count", params), 5)
    reference = Counter(age_group(r["age"]) for r in pooled_reference(site_urls, LUNG))
    released = {r["age_group"]: r for r in out["rows"]}
    assert set(released) == set(reference)
    for group, n in reference.items():
        expected = None if n < 5 else n
        assert released[group]["count"] == expected, group
        assert released[group]["suppressed"] == (n < 5)


def test_three_sites_kaplan_meier_equals_lifelines_before_the_first_small_cell(site_urls):
    pooled = secure_pooled_table(site_urls, "kaplan_meier", KM_PARAMS)
    out = control("kaplan_meier", KM_PARAMS, pooled, 5)
    assert_no_small_cell(out, 5)
    rows = pooled_reference(site_urls, LUNG)
    durations = np.array([min(r["days"] // 90, 40) for r in rows])
    events = np.array([bool(r["event"]) and r["days"] // 90 <= 40 for r in rows])
    groups = np.array([age_group(r["age"]) for r in rows], dtype=object)
    assert out["strata"], "the synthetic sites must release at least one stratum"
    assert any(s["truncated"] for s in out["strata"]), "the check must cover a truncation"
    for stratum in out["strata"]:
        sel = groups == stratum["stratum"]
        tau = first_small_time(durations[sel], events[sel], 5)
        remaining = int((durations[sel] >= tau).sum()) if tau is not None else 0
        if 0 < remaining < 5:  # truncated earlier on purpose (see the at-risk test above)
            assert stratum["exact_until"] < tau - 1
            continue
        assert_equals_lifelines_before(stratum, durations[sel], events[sel], tau)
        assert stratum["exact_until"] == (None if tau is None else tau - 1)
