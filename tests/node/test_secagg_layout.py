"""The fixed vector layouts: three synthetic sites mask their unsuppressed tables, and what the
unmasked sum decodes to is the pooled table, cell by cell."""

from __future__ import annotations

from collections import Counter

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from optima_node import secagg
from optima_node.analyses import RAW_TABLES, REGISTRY, AnalysisRefused
from optima_node.db import connect
from optima_node.policy import Policy
from optima_node.schemas import AGE_GROUPS, PARAMS_MODELS, ReasonCode
from optima_node.secagg_layout import LayoutError, decode, encode, layout
from optima_node.synth import synthesise

LUNG = [4115276, 4110591]
EXACT = Policy(min_cell_count=1, km_min_time_unit_days=1)

CASES = {
    "cohort_count": {
        "cohort": {"condition_concept_ids": LUNG},
        "stratify_by": ["sex", "age_group"],
    },
    "characterisation": {"cohort": {"condition_concept_ids": LUNG}},
    "kaplan_meier": {
        "cohort": {"condition_concept_ids": LUNG},
        "time_unit_days": 90,
        "max_time_units": 40,
        "stratify_by": "age_group",
    },
}


@pytest.fixture(scope="module")
def three_sites(tmp_path_factory):
    urls = []
    for seed, persons in ((5, 900), (6, 1300), (7, 1700)):
        path = tmp_path_factory.mktemp(f"secagg{seed}") / "omop.sqlite3"
        db = connect(f"sqlite:///{path}")
        synthesise(db, persons, seed, ["prostate", "breast", "lung"])
        db.close()
        urls.append(f"sqlite:///{path}")
    return urls


def raw(url, analysis_type, params, policy=EXACT):
    db = connect(url)
    try:
        model = PARAMS_MODELS[(analysis_type, 1)].model_validate(params)
        return RAW_TABLES[(analysis_type, 1)](db, model, policy, None)
    finally:
        db.close()


def released(url, analysis_type, params, policy=EXACT):
    db = connect(url)
    try:
        model = PARAMS_MODELS[(analysis_type, 1)].model_validate(params)
        return REGISTRY[(analysis_type, 1)](db, model, {}, policy, None)
    finally:
        db.close()


def secure_sum(vectors):
    """What the portal gets from three honest nodes: the unmasked sum of their masked vectors."""
    ids = list(range(1, len(vectors) + 1))
    identity = {i: Ed25519PrivateKey.generate() for i in ids}
    pinned = {i: secagg.public_identity(identity[i]) for i in ids}
    keys = {
        i: secagg.new_round_key(
            identity[i], analysis_id=9, round_id="9-1", node_id=i, vector_length=len(vectors[0])
        )
        for i in ids
    }
    relayed = [k.announcement for k in keys.values()]
    masked = [
        secagg.mask(v, key=keys[i], peers=relayed, identities=pinned, analysis_id=9, round_id="9-1")
        for i, v in zip(ids, vectors, strict=True)
    ]
    return secagg.unmask_sum(masked)


def test_the_layout_is_a_function_of_the_parameters():
    km = CASES["kaplan_meier"]
    assert len(layout("kaplan_meier", km)) == len(AGE_GROUPS) * 41 * 2
    assert layout("kaplan_meier", km) == layout("kaplan_meier", dict(km))
    assert len(layout("kaplan_meier", {**km, "stratify_by": "none"})) == 82
    assert len(layout("cohort_count", CASES["cohort_count"])) == 3 * len(AGE_GROUPS)
    bounded = {
        "cohort": {
            "condition_concept_ids": LUNG,
            "index_date_min": "2010-03-01",
            "index_date_max": "2015-12-31",
        },
        "stratify_by": ["index_year"],
    }
    assert [c[0] for c in layout("cohort_count", bounded).cells] == [
        *map(str, range(2010, 2016)),
        "other",
    ]
    # The defaults are filled in exactly as the nodes' parameter models fill them.
    assert len(layout("kaplan_meier", {"cohort": {"condition_concept_ids": LUNG}})) == 121 * 2


@pytest.mark.parametrize("analysis_type", sorted(CASES))
def test_the_unmasked_sum_decodes_to_the_pooled_table(three_sites, analysis_type):
    params = CASES[analysis_type]
    tables = [raw(url, analysis_type, params) for url in three_sites]
    vectors = [encode(analysis_type, params, table) for table in tables]
    assert len({len(v) for v in vectors}) == 1
    pooled = decode(analysis_type, params, secure_sum(vectors))
    # Reference: the sites' exact released tables (min cell count 1), added up cell by cell.
    exact = [released(url, analysis_type, params) for url in three_sites]
    if analysis_type == "cohort_count":
        expected = Counter()
        for result in exact:
            for row in result["rows"]:
                expected[tuple(row["strata"].values())] += row["count"]
        assert {tuple(r["strata"].values()): r["count"] for r in pooled["rows"]} == expected
    elif analysis_type == "characterisation":
        assert pooled["person_count"] == sum(r["person_count"]["count"] for r in exact)
        assert pooled["deaths"] == sum(r["deaths"]["count"] for r in exact)
        for section in ("by_sex", "by_age_group", "by_index_year", "by_follow_up"):
            expected = Counter()
            for result in exact:
                for row in result[section]:
                    expected[tuple(row["strata"].values())] += row["count"]
            assert {tuple(r["strata"].values()): r["count"] for r in pooled[section]} == expected
    else:
        expected = Counter()
        for result in exact:
            for stratum in result["strata"]:
                for row in stratum["rows"]:
                    expected[(stratum["stratum"], row["time"], "e")] += row["events"]
                    expected[(stratum["stratum"], row["time"], "c")] += row["censored"]
        got = Counter()
        for stratum in pooled["strata"]:
            for row in stratum["rows"]:
                got[(stratum["stratum"], row["time"], "e")] += row["events"]
                got[(stratum["stratum"], row["time"], "c")] += row["censored"]
        assert +got == +expected
        assert pooled["time_unit_days"] == 90 and pooled["max_time_units"] == 40


def test_decode_of_encode_is_the_raw_table(three_sites):
    for analysis_type, params in CASES.items():
        table = raw(three_sites[0], analysis_type, params)
        assert decode(analysis_type, params, encode(analysis_type, params, table)) == table


def test_the_released_path_is_the_raw_table_suppressed(three_sites):
    params = CASES["cohort_count"]
    policy = Policy(min_cell_count=5)
    table = raw(three_sites[0], "cohort_count", params, policy)
    out = released(three_sites[0], "cohort_count", params, policy)
    assert [r["strata"] for r in out["rows"]] == [r["strata"] for r in table["rows"]]
    for row, cell in zip(out["rows"], table["rows"], strict=True):
        assert row["count"] == (None if cell["count"] < 5 else cell["count"])
    assert any(0 < r["count"] < 5 for r in table["rows"])  # the raw table really is unsuppressed


def test_index_years_outside_the_cohort_range_go_to_other():
    params = {
        "cohort": {"condition_concept_ids": LUNG, "index_date_min": "2019-01-01"},
        "stratify_by": ["index_year"],
    }
    table = {
        "stratify_by": ["index_year"],
        "rows": [
            {"strata": {"index_year": "2019"}, "count": 4},
            {"strata": {"index_year": "1850"}, "count": 2},
        ],
    }
    pooled = decode("cohort_count", params, encode("cohort_count", params, table))
    assert pooled["rows"] == [
        {"strata": {"index_year": "2019"}, "count": 4},
        {"strata": {"index_year": "other"}, "count": 2},
    ]


def test_cells_outside_the_layout_are_refused():
    params = CASES["kaplan_meier"]
    base = {"time_unit_days": 90, "max_time_units": 40, "stratify_by": "age_group"}
    for strata in (
        [{"stratum": "dragons", "rows": [{"time": 1, "events": 1, "censored": 0}]}],
        [{"stratum": "50-59", "rows": [{"time": 41, "events": 1, "censored": 0}]}],
        [{"stratum": "50-59", "rows": [{"time": 1, "events": -1, "censored": 0}]}],
    ):
        with pytest.raises(LayoutError):
            encode("kaplan_meier", params, {**base, "strata": strata})
    with pytest.raises(LayoutError):
        encode(
            "cohort_count",
            CASES["cohort_count"],
            {"rows": [{"strata": {"sex": "other", "age_group": "50-59"}, "count": 1}]},
        )
    with pytest.raises(LayoutError):
        decode("kaplan_meier", params, [0] * 3)
    with pytest.raises(LayoutError):
        layout("logistic_regression", {})


def test_the_raw_km_table_keeps_the_sites_minimum_time_unit(three_sites):
    with pytest.raises(AnalysisRefused) as refused:
        raw(
            three_sites[0], "kaplan_meier", CASES["kaplan_meier"], Policy(km_min_time_unit_days=180)
        )
    assert refused.value.reason == ReasonCode.TIME_UNIT_BELOW_MINIMUM
