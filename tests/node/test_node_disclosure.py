"""The disclosure gate and the analyses' own rules: nothing in 1..min_cell_count-1 leaves the node."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optima_node.agent import Agent
from optima_node.analyses.common import count_rows, protect_margin
from optima_node.analyses.kaplan_meier import coarsen
from optima_node.client import PortalClient
from optima_node.db import connect
from optima_node.disclosure import Refused, Released, gate
from optima_node.policy import Policy
from optima_node.schemas import AnalysisType, ReasonCode, RunAssignment
from optima_node.synth import synthesise

min_cells = st.integers(min_value=1, max_value=20)


def released_counts(payload):
    """Every integer count anywhere in a released payload."""
    if isinstance(payload, dict):
        for key, value in payload.items():
            if key in {"count", "events", "censored"} and value is not None:
                yield value
            else:
                yield from released_counts(value)
    elif isinstance(payload, list):
        for item in payload:
            yield from released_counts(item)


@settings(max_examples=200, deadline=None)
@given(
    k=min_cells,
    cells=st.dictionaries(
        st.tuples(st.sampled_from(["male", "female", "unknown"]), st.integers(2000, 2024).map(str)),
        st.integers(0, 40),
        max_size=30,
    ),
)
def test_no_released_cohort_count_is_small(k, cells):
    keys = [key for key, n in cells.items() for _ in range(n)]
    output = {
        "stratify_by": ["sex", "index_year"],
        "rows": count_rows(keys, ["sex", "index_year"], k),
    }
    decision = gate("cohort_count", 1, output, Policy(min_cell_count=k))
    assert isinstance(decision, Released)
    payload = decision.payload()
    assert all(c == 0 or c >= k for c in released_counts(payload))
    # everything non-zero is accounted for, released or flagged
    assert len(payload["rows"]) == sum(1 for n in cells.values() if n > 0)


@settings(max_examples=300, deadline=None)
@given(
    k=min_cells,
    events=st.lists(st.integers(0, 12), min_size=1, max_size=40),
    censored=st.lists(st.integers(0, 12), min_size=1, max_size=40),
)
def test_kaplan_meier_coarsening_releases_no_small_cell_and_keeps_totals(k, events, censored):
    size = max(len(events), len(censored))
    e = np.array(events + [0] * (size - len(events)))
    c = np.array(censored + [0] * (size - len(censored)))
    released = coarsen(e, c, k)
    if 0 < e.sum() < k or 0 < c.sum() < k:
        assert released is None
        return
    rows, _moved = released
    assert all(ev == 0 or ev >= k for _, ev, _ in rows)
    assert all(ce == 0 or ce >= k for _, _, ce in rows)
    assert sum(r[1] for r in rows) == e.sum() and sum(r[2] for r in rows) == c.sum()
    output = {
        "time_unit_days": 30,
        "max_time_units": size,
        "stratify_by": "none",
        "strata": [
            {
                "stratum": "all",
                "rows": [{"time": t, "events": ev, "censored": ce} for t, ev, ce in rows],
            }
        ],
    }
    decision = gate("kaplan_meier", 1, output, Policy(min_cell_count=k))
    if rows:
        assert isinstance(decision, Released)
        assert all(x == 0 or x >= k for x in released_counts(decision.payload()))


@settings(max_examples=200, deadline=None)
@given(k=st.integers(2, 20), count=st.integers(0, 60))
def test_the_gate_refuses_hand_made_small_counts(k, count):
    output = {"stratify_by": [], "rows": [{"strata": {}, "count": count, "suppressed": False}]}
    decision = gate("cohort_count", 1, output, Policy(min_cell_count=k))
    if 0 < count < k:
        assert decision == Refused(ReasonCode.UNVERIFIABLE_OUTPUT)
    else:
        assert isinstance(decision, Released)


def lr_output(**changes):
    output = {
        "terms": ["intercept", "age_at_index"],
        "beta": [0.0, 0.0],
        "n": 100,
        "information": [[25.0, 1500.0], [1500.0, 95000.0]],
        "score": [1.0, 2.0],
        "deviance": 130.0,
        "centres": {"age_at_index": 65.0},
    }
    output.update(changes)
    return output


@pytest.mark.parametrize(
    "analysis_type, version, output, policy, reason",
    [
        ("survival_forest", 1, {}, Policy(), ReasonCode.UNSUPPORTED_ANALYSIS),
        ("cohort_count", 2, {}, Policy(), ReasonCode.UNSUPPORTED_ANALYSIS),
        (
            "cohort_count",
            1,
            {"stratify_by": [], "rows": []},
            Policy(allowed_analysis_types=[AnalysisType.KAPLAN_MEIER]),
            ReasonCode.POLICY_TYPE_NOT_ALLOWED,
        ),
        (
            "cohort_count",
            1,
            {"stratify_by": [], "rows": [], "extra": 1},
            Policy(),
            ReasonCode.UNVERIFIABLE_OUTPUT,
        ),
        ("cohort_count", 1, "not a dict", Policy(), ReasonCode.UNVERIFIABLE_OUTPUT),
        (
            "cohort_count",
            1,
            {"stratify_by": ["sex"], "rows": [{"strata": {}, "count": 9}]},
            Policy(),
            ReasonCode.UNVERIFIABLE_OUTPUT,
        ),
        (
            "cohort_count",
            1,
            {"stratify_by": [], "rows": [{"strata": {}, "count": 9, "suppressed": True}]},
            Policy(),
            ReasonCode.UNVERIFIABLE_OUTPUT,
        ),
        (
            "logistic_regression",
            1,
            lr_output(deviance=math.nan),
            Policy(),
            ReasonCode.UNVERIFIABLE_OUTPUT,
        ),
        (
            "logistic_regression",
            1,
            lr_output(score=[1.0, math.inf]),
            Policy(),
            ReasonCode.UNVERIFIABLE_OUTPUT,
        ),
        (
            "logistic_regression",
            1,
            lr_output(score=[1.0]),
            Policy(),
            ReasonCode.UNVERIFIABLE_OUTPUT,
        ),
        (
            "logistic_regression",
            1,
            lr_output(information=[[1.0, 2.0], [3.0, 4.0]]),
            Policy(),
            ReasonCode.UNVERIFIABLE_OUTPUT,
        ),
        (
            "logistic_regression",
            1,
            lr_output(terms=["age_at_index", "intercept"]),
            Policy(),
            ReasonCode.UNVERIFIABLE_OUTPUT,
        ),
        ("logistic_regression", 1, lr_output(n=5), Policy(), ReasonCode.GLM_TOO_MANY_PARAMETERS),
        (
            "logistic_regression",
            1,
            lr_output(n=9),
            Policy(min_cell_count=5, glm_max_params_ratio=1.0),
            ReasonCode.OUTCOME_LEVEL_TOO_SMALL,
        ),
        (
            "kaplan_meier",
            1,
            {
                "time_unit_days": 7,
                "max_time_units": 10,
                "stratify_by": "none",
                "strata": [{"stratum": "all", "rows": []}],
            },
            Policy(),
            ReasonCode.TIME_UNIT_BELOW_MINIMUM,
        ),
        (
            "kaplan_meier",
            1,
            {
                "time_unit_days": 30,
                "max_time_units": 10,
                "stratify_by": "none",
                "strata": [{"stratum": "all", "rows": [{"time": 11, "events": 5, "censored": 0}]}],
            },
            Policy(),
            ReasonCode.UNVERIFIABLE_OUTPUT,
        ),
        (
            "kaplan_meier",
            1,
            {
                "time_unit_days": 30,
                "max_time_units": 10,
                "stratify_by": "none",
                "strata": [
                    {
                        "stratum": "all",
                        "rows": [
                            {"time": 2, "events": 5, "censored": 0},
                            {"time": 1, "events": 5, "censored": 0},
                        ],
                    }
                ],
            },
            Policy(),
            ReasonCode.UNVERIFIABLE_OUTPUT,
        ),
        (
            "kaplan_meier",
            1,
            {
                "time_unit_days": 30,
                "max_time_units": 10,
                "stratify_by": "none",
                "strata": [{"stratum": "all", "rows": [{"time": 2, "events": 5, "censored": 3}]}],
            },
            Policy(),
            ReasonCode.UNVERIFIABLE_OUTPUT,
        ),
    ],
)
def test_the_gate_refuses_what_it_cannot_verify(analysis_type, version, output, policy, reason):
    assert gate(analysis_type, version, output, policy) == Refused(reason)


def test_characterisation_never_leaves_one_suppressed_cell_beside_a_released_total():
    rows = [
        {"strata": {"sex": "male"}, "count": 40, "suppressed": False},
        {"strata": {"sex": "female"}, "count": None, "suppressed": True},
    ]
    output = {
        "person_count": {"strata": {}, "count": 43, "suppressed": False},
        "deaths": {"strata": {}, "count": 10, "suppressed": False},
        "by_sex": rows,
        "by_age_group": [],
        "by_index_year": [],
        "by_follow_up": [],
    }
    assert gate("characterisation", 1, output, Policy()) == Refused(ReasonCode.UNVERIFIABLE_OUTPUT)
    protected = protect_margin([dict(r) for r in rows], total_released=True)
    assert all(r["suppressed"] for r in protected)
    assert isinstance(
        gate("characterisation", 1, {**output, "by_sex": protected}, Policy()), Released
    )


def test_a_valid_regression_round_is_released():
    decision = gate("logistic_regression", 1, lr_output(), Policy())
    assert isinstance(decision, Released)
    assert decision.payload()["n"] == 100


def test_a_refusal_carries_only_the_reason_code():
    refused = gate(
        "cohort_count", 1, {"stratify_by": [], "rows": [{"strata": {}, "count": 3}]}, Policy()
    )
    assert isinstance(refused, Refused)
    assert set(vars(refused)) == {"reason_code"}


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), k=min_cells, persons=st.integers(20, 300))
def test_no_released_count_is_small_end_to_end(seed, k, persons):
    """Random small sites, random min_cell_count, every count-bearing analysis through the agent."""
    db = connect("sqlite:///:memory:")
    synthesise(db, persons, seed, ["prostate", "breast", "lung"])
    agent = Agent(
        PortalClient("http://127.0.0.1:9", "t"),
        db,
        Policy(min_cell_count=k, km_min_time_unit_days=1),
    )
    cohort = {"condition_concept_ids": [443392]}
    cases = [
        ("cohort_count", {"cohort": cohort, "stratify_by": ["sex", "age_group", "index_year"]}),
        ("characterisation", {"cohort": cohort}),
        (
            "kaplan_meier",
            {
                "cohort": cohort,
                "time_unit_days": 7,
                "max_time_units": 200,
                "stratify_by": "age_group",
            },
        ),
    ]
    for i, (analysis_type, params) in enumerate(cases, start=1):
        # One requester per analysis: this test is about each result's own cells (the release
        # ledger would rightly refuse some of these overlapping releases to one requester).
        result = agent.execute(
            RunAssignment(
                run_id=i,
                attempt=1,
                analysis_id=i,
                type=analysis_type,
                version=1,
                params=params,
                requester_id=f"researcher-{i}",
            )
        )
        # counts and characterisation always release (suppressing as needed); KM may refuse
        assert result.status == "completed" or (
            analysis_type == "kaplan_meier" and result.status == "refused"
        )
        if result.status == "refused":
            assert result.result is None
            continue
        assert all(c == 0 or c >= k for c in released_counts(result.result))
    db.close()
