"""NCCN prostate risk groups: boundaries and an independent reference implementation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds.engine import PATHWAYS_DIR, evaluate, load_pathway

PATHWAY = load_pathway(PATHWAYS_DIR / "prostate-nccn.yaml")
VERY_LOW = {
    "psa": 5,
    "isup_grade": 1,
    "ct": "cT1c",
    "cn": "cN0",
    "cm": "cM0",
    "positive_cores": 2,
    "total_cores": 12,
    "max_core_involvement_pct": 50,
    "psa_density": 0.1,
    "primary_gleason_pattern": 3,
    "cores_grade_group_4_5": 0,
}


def classify(**changes):
    return evaluate(PATHWAY, {**VERY_LOW, **changes}).classification


def reference_nccn(c: dict) -> str:
    """NCCN v4.2024 initial risk table, written independently of the YAML (complete inputs)."""
    if c["cm"] != "cM0":
        return "metastatic"
    if c["cn"] == "cN1":
        return "regional"
    ct, gg, psa = c["ct"], c["isup_grade"], c["psa"]
    high_features = sum([ct == "cT3a", gg >= 4, psa > 20])
    if (
        ct in ("cT3b", "cT4")
        or c["primary_gleason_pattern"] == 5
        or high_features >= 2
        or c["cores_grade_group_4_5"] > 4
    ):
        return "very_high"
    if high_features == 1:
        return "high"
    irfs = sum([ct in ("cT2b", "cT2c"), gg in (2, 3), 10 <= psa <= 20])
    pct_positive = 100 * c["positive_cores"] / c["total_cores"]
    if irfs >= 1:
        if irfs == 1 and gg in (1, 2) and pct_positive < 50:
            return "favorable_intermediate"
        return "unfavorable_intermediate"
    if (
        ct == "cT1c"
        and c["positive_cores"] < 3
        and c["max_core_involvement_pct"] <= 50
        and c["psa_density"] < 0.15
    ):
        return "very_low"
    return "low"


def test_the_base_case_is_very_low():
    assert classify() == "very_low"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"psa_density": 0.149}, "very_low"),
        ({"psa_density": 0.15}, "low"),
        ({"positive_cores": 3}, "low"),
        ({"max_core_involvement_pct": 50.1}, "low"),
        ({"ct": "cT1a"}, "low"),
        ({"ct": "cT2a"}, "low"),
        ({"psa": 9.99}, "very_low"),
        ({"psa": 10}, "favorable_intermediate"),
        ({"psa": 20}, "favorable_intermediate"),
        ({"psa": 20.01}, "high"),
        ({"ct": "cT2b"}, "favorable_intermediate"),
        ({"ct": "cT2c"}, "favorable_intermediate"),
        ({"ct": "cT3a"}, "high"),
        ({"ct": "cT3b"}, "very_high"),
        ({"ct": "cT4"}, "very_high"),
        ({"isup_grade": 2}, "favorable_intermediate"),
        ({"isup_grade": 3}, "unfavorable_intermediate"),
        ({"isup_grade": 4, "primary_gleason_pattern": 4}, "high"),
        ({"isup_grade": 5, "primary_gleason_pattern": 4}, "high"),
        ({"isup_grade": 5, "primary_gleason_pattern": 5}, "very_high"),
        (
            {
                "isup_grade": 4,
                "primary_gleason_pattern": 4,
                "cores_grade_group_4_5": 2,
                "positive_cores": 5,
            },
            "high",
        ),
        (
            {
                "isup_grade": 4,
                "primary_gleason_pattern": 4,
                "cores_grade_group_4_5": 4,
                "positive_cores": 5,
            },
            "high",
        ),
        (
            {
                "isup_grade": 4,
                "primary_gleason_pattern": 4,
                "cores_grade_group_4_5": 5,
                "positive_cores": 5,
            },
            "very_high",
        ),
        ({"isup_grade": 4, "primary_gleason_pattern": 4, "psa": 21}, "very_high"),
        ({"isup_grade": 2, "positive_cores": 5}, "favorable_intermediate"),
        ({"isup_grade": 2, "positive_cores": 6}, "unfavorable_intermediate"),
        ({"isup_grade": 2, "psa": 12}, "unfavorable_intermediate"),
        ({"isup_grade": 2, "ct": "cT2b", "psa": 12}, "unfavorable_intermediate"),
        ({"cn": "cN1"}, "regional"),
        ({"cm": "cM1c", "cn": "cN1"}, "metastatic"),
    ],
)
def test_it_applies_the_nccn_table_boundaries(changes, expected):
    assert classify(**changes) == expected
    assert reference_nccn({**VERY_LOW, **changes}) == expected


def test_very_low_details_are_needed_only_when_they_decide():
    inputs = {
        k: v for k, v in VERY_LOW.items() if k not in ("psa_density", "max_core_involvement_pct")
    }
    result = evaluate(PATHWAY, inputs)
    assert result.classification == "insufficient_data"
    assert set(result.missing) == {"psa_density", "max_core_involvement_pct"}
    assert set(result.possible_classifications) == {"very_low", "low"}
    assert evaluate(PATHWAY, {**inputs, "positive_cores": 4}).classification == "low"


def test_gleason_gives_grade_group_and_primary_pattern():
    inputs = {
        k: v
        for k, v in VERY_LOW.items()
        if k not in ("isup_grade", "primary_gleason_pattern", "cores_grade_group_4_5")
    }
    assert (
        evaluate(PATHWAY, {**inputs, "gleason": "5+4", "cores_grade_group_4_5": 1}).classification
        == "very_high"
    )
    assert (
        evaluate(PATHWAY, {**inputs, "gleason": "4+5", "cores_grade_group_4_5": 1}).classification
        == "high"
    )


CT = ["cT1a", "cT1b", "cT1c", "cT2a", "cT2b", "cT2c", "cT3a", "cT3b", "cT4"]


@st.composite
def complete_cases(draw):
    gg = draw(st.integers(1, 5))
    total = draw(st.integers(1, 24))
    positive = draw(st.integers(0, total))
    pattern = {1: 3, 2: 3, 3: 4}.get(gg) or draw(st.sampled_from([3, 4, 5] if gg == 4 else [4, 5]))
    return {
        "psa": draw(st.sampled_from([0.5, 9.99, 10, 15, 20, 20.01, 45])),
        "isup_grade": gg,
        "ct": draw(st.sampled_from(CT)),
        "cn": draw(st.sampled_from(["cN0", "cN1"])),
        "cm": draw(st.sampled_from(["cM0", "cM1b"])),
        "positive_cores": positive,
        "total_cores": total,
        "max_core_involvement_pct": draw(st.sampled_from([5, 50, 50.5, 90])),
        "psa_density": draw(st.sampled_from([0.05, 0.149, 0.15, 0.4])),
        "primary_gleason_pattern": pattern,
        "cores_grade_group_4_5": draw(st.integers(0, positive)) if gg >= 4 else 0,
    }


@settings(max_examples=400, deadline=None)
@given(case=complete_cases())
def test_it_agrees_with_the_reference_table_for_complete_inputs(case):
    result = evaluate(PATHWAY, case)
    assert result.classification == reference_nccn(case)
    assert result.is_determined
