"""Engine behaviour that does not depend on one pathway's clinical content."""

from __future__ import annotations

import ast
import copy
import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from cds.engine import (
    PATHWAYS_DIR,
    InputValidationError,
    PathwayFormatError,
    evaluate,
    load_builtin_pathways,
    load_pathway,
    pathway_json_schema,
    run_self_tests,
    validate_inputs,
)

PATHWAY_FILES = sorted(PATHWAYS_DIR.glob("*.yaml"))
REQUIRED_IDS = {"prostate-eau", "prostate-nccn", "breast-st-gallen", "nsclc-esmo"}


def raw(pathway_id: str) -> dict:
    return yaml.safe_load((PATHWAYS_DIR / f"{pathway_id}.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pathways():
    return load_builtin_pathways()


def test_it_ships_the_required_pathways(pathways):
    assert set(pathways) >= REQUIRED_IDS


@pytest.mark.parametrize("path", PATHWAY_FILES, ids=lambda p: p.stem)
def test_it_passes_each_pathways_embedded_test_cases(path):
    pathway = load_pathway(path)
    assert run_self_tests(pathway) == []


@pytest.mark.parametrize("path", PATHWAY_FILES, ids=lambda p: p.stem)
def test_it_validates_each_file_against_the_published_json_schema(path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    jsonschema.validate(data, pathway_json_schema())


@pytest.mark.parametrize("path", PATHWAY_FILES, ids=lambda p: p.stem)
def test_it_gives_every_outcome_and_option_a_patient_explanation(path):
    pathway = load_pathway(path)
    for code, outcome in pathway.outcomes.items():
        assert outcome.patient_explanation.strip(), code
        for option in outcome.options:
            assert option.patient_explanation.strip(), (code, option.id)
    for rule, _ in pathway.rules:
        assert rule.citation.strip(), rule.id


def test_it_detects_a_pathway_whose_self_test_fails():
    data = raw("prostate-eau")
    data["tests"][0]["expect"] = "high_localised"  # the case is low risk
    failures = run_self_tests(load_pathway(data))
    assert [f.test_id for f in failures] == [data["tests"][0]["id"]]
    assert "expected high_localised, got low" in failures[0].message


def test_it_detects_a_threshold_typo_through_the_self_tests():
    data = raw("prostate-eau")
    intermediate = next(r for r in data["rules"] if r["id"] == "intermediate")
    intermediate["when"]["any"][0]["value"] = [11, 20]  # PSA 10 no longer intermediate
    failing = {f.test_id for f in run_self_tests(load_pathway(data))}
    assert "psa-exactly-10" in failing


class TestChecksum:
    def test_it_is_stable_for_the_same_content(self):
        assert (
            load_pathway(raw("prostate-eau")).checksum == load_pathway(raw("prostate-eau")).checksum
        )

    def test_it_ignores_key_order_and_comments(self, tmp_path):
        data = raw("breast-st-gallen")
        reordered = dict(reversed(list(data.items())))
        path = tmp_path / "breast-st-gallen.yaml"
        path.write_text(
            "# a comment\n" + yaml.safe_dump(reordered, sort_keys=False), encoding="utf-8"
        )
        assert load_pathway(path).checksum == load_pathway(data).checksum

    def test_it_changes_when_content_changes(self):
        data = raw("prostate-eau")
        changed = copy.deepcopy(data)
        changed["outcomes"]["low"]["options"][0]["notes"] += " Edited."
        assert load_pathway(changed).checksum != load_pathway(data).checksum

    def test_it_is_a_sha256_hex_digest(self, pathways):
        assert all(len(p.checksum) == 64 and int(p.checksum, 16) >= 0 for p in pathways.values())


class TestFormatErrors:
    def error_for(self, data) -> PathwayFormatError:
        with pytest.raises(PathwayFormatError) as info:
            load_pathway(data)
        return info.value

    def test_it_names_the_location_of_an_unknown_operator(self):
        data = raw("prostate-eau")
        data["rules"][3]["when"]["any"][0]["op"] = "gtt"
        error = self.error_for(data)
        assert error.location == "rules[3].when.any[0].op"
        assert "gtt" in str(error)

    def test_it_rejects_a_value_outside_an_enum(self):
        data = raw("prostate-eau")
        data["rules"][3]["when"]["any"][2]["value"] = "cT2d"
        assert self.error_for(data).location == "rules[3].when.any[2].value"

    def test_it_rejects_an_unknown_input_in_a_rule(self):
        data = raw("prostate-eau")
        data["rules"][4]["when"]["any"][0]["input"] = "psa_level"
        error = self.error_for(data)
        assert error.location == "rules[4].when.any[0].input"
        assert "psa_level" in str(error)

    def test_it_rejects_an_outcome_that_is_not_declared(self):
        data = raw("prostate-eau")
        data["rules"][5]["outcome"] = "very_low"
        assert self.error_for(data).location == "rules[5].outcome"

    def test_it_rejects_unknown_keys_with_their_path(self):
        data = raw("breast-st-gallen")
        data["inputs"]["er_pct"]["maximun"] = 100
        assert self.error_for(data).location == "inputs.er_pct.maximun"

    def test_it_rejects_a_bad_status_and_version(self):
        data = raw("nsclc-esmo")
        data["status"] = "published"
        assert self.error_for(data).location == "status"
        data = raw("nsclc-esmo")
        data["version"] = "1.0"
        assert self.error_for(data).location == "version"

    def test_it_rejects_an_outcome_no_rule_produces(self):
        data = raw("breast-st-gallen")
        data["outcomes"]["extra"] = copy.deepcopy(data["outcomes"]["indeterminate"])
        assert self.error_for(data).location == "outcomes"

    def test_it_rejects_a_file_named_differently_from_its_id(self, tmp_path):
        path = tmp_path / "prostate-eau-copy.yaml"
        path.write_text(
            (PATHWAYS_DIR / "prostate-eau.yaml").read_text(encoding="utf-8"), encoding="utf-8"
        )
        error = self.error_for(path)
        assert error.source == "prostate-eau-copy.yaml" and error.location == "id"

    def test_it_reports_broken_yaml_with_the_file_name(self, tmp_path):
        path = tmp_path / "broken.yaml"
        path.write_text("id: [unclosed\n", encoding="utf-8")
        assert self.error_for(path).source == "broken.yaml"

    def test_it_rejects_a_self_referencing_definition(self):
        data = raw("prostate-eau")
        data["definitions"]["metastatic"] = {"ref": "metastatic"}
        assert "refers to itself" in str(self.error_for(data))

    def test_it_rejects_a_pathway_without_test_cases(self):
        data = raw("prostate-eau")
        data["tests"] = []
        assert self.error_for(data).location == "tests"


class TestValidateInputs:
    def test_it_cleans_and_converts_units(self, pathways):
        clean, errors = validate_inputs(
            pathways["prostate-eau"],
            {"psa": {"value": "7,5", "unit": "µg/L"}, "ct": "T2a", "gleason": "3+3"},
        )
        assert errors == {}
        assert clean == {"psa": 7.5, "ct": "cT2a", "gleason": "3+3"}

    def test_it_treats_empty_and_none_as_missing(self, pathways):
        clean, errors = validate_inputs(
            pathways["prostate-eau"], {"psa": "", "isup_grade": None, "ct": "  "}
        )
        assert clean == {} and errors == {}

    def test_it_rejects_an_unknown_field(self, pathways):
        _, errors = validate_inputs(pathways["prostate-eau"], {"psa": 5, "pas": 5})
        assert list(errors) == ["pas"]

    @pytest.mark.parametrize(
        ("pathway_id", "field", "value"),
        [
            ("prostate-eau", "psa", -0.1),
            ("prostate-eau", "psa", 10000.1),
            ("prostate-eau", "isup_grade", 0),
            ("prostate-eau", "isup_grade", 6),
            ("prostate-eau", "isup_grade", 2.5),
            ("prostate-eau", "psa", "high"),
            ("prostate-eau", "psa", True),
            ("prostate-eau", "psa", float("nan")),
            ("prostate-eau", "psa", {"value": 5, "unit": "mg/L"}),
            ("prostate-eau", "ct", "cT5"),
            ("prostate-eau", "gleason", "seven"),
            ("prostate-eau", "gleason", "3+4=8"),
            ("prostate-eau", "gleason", "5+2"),
            ("breast-st-gallen", "er_pct", 100.5),
            ("breast-st-gallen", "ki67_pct", -1),
            ("breast-st-gallen", "her2_ihc", "4+"),
            ("breast-st-gallen", "her2_ish", "group6"),
            ("nsclc-esmo", "pdl1_tps", 101),
            ("nsclc-esmo", "egfr", "exon21"),
            ("nsclc-esmo", "ecog", "5"),
        ],
    )
    def test_it_rejects_out_of_range_and_unknown_values(self, pathways, pathway_id, field, value):
        _, errors = validate_inputs(pathways[pathway_id], {field: value})
        assert field in errors, errors
        assert all(isinstance(m, str) and m for m in errors[field])

    def test_it_accepts_the_range_bounds(self, pathways):
        for value in (0, 10000):
            assert validate_inputs(pathways["prostate-eau"], {"psa": value})[1] == {}
        for value in (0, 100):
            assert validate_inputs(pathways["breast-st-gallen"], {"er_pct": value})[1] == {}

    def test_it_reports_missing_required_inputs_only_when_asked(self, pathways):
        assert validate_inputs(pathways["prostate-eau"], {})[1] == {}
        _, errors = validate_inputs(pathways["prostate-eau"], {}, partial=False)
        assert set(errors) == {"psa", "ct"}

    def test_it_rejects_a_gleason_score_that_contradicts_the_isup_grade(self, pathways):
        _, errors = validate_inputs(pathways["prostate-eau"], {"gleason": "4+3", "isup_grade": 2})
        assert "isup_grade" in errors

    def test_it_maps_case_and_aliases(self, pathways):
        clean, errors = validate_inputs(pathways["nsclc-esmo"], {"egfr": "l858r", "ecog": 1})
        assert errors == {} and clean == {"egfr": "L858R", "ecog": "0-1"}

    def test_it_rejects_inputs_that_are_not_a_mapping(self, pathways):
        _, errors = validate_inputs(pathways["nsclc-esmo"], ["egfr"])  # type: ignore[arg-type]
        assert "__all__" in errors


class TestEvaluate:
    def test_it_raises_on_invalid_inputs(self, pathways):
        with pytest.raises(InputValidationError) as info:
            evaluate(pathways["prostate-eau"], {"psa": -1, "colour": "blue"})
        assert set(info.value.errors) == {"psa", "colour"}

    @pytest.mark.parametrize("pathway_id", sorted(REQUIRED_IDS))
    def test_it_traces_every_rule_in_order(self, pathways, pathway_id):
        pathway = pathways[pathway_id]
        result = evaluate(pathway, {})
        assert [t.rule_id for t in result.trace] == [r.id for r, _ in pathway.rules]
        assert sum(t.selected for t in result.trace) == 1
        assert all(t.citation for t in result.trace)

    def test_it_marks_rules_after_the_decision_as_not_reached(self, pathways):
        result = evaluate(
            pathways["prostate-eau"],
            {"psa": 5, "isup_grade": 1, "ct": "cT3a", "cn": "cN0", "cm": "cM0"},
        )
        reached = {t.rule_id: t.reached for t in result.trace}
        assert reached["locally_advanced_t"] and not reached["low"]
        assert result.decided_by == "locally_advanced_t"

    def test_it_reports_the_values_that_decided_each_rule(self, pathways):
        result = evaluate(
            pathways["prostate-eau"],
            {"psa": 25, "isup_grade": 1, "ct": "cT1c", "cn": "cN0", "cm": "cM0"},
        )
        high = next(t for t in result.trace if t.rule_id == "high_localised")
        assert high.matched is True and high.values == {"psa": 25}
        low = next(t for t in result.trace if t.rule_id == "low")
        assert low.matched is False and low.values == {"psa": 25}

    def test_it_traces_derived_values(self, pathways):
        result = evaluate(
            pathways["prostate-eau"],
            {"psa": 5, "gleason": "4+3", "ct": "cT1c", "cn": "cN0", "cm": "cM0"},
        )
        derivation = next(d for d in result.derivations if d["name"] == "isup_grade")
        assert derivation["value"] == 3 and derivation["status"] == "derived"
        assert derivation["from"] == {"gleason": "4+3"}

    def test_it_lists_possible_classifications_when_undetermined(self, pathways):
        result = evaluate(
            pathways["prostate-eau"],
            {"psa": 5, "isup_grade": 1, "ct": "cT2", "cn": "cN0", "cm": "cM0"},
        )
        assert result.classification == "insufficient_data"
        assert result.possible_classifications == ("high_localised", "intermediate", "low")
        assert not result.is_determined

    def test_it_is_determined_with_complete_inputs(self, pathways):
        result = evaluate(
            pathways["prostate-eau"],
            {"psa": 5, "isup_grade": 1, "ct": "cT1c", "cn": "cN0", "cm": "cM0"},
        )
        assert result.is_determined and result.missing == () and result.warnings == ()

    def test_it_returns_a_frozen_result_that_serialises_to_json(self, pathways):
        result = evaluate(
            pathways["breast-st-gallen"],
            {"er_pct": 5, "pr_pct": 0, "her2_ihc": "2+", "her2_ish": "group3"},
        )
        with pytest.raises(dataclasses.FrozenInstanceError):
            result.classification = "x"  # type: ignore[misc]
        data = json.loads(json.dumps(result.to_dict()))
        assert data["classification"] == "luminal_b_like_her2_positive"
        assert data["pathway"]["checksum"] == result.pathway_checksum
        assert {t["result"] for t in data["trace"]} <= {"matched", "not_matched", "undetermined"}
        assert data["recommendations"] and data["warnings"]

    def test_it_accepts_its_own_clean_output(self, pathways):
        pathway = pathways["nsclc-esmo"]
        clean, _ = validate_inputs(
            pathway, {"histology": "squamous", "stage": "IV", "ecog": 0, "pdl1_tps": "60"}
        )
        assert evaluate(pathway, clean).classification == "io_mono_or_chemo_io"


class TestInputSchema:
    def test_it_describes_types_units_ranges_and_enums(self, pathways):
        schema = pathways["prostate-eau"].input_schema()
        assert schema["additionalProperties"] is False
        assert schema["properties"]["psa"] == {
            "title": "PSA at diagnosis",
            "description": "Serum PSA before treatment, in ng/mL (equal to µg/L).",
            "type": "number",
            "minimum": 0,
            "maximum": 10000,
            "x-unit": "ng/mL",
            "x-accepted-units": ["ng/mL", "ug/L", "µg/L"],
        }
        assert "cT2c" in schema["properties"]["ct"]["enum"]
        assert schema["properties"]["ct"]["x-not-assessed-values"] == ["cTX"]
        assert set(schema["required"]) == {"psa", "ct"}
        assert schema["x-pathway"]["checksum"] == pathways["prostate-eau"].checksum

    def test_it_is_a_valid_json_schema_that_accepts_clean_inputs(self, pathways):
        pathway = pathways["breast-st-gallen"]
        schema = pathway.input_schema()
        jsonschema.Draft202012Validator.check_schema(schema)
        clean, _ = validate_inputs(
            pathway, {"er_pct": 50, "pr_pct": 10, "her2_ihc": "1+", "ki67_pct": 30}
        )
        jsonschema.validate(clean, schema)


def test_the_engine_imports_neither_django_nor_a_database():
    sources = [
        *Path(PATHWAYS_DIR.parent / "engine").glob("*.py"),
        PATHWAYS_DIR.parent / "fhir_mapping.py",
    ]
    for source in sources:
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("django", "rest_framework", "psycopg", "sqlite3")), (
                    source,
                    name,
                )


@pytest.mark.parametrize("pathway_id", sorted(REQUIRED_IDS))
def test_it_evaluates_well_under_a_millisecond(pathways, pathway_id):
    import time

    pathway = pathways[pathway_id]
    cases = [t.inputs for t in pathway.model.tests if t.expect_errors is None]
    start = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        for case in cases:
            evaluate(pathway, case)
    mean_seconds = (time.perf_counter() - start) / (rounds * len(cases))
    assert mean_seconds < 0.001  # typically ~0.05 ms; see benchmarks/cds_engine.py


def test_raw_returns_the_file_content_that_the_checksum_covers(pathways):
    from cds.engine import canonical_checksum

    pathway = pathways["nsclc-esmo"]
    content = pathway.raw()
    assert canonical_checksum(content) == pathway.checksum
    content["title"] = "changed"
    assert pathway.raw()["title"] != "changed"
    assert load_pathway(pathway.raw()).checksum == pathway.checksum


def _input_strategy(spec):
    from hypothesis import strategies as st

    if spec.type == "enum":
        return st.sampled_from(list(spec.values))
    if spec.type == "integer":
        return st.integers(
            int(spec.minimum or 0), int(spec.maximum if spec.maximum is not None else 100)
        )
    if spec.type == "number":
        low = spec.minimum or 0
        high = spec.maximum if spec.maximum is not None else 1000
        return st.one_of(st.floats(low, high, allow_nan=False), st.integers(int(low), int(high)))
    return st.sampled_from(["3+3", "3+4", "4+3", "4+4", "3+5", "4+5", "5+4", "5+5"])


@pytest.mark.parametrize("pathway_id", sorted(REQUIRED_IDS))
def test_any_valid_partial_input_gives_a_declared_outcome_and_a_full_trace(pathways, pathway_id):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    pathway = pathways[pathway_id]
    strategy = st.fixed_dictionaries(
        {}, optional={name: _input_strategy(spec) for name, spec in pathway.inputs.items()}
    )

    @settings(max_examples=300, deadline=None)
    @given(inputs=strategy)
    def check(inputs):
        if validate_inputs(pathway, inputs)[1]:
            return  # constraint violations are covered elsewhere
        result = evaluate(pathway, inputs)
        assert result.classification in pathway.outcomes
        assert len(result.trace) == len(pathway.rules)
        assert result.possible_classifications
        assert set(result.missing) <= set(pathway.inputs)
        if result.is_determined and result.classification != pathway.model.undetermined_outcome:
            assert result.possible_classifications == (result.classification,)
        json.dumps(result.to_dict())

    check()
