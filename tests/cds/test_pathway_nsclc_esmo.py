"""ESMO advanced NSCLC first-line therapy class."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds.engine import PATHWAYS_DIR, evaluate, load_pathway, validate_inputs

PATHWAY = load_pathway(PATHWAYS_DIR / "nsclc-esmo.yaml")
NEGATIVE = {
    g: "negative" for g in ("egfr", "alk", "ros1", "ret", "ntrk", "braf", "kras", "met", "her2")
}
BASE = {"histology": "adenocarcinoma", "stage": "IVB", "ecog": "0-1", **NEGATIVE}
DRIVERS = [
    ("egfr", "exon19del", "egfr_tki"),
    ("egfr", "L858R", "egfr_tki"),
    ("egfr", "other_sensitising", "egfr_tki"),
    ("egfr", "exon20ins", "egfr_exon20ins_directed"),
    ("alk", "fusion", "alk_tki"),
    ("ros1", "fusion", "ros1_tki"),
    ("braf", "V600E", "braf_mek_inhibitor"),
    ("met", "exon14_skipping", "met_tki"),
    ("ret", "fusion", "ret_tki"),
    ("ntrk", "fusion", "trk_inhibitor"),
]
FIRST_LINE_GENES = ("egfr", "alk", "ros1", "braf", "met", "ret", "ntrk")


def classify(**changes):
    return evaluate(PATHWAY, {**BASE, **changes})


@pytest.mark.parametrize(
    ("tps", "expected"),
    [
        (0, "chemo_io"),
        (1, "chemo_io"),
        (49, "chemo_io"),
        (49.9, "chemo_io"),
        (50, "io_mono_or_chemo_io"),
        (100, "io_mono_or_chemo_io"),
    ],
)
def test_it_applies_the_pdl1_thresholds(tps, expected):
    assert classify(pdl1_tps=tps).classification == expected


def test_no_driver_and_no_pdl1_needs_pdl1():
    result = classify()
    assert result.classification == "need_pdl1"
    assert result.missing == ()


@pytest.mark.parametrize(("gene", "value", "expected"), DRIVERS)
def test_an_actionable_driver_wins_over_high_pdl1_with_a_warning(gene, value, expected):
    result = classify(**{gene: value}, pdl1_tps=90)
    assert result.classification == expected
    assert "io_mono_not_preferred_with_driver" in {w.id for w in result.warnings}


@pytest.mark.parametrize(("gene", "value", "expected"), DRIVERS)
def test_an_actionable_driver_decides_even_for_squamous(gene, value, expected):
    assert classify(histology="squamous", **{gene: value}).classification == expected


@pytest.mark.parametrize("gene", FIRST_LINE_GENES)
@pytest.mark.parametrize("status", ["pending", "not_tested", None])
def test_a_pending_driver_in_non_squamous_disease_awaits_molecular_results(gene, status):
    result = classify(**{gene: status}, pdl1_tps=80)
    assert result.classification == "await_molecular"
    assert gene in result.missing


@pytest.mark.parametrize("gene", ["kras", "her2"])
def test_kras_and_her2_results_do_not_hold_up_first_line(gene):
    assert classify(**{gene: "pending"}, pdl1_tps=10).classification == "chemo_io"


def test_squamous_disease_does_not_wait_for_drivers():
    result = evaluate(
        PATHWAY, {"histology": "squamous", "stage": "IV", "ecog": "0-1", "pdl1_tps": 10}
    )
    assert result.classification == "chemo_io"
    assert "squamous_untested" in {w.id for w in result.warnings}
    assert set(result.missing) == set(FIRST_LINE_GENES)


def test_kras_g12c_follows_the_pdl1_route_with_a_second_line_note():
    high = classify(kras="G12C", pdl1_tps=70)
    low = classify(kras="G12C", pdl1_tps=5)
    assert (high.classification, low.classification) == ("io_mono_or_chemo_io", "chemo_io")
    assert "kras_g12c_second_line" in {w.id for w in low.warnings}


def test_her2_mutation_follows_the_pdl1_route_with_a_note():
    result = classify(her2="mutation", pdl1_tps=5)
    assert result.classification == "chemo_io"
    assert "her2_mutation_second_line" in {w.id for w in result.warnings}


@pytest.mark.parametrize(
    ("gene", "value"),
    [("egfr", "other"), ("braf", "non_V600"), ("met", "amplification"), ("her2", "amplification")],
)
def test_alterations_without_first_line_targeted_therapy_are_noted(gene, value):
    result = classify(**{gene: value}, pdl1_tps=5)
    assert result.classification == "chemo_io"
    assert "non_first_line_alteration" in {w.id for w in result.warnings}


@pytest.mark.parametrize(
    ("ecog", "warning"), [("0-1", None), ("2", "ecog_2"), ("3-4", "ecog_3_4"), (3, "ecog_3_4")]
)
def test_performance_status_adds_warnings(ecog, warning):
    ids = {w.id for w in classify(ecog=ecog, pdl1_tps=20).warnings}
    assert ({"ecog_2", "ecog_3_4"} & ids) == ({warning} if warning else set())


def test_two_drivers_warn_and_the_first_in_order_wins():
    result = classify(egfr="L858R", alk="fusion")
    assert result.classification == "egfr_tki"
    assert "multiple_drivers" in {w.id for w in result.warnings}


@pytest.mark.parametrize("stage", ["I", "II", "III_curable"])
def test_early_stage_is_rejected(stage):
    _, errors = validate_inputs(PATHWAY, {**BASE, "stage": stage})
    assert "stage" in errors


GENE_VALUES = {
    "egfr": [
        "exon19del",
        "L858R",
        "exon20ins",
        "other_sensitising",
        "other",
        "negative",
        "pending",
        "not_tested",
    ],
    "alk": ["fusion", "negative", "pending", "not_tested"],
    "ros1": ["fusion", "negative", "pending", "not_tested"],
    "ret": ["fusion", "negative", "pending", "not_tested"],
    "ntrk": ["fusion", "negative", "pending", "not_tested"],
    "braf": ["V600E", "non_V600", "negative", "pending", "not_tested"],
    "kras": ["G12C", "other", "negative", "pending", "not_tested"],
    "met": ["exon14_skipping", "amplification", "negative", "pending", "not_tested"],
    "her2": ["mutation", "amplification", "negative", "pending", "not_tested"],
}


def reference_nsclc(c: dict) -> str:
    targeted = [
        (c["egfr"] in ("exon19del", "L858R", "other_sensitising"), "egfr_tki"),
        (c["egfr"] == "exon20ins", "egfr_exon20ins_directed"),
        (c["alk"] == "fusion", "alk_tki"),
        (c["ros1"] == "fusion", "ros1_tki"),
        (c["braf"] == "V600E", "braf_mek_inhibitor"),
        (c["met"] == "exon14_skipping", "met_tki"),
        (c["ret"] == "fusion", "ret_tki"),
        (c["ntrk"] == "fusion", "trk_inhibitor"),
    ]
    for hit, code in targeted:
        if hit:
            return code
    outstanding = any(c[g] in ("pending", "not_tested") for g in FIRST_LINE_GENES)
    if c["histology"] != "squamous" and outstanding:
        return "await_molecular"
    if c["pdl1_tps"] is None:
        return "need_pdl1"
    return "io_mono_or_chemo_io" if c["pdl1_tps"] >= 50 else "chemo_io"


@settings(max_examples=500, deadline=None)
@given(
    case=st.fixed_dictionaries(
        {
            "histology": st.sampled_from(["adenocarcinoma", "squamous", "other"]),
            "stage": st.sampled_from(["III_not_curable", "IV", "IVA", "IVB"]),
            "ecog": st.sampled_from(["0-1", "2", "3-4"]),
            "pdl1_tps": st.one_of(st.none(), st.sampled_from([0, 1, 49, 50, 80])),
            **{gene: st.sampled_from(values) for gene, values in GENE_VALUES.items()},
        }
    )
)
def test_it_agrees_with_the_reference_algorithm(case):
    assert evaluate(PATHWAY, case).classification == reference_nsclc(case)
