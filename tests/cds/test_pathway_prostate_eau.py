"""EAU prostate risk groups: boundaries from the guideline table and a reference implementation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds.engine import PATHWAYS_DIR, evaluate, load_pathway

PATHWAY = load_pathway(PATHWAYS_DIR / "prostate-eau.yaml")
BASE = {"psa": 5, "isup_grade": 1, "ct": "cT1c", "cn": "cN0", "cm": "cM0"}
SUBSTAGED_T = ["cT1a", "cT1b", "cT1c", "cT2a", "cT2b", "cT2c", "cT3a", "cT3b", "cT4"]


def classify(**changes):
    return evaluate(PATHWAY, {**BASE, **changes})


def reference_eau(psa: float, isup: int, ct: str, cn: str, cm: str) -> str:
    """The EAU table written out independently of the YAML (complete, sub-staged inputs)."""
    if cm.startswith("cM1"):
        return "metastatic"
    if ct in ("cT3a", "cT3b", "cT4") or cn == "cN1":
        return "high_locally_advanced"
    if psa > 20 or isup >= 4 or ct == "cT2c":
        return "high_localised"
    if 10 <= psa <= 20 or isup in (2, 3) or ct == "cT2b":
        return "intermediate"
    return "low"


@pytest.mark.parametrize(
    ("psa", "expected"),
    [
        (0, "low"),
        (9.99, "low"),
        (10, "intermediate"),
        (15, "intermediate"),
        (20, "intermediate"),
        (20.01, "high_localised"),
        (10000, "high_localised"),
    ],
)
def test_it_applies_the_psa_thresholds_at_10_and_20(psa, expected):
    assert classify(psa=psa).classification == expected


@pytest.mark.parametrize(
    ("isup", "expected"),
    [
        (1, "low"),
        (2, "intermediate"),
        (3, "intermediate"),
        (4, "high_localised"),
        (5, "high_localised"),
    ],
)
def test_it_splits_isup_3_from_isup_4(isup, expected):
    assert classify(isup_grade=isup).classification == expected


@pytest.mark.parametrize(
    ("ct", "expected"),
    [
        ("cT1", "low"),
        ("cT1a", "low"),
        ("cT2a", "low"),
        ("cT2b", "intermediate"),
        ("cT2c", "high_localised"),
        ("cT3", "high_locally_advanced"),
        ("cT3a", "high_locally_advanced"),
        ("cT3b", "high_locally_advanced"),
        ("cT4", "high_locally_advanced"),
    ],
)
def test_it_splits_ct2b_from_ct2c(ct, expected):
    assert classify(ct=ct).classification == expected


@pytest.mark.parametrize(
    ("gleason", "isup_expected", "expected"),
    [
        ("3+3", 1, "low"),
        ("2+4", 1, "low"),
        ("3+4", 2, "intermediate"),
        ("4+3=7", 3, "intermediate"),
        ("4+4", 4, "high_localised"),
        ("3+5", 4, "high_localised"),
        ("5+3", 4, "high_localised"),
        ("4+5", 5, "high_localised"),
        ("5+5", 5, "high_localised"),
    ],
)
def test_it_maps_gleason_to_isup(gleason, isup_expected, expected):
    inputs = {k: v for k, v in BASE.items() if k != "isup_grade"}
    result = evaluate(PATHWAY, {**inputs, "gleason": gleason})
    derived = next(d for d in result.derivations if d["name"] == "isup_grade")
    assert derived["value"] == isup_expected
    assert result.classification == expected


def test_it_reports_cm1_as_metastatic_whatever_else():
    assert classify(cm="cM1", psa=3, ct="cT1c").classification == "metastatic"


def test_a_bare_ct2_is_insufficient_only_when_the_sub_category_decides():
    undecided = classify(ct="cT2")
    assert undecided.classification == "insufficient_data"
    assert undecided.missing == ("ct",)
    assert classify(ct="cT2", isup_grade=4).classification == "high_localised"
    assert classify(ct="cT2", psa=25).classification == "high_localised"
    assert (
        classify(ct="cT2", isup_grade=3).classification == "insufficient_data"
    )  # cT2c would be high


def test_ctx_is_insufficient_data():
    result = classify(ct="cTX", psa=50)
    assert result.classification == "insufficient_data"
    assert "ct" in result.missing


@pytest.mark.parametrize("missing", ["psa", "ct"])
def test_a_missing_deciding_value_gives_insufficient_data(missing):
    inputs = {k: v for k, v in BASE.items() if k != missing}
    result = evaluate(PATHWAY, inputs)
    assert result.classification == "insufficient_data"
    assert missing in result.missing


def test_a_missing_value_that_cannot_change_the_result_is_not_needed():
    result = evaluate(PATHWAY, {"isup_grade": 5, "ct": "cT1c", "cn": "cN0", "cm": "cM0"})
    assert result.classification == "high_localised"
    assert result.missing == ()


def test_unassessed_nodes_and_metastases_are_assumed_negative_with_warnings():
    result = evaluate(PATHWAY, {"psa": 5, "isup_grade": 1, "ct": "cT1c"})
    assert result.classification == "low"
    assert {w.id for w in result.warnings} == {"metastatic_assumed", "locally_advanced_n_assumed"}
    assert set(result.missing) == {"cm", "cn"}
    assert set(result.possible_classifications) == {"metastatic", "high_locally_advanced", "low"}


def test_each_group_has_eau_management_options():
    for code in ("low", "intermediate", "high_localised", "high_locally_advanced", "metastatic"):
        assert PATHWAY.outcomes[code].options, code


@settings(max_examples=300, deadline=None)
@given(
    psa=st.one_of(st.sampled_from([0, 9.99, 10, 20, 20.01]), st.floats(0, 10000, allow_nan=False)),
    isup=st.integers(1, 5),
    ct=st.sampled_from(SUBSTAGED_T),
    cn=st.sampled_from(["cN0", "cN1"]),
    cm=st.sampled_from(["cM0", "cM1a", "cM1b", "cM1c"]),
)
def test_it_agrees_with_the_reference_table_for_complete_inputs(psa, isup, ct, cn, cm):
    result = evaluate(PATHWAY, {"psa": psa, "isup_grade": isup, "ct": ct, "cn": cn, "cm": cm})
    assert result.classification == reference_eau(psa, isup, ct, cn, cm)
    assert result.is_determined and result.missing == ()


@settings(max_examples=200, deadline=None)
@given(
    inputs=st.fixed_dictionaries(
        {},
        optional={
            "psa": st.floats(0, 10000, allow_nan=False),
            "isup_grade": st.integers(1, 5),
            "ct": st.sampled_from([*SUBSTAGED_T, "cT1", "cT2", "cT3", "cTX"]),
            "cn": st.sampled_from(["cN0", "cN1", "cNX"]),
            "cm": st.sampled_from(["cM0", "cM1", "cM1a", "cMX"]),
        },
    )
)
def test_a_determined_result_holds_for_every_completion_of_the_data(inputs):
    """Soundness of the three-valued logic: if the engine commits to a group with partial data,
    every way of completing the data (cN and cM assumed negative, as the warnings say) agrees."""
    result = evaluate(PATHWAY, inputs)
    if result.classification == "insufficient_data":
        return
    psas = [inputs["psa"]] if "psa" in inputs else [5, 10, 20, 25]
    grades = [inputs["isup_grade"]] if "isup_grade" in inputs else [1, 2, 3, 4, 5]
    coarse = {
        "cT1": ["cT1a", "cT1b", "cT1c"],
        "cT2": ["cT2a", "cT2b", "cT2c"],
        "cT3": ["cT3a", "cT3b"],
        "cTX": SUBSTAGED_T,
    }
    ct_given = inputs.get("ct")
    cts = SUBSTAGED_T if ct_given is None else coarse.get(ct_given, [ct_given])
    cn = "cN1" if inputs.get("cn") == "cN1" else "cN0"
    cm = "cM1a" if inputs.get("cm", "cM0").startswith("cM1") else "cM0"
    for psa in psas:
        for isup in grades:
            for ct in cts:
                assert reference_eau(psa, isup, ct, cn, cm) == result.classification, (
                    psa,
                    isup,
                    ct,
                )


def surveillance_listed_reference(psa: float, isup: int, ct: str) -> bool:
    """EAU 2024 (6.2, active surveillance in intermediate risk), written out independently: highly
    selected ISUP 2, or another single intermediate-risk element; ISUP 3 is excluded."""
    elements = (10 <= psa <= 20) + (isup == 2) + (ct == "cT2b")
    return isup != 3 and elements <= 1


@given(
    psa=st.sampled_from([1, 9.99, 10, 15, 20]),
    isup=st.sampled_from([1, 2, 3]),
    ct=st.sampled_from(["cT1c", "cT2a", "cT2b"]),
)
@settings(max_examples=60, deadline=None)
def test_active_surveillance_is_offered_in_intermediate_risk_only_as_the_guideline_says(
    psa, isup, ct
):
    result = classify(psa=psa, isup_grade=isup, ct=ct)
    if result.classification != "intermediate":
        return
    listed = "active_surveillance_selected" in [r.id for r in result.recommendations]
    assert listed == surveillance_listed_reference(psa, isup, ct)


def test_an_isup_3_case_does_not_list_active_surveillance():
    result = classify(isup_grade=3)
    assert result.classification == "intermediate"
    assert [r.id for r in result.recommendations] == ["radical_prostatectomy", "ebrt_short_adt"]
    assert not any("surveillance" in r.label.lower() for r in result.recommendations)
    assert not any("surveillance" in r.patient_explanation for r in result.recommendations)
