"""St Gallen 2013 surrogate subtypes with ASCO/CAP 2018 HER2 and ASCO/CAP 2020 ER rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds.engine import PATHWAYS_DIR, evaluate, load_pathway

PATHWAY = load_pathway(PATHWAYS_DIR / "breast-st-gallen.yaml")
ISH = ["positive", "negative", "group1", "group2", "group3", "group4", "group5"]


def classify(**inputs):
    return evaluate(PATHWAY, inputs)


def reference_her2(ihc: int | None, ish: str | None) -> str | None:
    """ASCO/CAP 2018 (Wolff et al.), written out independently: None = undetermined."""
    if ish is None:
        if ihc is None or ihc == 2:
            return None
        return "positive" if ihc == 3 else "negative"
    if ihc == 3 or ish in ("positive", "group1"):
        return "positive"
    if ish in ("negative", "group5"):
        return "negative"
    if ihc is None:
        return None  # groups 2-4 need concurrent IHC
    if ish == "group3":
        return "positive" if ihc == 2 else "negative"
    return "negative"  # groups 2 and 4 without IHC 3+


def reference_subtype(er, pr, ihc, ish, ki67) -> str:
    her2 = reference_her2(ihc, ish)
    if er < 1 and pr >= 1:
        return "unclassifiable"
    if her2 is None:
        return "indeterminate"
    if er >= 1:
        if her2 == "positive":
            return "luminal_b_like_her2_positive"
        return "luminal_a_like" if pr >= 20 and ki67 < 20 else "luminal_b_like_her2_negative"
    return "her2_positive_non_luminal" if her2 == "positive" else "triple_negative"


@pytest.mark.parametrize(
    ("ki67", "pr", "expected"),
    [
        (19.9, 20, "luminal_a_like"),
        (20, 20, "luminal_b_like_her2_negative"),
        (19.9, 19.9, "luminal_b_like_her2_negative"),
        (0, 100, "luminal_a_like"),
        (21, 100, "luminal_b_like_her2_negative"),
    ],
)
def test_it_uses_20_percent_cut_offs_for_ki67_and_pr(ki67, pr, expected):
    assert classify(er_pct=80, pr_pct=pr, her2_ihc=0, ki67_pct=ki67).classification == expected


@pytest.mark.parametrize(
    ("er", "expected"),
    [
        (0, "triple_negative"),
        (0.9, "triple_negative"),
        (1, "luminal_b_like_her2_negative"),
        (10, "luminal_b_like_her2_negative"),
    ],
)
def test_er_is_positive_from_1_percent(er, expected):
    assert classify(er_pct=er, pr_pct=0, her2_ihc=0, ki67_pct=30).classification == expected


@pytest.mark.parametrize(("er", "warned"), [(0.9, False), (1, True), (10, True), (10.1, False)])
def test_it_warns_about_er_low_positive(er, warned):
    result = classify(er_pct=er, pr_pct=0, her2_ihc=0, ki67_pct=30)
    assert ("er_low_positive" in {w.id for w in result.warnings}) is warned


@pytest.mark.parametrize(
    ("ihc", "ish", "expected"),
    [
        ("3+", None, "her2_positive_non_luminal"),
        ("0", None, "triple_negative"),
        ("1+", None, "triple_negative"),
        ("2+", None, "indeterminate"),
        ("2+", "not_done", "indeterminate"),
        ("2+", "positive", "her2_positive_non_luminal"),
        ("2+", "group1", "her2_positive_non_luminal"),
        ("2+", "group2", "triple_negative"),
        ("2+", "group3", "her2_positive_non_luminal"),
        ("2+", "group4", "triple_negative"),
        ("2+", "group5", "triple_negative"),
        ("2+", "negative", "triple_negative"),
        ("1+", "group3", "triple_negative"),
        ("3+", "group4", "her2_positive_non_luminal"),
    ],
)
def test_her2_ihc_2_plus_needs_ish(ihc, ish, expected):
    result = classify(er_pct=0, pr_pct=0, her2_ihc=ihc, her2_ish=ish, ki67_pct=50)
    assert result.classification == expected


def test_her2_equivocal_without_ish_lists_ish_as_missing():
    result = classify(er_pct=90, pr_pct=90, her2_ihc=2, ki67_pct=5)
    assert result.classification == "indeterminate"
    assert result.missing == ("her2_ish",)
    assert set(result.possible_classifications) == {
        "luminal_b_like_her2_positive",
        "luminal_a_like",
    }
    assert "her2_equivocal_untested" in {w.id for w in result.warnings}


def test_ish_groups_2_to_4_without_ihc_are_undetermined():
    result = classify(er_pct=0, pr_pct=0, her2_ish="group2")
    assert result.classification == "indeterminate"
    assert "her2_ihc" in result.missing


def test_discordant_her2_results_warn():
    result = classify(er_pct=0, pr_pct=0, her2_ihc=3, her2_ish="negative")
    assert result.classification == "her2_positive_non_luminal"
    assert "her2_discordant" in {w.id for w in result.warnings}


def test_er_negative_pr_positive_is_unclassifiable():
    assert classify(er_pct=0, pr_pct=50, her2_ihc=3).classification == "unclassifiable"


def test_missing_ki67_matters_only_when_it_decides():
    assert (
        classify(er_pct=90, pr_pct=5, her2_ihc=0).classification == "luminal_b_like_her2_negative"
    )
    undecided = classify(er_pct=90, pr_pct=50, her2_ihc=0)
    assert undecided.classification == "indeterminate" and undecided.missing == ("ki67_pct",)
    assert classify(er_pct=0, pr_pct=0, her2_ihc=0).classification == "triple_negative"


def test_each_subtype_carries_esmo_directions():
    for code in (
        "luminal_a_like",
        "luminal_b_like_her2_negative",
        "luminal_b_like_her2_positive",
        "her2_positive_non_luminal",
        "triple_negative",
    ):
        assert PATHWAY.outcomes[code].options


@settings(max_examples=500, deadline=None)
@given(
    er=st.sampled_from([0, 0.5, 1, 5, 10, 11, 60, 100]),
    pr=st.sampled_from([0, 0.5, 1, 19.9, 20, 50]),
    ihc=st.one_of(st.none(), st.integers(0, 3)),
    ish=st.one_of(st.none(), st.sampled_from(ISH)),
    ki67=st.sampled_from([0, 14, 19.9, 20, 35, 90]),
)
def test_it_agrees_with_the_reference_algorithm(er, pr, ihc, ish, ki67):
    inputs = {"er_pct": er, "pr_pct": pr, "her2_ihc": ihc, "her2_ish": ish, "ki67_pct": ki67}
    assert classify(**inputs).classification == reference_subtype(er, pr, ihc, ish, ki67)
