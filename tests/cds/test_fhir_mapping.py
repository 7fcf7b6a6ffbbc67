"""FHIR R4 prefetch -> pathway inputs, with small hand-written resources."""

from __future__ import annotations

import pytest

from cds.engine import PATHWAYS_DIR, evaluate, load_pathway
from cds.fhir_mapping import PATHWAY_INPUTS, prefetch_templates, prefetch_to_inputs

LOINC = "http://loinc.org"


def obs(oid, loinc, *, when="2024-03-01", status="final", code=None, **value):
    resource = {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
        "code": code or {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": when,
    }
    resource.update(value)
    return resource


def concept(text):
    return {"valueCodeableConcept": {"text": text}}


def quantity(value, unit, code=None):
    return {
        "valueQuantity": {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": code or unit,
        }
    }


def bundle(*resources):
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1955-04-02"}


def test_it_maps_prostate_observations_and_condition_stage():
    prefetch = {
        "patient": PATIENT,
        "conditions": bundle(
            {
                "resourceType": "Condition",
                "id": "c1",
                "subject": {"reference": "Patient/p1"},
                "code": {"text": "Adenocarcinoma of prostate"},
                "verificationStatus": {"coding": [{"code": "confirmed"}]},
                "stage": [{"summary": {"text": "cT2b cN0 cM0"}}],
            }
        ),
        "observations": bundle(
            obs("psa", "2857-1", **quantity(12.5, "ug/L")),
            obs("gl", "35266-6", valueString="Gleason 3+4=7"),
        ),
    }
    inputs, missing, notes = prefetch_to_inputs("prostate-eau", prefetch)
    assert inputs == {"psa": 12.5, "gleason": "3+4", "ct": "cT2b", "cn": "cN0", "cm": "cM0"}
    assert missing == []
    assert any("Observation/psa" in n for n in notes)
    pathway = load_pathway(PATHWAYS_DIR / "prostate-eau.yaml")
    assert evaluate(pathway, inputs).classification == "intermediate"


def test_it_prefers_tnm_observations_and_the_latest_psa():
    prefetch = {
        "observations": bundle(
            obs("psa-old", "2857-1", when="2023-01-01", **quantity(30, "ng/mL")),
            obs("psa-new", "2857-1", when="2024-06-01T10:00:00+02:00", **quantity(8, "ng/mL")),
            obs("t", "21905-5", **concept("T1c")),
            obs("n", "21906-3", **concept("cNX")),
            obs("m", "21907-1", **concept("cM1b")),
            obs(
                "gg",
                "94734-1",
                valueCodeableConcept={"coding": [{"system": LOINC, "code": "LA30797-7"}]},
            ),
        )
    }
    inputs, missing, notes = prefetch_to_inputs("prostate-nccn", prefetch)
    assert inputs["psa"] == 8
    assert inputs["ct"] == "cT1c" and inputs["cn"] == "cNX" and inputs["cm"] == "cM1b"
    assert inputs["isup_grade"] == 4
    assert set(missing) == {"patient", "conditions"}
    assert any("older value" in n or "more recent" in n for n in notes)


def test_it_skips_unusable_status_and_unknown_units():
    prefetch = {
        "observations": bundle(
            obs("psa-prelim", "2857-1", status="preliminary", **quantity(4, "ng/mL")),
            obs("psa-mol", "2857-1", **quantity(4, "nmol/L")),
        )
    }
    inputs, _, notes = prefetch_to_inputs("prostate-eau", prefetch)
    assert "psa" not in inputs
    assert any("preliminary" in n for n in notes) and any("nmol/L" in n for n in notes)


def test_it_maps_breast_markers():
    prefetch = {
        "patient": PATIENT,
        "observations": bundle(
            obs("er", "85337-4", **quantity(95, "%")),
            obs("pr", "16113-3", **concept("Negative")),
            obs("her2", "85319-2", **concept("Equivocal (2+)")),
            obs("ish", "85318-4", **concept("ISH group 3")),
            obs("ki", "85330-9", **quantity(25, "%")),
        ),
    }
    inputs, missing, notes = prefetch_to_inputs("breast-st-gallen", prefetch)
    assert inputs == {
        "er_pct": 95,
        "pr_pct": 0,
        "her2_ihc": 2,
        "her2_ish": "group3",
        "ki67_pct": 25,
    }
    assert missing == []
    assert any("mapped to 0%" in n for n in notes)
    pathway = load_pathway(PATHWAYS_DIR / "breast-st-gallen.yaml")
    assert evaluate(pathway, inputs).classification == "luminal_b_like_her2_positive"


def test_a_qualitative_er_positive_is_not_turned_into_a_percentage():
    inputs, _, notes = prefetch_to_inputs(
        "breast-st-gallen", {"observations": bundle(obs("er", "16112-5", **concept("Positive")))}
    )
    assert "er_pct" not in inputs
    assert any("needs a percentage" in n for n in notes)


def test_it_maps_nsclc_drivers_from_genomics_style_observations():
    def variant(oid, gene, hgnc, value_code, change=None):
        components = [
            {
                "code": {"coding": [{"system": LOINC, "code": "48018-6"}]},
                "valueCodeableConcept": {
                    "coding": [
                        {"system": "http://www.genenames.org/geneId", "code": hgnc, "display": gene}
                    ]
                },
            }
        ]
        if change:
            components.append(
                {
                    "code": {"coding": [{"system": LOINC, "code": "48005-3"}]},
                    "valueCodeableConcept": {"text": change},
                }
            )
        return obs(
            oid,
            "69548-6",
            valueCodeableConcept={"coding": [{"system": LOINC, "code": value_code}]},
            component=components,
        )

    prefetch = {
        "patient": {"resourceType": "Patient", "id": "p1"},
        "conditions": bundle(
            {
                "resourceType": "Condition",
                "id": "lung",
                "subject": {"reference": "Patient/p1"},
                "code": {
                    "coding": [
                        {
                            "system": "urn:oid:2.16.840.1.113883.6.43.1",
                            "code": "8140/3",
                            "display": "Adenocarcinoma, NOS",
                        }
                    ]
                },
                "stage": [{"summary": {"text": "Stage IVA"}}],
            }
        ),
        "observations": bundle(
            variant("egfr", "EGFR", "HGNC:3236", "LA9633-4", "p.Leu858Arg (L858R)"),
            variant("alk", "ALK", "HGNC:427", "LA9634-2"),
            variant("kras", "KRAS", "HGNC:6407", "LA9633-4", "p.G12C"),
            obs("ret", "99999-9", code={"text": "RET fusion"}, **concept("Not detected")),
            obs("ros1", "99999-9", code={"text": "ROS1 rearrangement FISH"}, **concept("pending")),
            obs("pdl1", "85147-7", **quantity(60, "%")),
            obs("ecog", "89247-1", valueInteger=1),
        ),
    }
    inputs, missing, _ = prefetch_to_inputs("nsclc-esmo", prefetch)
    assert inputs == {
        "histology": "adenocarcinoma",
        "stage": "IVA",
        "egfr": "L858R",
        "alk": "negative",
        "kras": "G12C",
        "ret": "negative",
        "ros1": "pending",
        "pdl1_tps": 60,
        "ecog": "0-1",
    }
    assert missing == []
    pathway = load_pathway(PATHWAYS_DIR / "nsclc-esmo.yaml")
    result = evaluate(pathway, inputs)
    assert result.classification == "egfr_tki"


@pytest.mark.parametrize(
    ("gene", "text", "expected"),
    [
        ("EGFR", "Exon 19 deletion detected", "exon19del"),
        ("EGFR", "exon 20 insertion", "exon20ins"),
        ("EGFR", "G719A", "other_sensitising"),
        ("EGFR", "T790M mutation detected", "other"),
        ("BRAF", "V600E detected", "V600E"),
        ("BRAF", "G469A mutation", "non_V600"),
        ("MET", "exon 14 skipping", "exon14_skipping"),
        ("MET", "amplification", "amplification"),
        ("ERBB2", "exon 20 insertion mutation", "mutation"),
        ("NTRK1", "fusion detected", "fusion"),
        ("ALK", "not tested", "not_tested"),
        ("BRAF", "V600E not detected", "negative"),
    ],
)
def test_it_reads_driver_results_from_text(gene, text, expected):
    prefetch = {
        "observations": bundle(
            obs("x", "99999-9", code={"text": f"{gene} analysis"}, **concept(text))
        )
    }
    inputs, _, _ = prefetch_to_inputs("nsclc-esmo", prefetch)
    name = {"ERBB2": "her2", "NTRK1": "ntrk"}.get(gene, gene.lower())
    assert inputs == {name: expected}


def test_it_ignores_invalid_resources_and_reports_them():
    prefetch = {
        "patient": {"resourceType": "Patient", "id": "p1", "gender": 7},
        "observations": {"not": "fhir"},
    }
    inputs, missing, notes = prefetch_to_inputs("prostate-eau", prefetch)
    assert inputs == {}
    assert missing == ["conditions"]
    assert len(notes) == 2


def test_pathological_stage_is_not_taken_as_clinical():
    condition = {
        "resourceType": "Condition",
        "id": "c",
        "subject": {"reference": "Patient/p1"},
        "stage": [{"summary": {"text": "pT3a pN1 cM0"}}],
    }
    inputs, _, _ = prefetch_to_inputs("prostate-eau", {"conditions": bundle(condition)})
    assert inputs == {"cm": "cM0"}


def test_every_mapped_name_is_an_input_of_its_pathway():
    for pathway_id, names in PATHWAY_INPUTS.items():
        pathway = load_pathway(PATHWAYS_DIR / f"{pathway_id}.yaml")
        assert set(names) <= set(pathway.inputs), pathway_id


def test_prefetch_templates_name_the_loinc_codes():
    templates = prefetch_templates("prostate-eau")
    assert templates["patient"] == "Patient/{{context.patientId}}"
    assert "http://loinc.org|2857-1" in templates["observations"]


def test_an_unknown_pathway_is_an_error():
    with pytest.raises(ValueError, match="no FHIR mapping"):
        prefetch_to_inputs("colon-esmo", {})
