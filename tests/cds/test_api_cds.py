"""GET /api/cds/pathways/, POST /api/cds/evaluate/, GET /api/cds/evaluations/{id}/."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent, Role
from cds import services
from cds.models import Evaluation
from tests.factories import make_member

pytestmark = pytest.mark.django_db

RESULT_KEYS = {
    "pathway",
    "pathway_version",
    "classification",
    "label",
    "recommendations",
    "trace",
    "missing",
    "warnings",
    "evaluation_id",
}


@pytest.fixture(autouse=True)
def pathways(db):
    services.pathway_sync()


@pytest.fixture
def clinician(hospital_a):
    return make_member(hospital_a, Role.CLINICIAN, username="clinician_a")


def evaluate(client, pathway="prostate-eau", **inputs):
    return client.post("/api/cds/evaluate/", {"pathway": pathway, "inputs": inputs}, format="json")


def test_it_lists_active_pathways_with_version_and_input_schema(
    api_as, clinician, django_assert_max_num_queries
):
    client = api_as(clinician)
    with django_assert_max_num_queries(3):
        response = client.get("/api/cds/pathways/")
    assert response.status_code == 200
    by_id = {p["id"]: p for p in response.json()}
    assert set(by_id) == {"prostate-eau", "prostate-nccn", "breast-st-gallen", "nsclc-esmo"}
    eau = by_id["prostate-eau"]
    assert eau["version"] == "1.1.0" and eau["status"] == "active" and len(eau["checksum"]) == 64
    assert eau["source"]["url"].startswith("https://")
    schema = eau["input_schema"]
    assert schema["properties"]["psa"]["maximum"] == 10000
    assert schema["properties"]["psa"]["x-unit"] == "ng/mL"
    assert "cT2b" in schema["properties"]["ct"]["enum"]
    codes = {c["code"] for c in eau["classifications"]}
    assert {"low", "intermediate", "high_localised", "insufficient_data"} <= codes


def test_the_pathway_list_needs_a_login(api):
    assert api.get("/api/cds/pathways/").status_code in (401, 403)
    assert evaluate(api, psa=5).status_code in (401, 403)


def test_one_pathway_by_id(api_as, clinician):
    response = api_as(clinician).get("/api/cds/pathways/breast-st-gallen/")
    assert response.status_code == 200
    assert "her2_ihc" in response.json()["input_schema"]["properties"]
    assert api_as(clinician).get("/api/cds/pathways/nope/").status_code == 404


def test_it_evaluates_stores_and_audits(api_as, clinician):
    response = evaluate(api_as(clinician), psa=10, isup_grade=1, ct="cT1c", cn="cN0", cm="cM0")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == RESULT_KEYS
    assert body["pathway"] == "prostate-eau" and body["pathway_version"] == "1.1.0"
    # EAU: PSA 10-20 ng/mL is intermediate risk, 10 included.
    assert body["classification"] == "intermediate"
    assert body["recommendations"] and {"id", "label", "notes"} <= set(body["recommendations"][0])
    decided = [step for step in body["trace"] if step["selected"]]
    assert len(decided) == 1 and decided[0]["values"]["psa"] == 10
    assert body["missing"] == [] and body["warnings"] == []
    evaluation = Evaluation.objects.get(pk=body["evaluation_id"])
    assert evaluation.user == clinician and evaluation.source == "api"
    assert evaluation.output["trace"] == body["trace"]
    event = AuditEvent.objects.get(action="cds.evaluated", object_id=str(evaluation.pk))
    assert event.payload["inputs"] == {
        "psa": 10,
        "isup_grade": 1,
        "ct": "cT1c",
        "cn": "cN0",
        "cm": "cM0",
    }
    assert event.payload["version"] == "1.1.0" and event.payload["source"] == "api"


@pytest.mark.parametrize(
    ("psa", "expected"),
    [(9.9, "low"), (10, "intermediate"), (20, "intermediate"), (20.1, "high_localised")],
)
def test_psa_thresholds_through_the_api(api_as, clinician, psa, expected):
    body = evaluate(api_as(clinician), psa=psa, isup_grade=1, ct="cT1c", cn="cN0", cm="cM0").json()
    assert body["classification"] == expected


def test_missing_values_are_reported_not_guessed(api_as, clinician):
    body = evaluate(api_as(clinician), isup_grade=1, ct="cT1c").json()
    assert body["classification"] == "insufficient_data"
    assert "psa" in body["missing"]


def test_out_of_range_and_unknown_inputs_answer_400_with_field_messages(api_as, clinician):
    response = evaluate(api_as(clinician), psa=20000, isup_grade=7, ct="cT9", colour="blue")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == 400
    fields = error["fields"]
    assert "between 0 and 10000" in fields["inputs.psa"][0]
    assert "inputs.isup_grade" in fields and "inputs.ct" in fields
    assert fields["inputs.colour"] == ["Unknown input for this pathway."]
    assert not Evaluation.objects.exists()


def test_an_unknown_pathway_or_missing_inputs_answer_400(api_as, clinician):
    client = api_as(clinician)
    response = evaluate(client, pathway="prostate-xyz", psa=4)
    assert response.status_code == 400
    assert "pathway" in response.json()["error"]["fields"]
    response = client.post("/api/cds/evaluate/", {"pathway": "prostate-eau"}, format="json")
    assert response.status_code == 400
    assert "inputs" in response.json()["error"]["fields"]


def test_a_stored_evaluation_is_for_its_author_and_admins(
    api_as, clinician, outsider, platform_admin
):
    evaluation_id = evaluate(api_as(clinician), psa=4, isup_grade=1, ct="cT1c").json()[
        "evaluation_id"
    ]
    url = f"/api/cds/evaluations/{evaluation_id}/"
    mine = api_as(clinician).get(url)
    assert mine.status_code == 200
    body = mine.json()
    assert set(body) >= RESULT_KEYS
    assert body["inputs"] == {"psa": 4, "isup_grade": 1, "ct": "cT1c"}
    assert body["portal_url"].endswith(f"/cds/evaluations/{evaluation_id}/")
    assert api_as(outsider).get(url).status_code == 404
    assert api_as(platform_admin).get(url).status_code == 200


def test_the_openapi_schema_describes_the_cds_endpoints(api_as, clinician):
    response = api_as(clinician).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/cds/pathways/" in paths
    evaluate_op = paths["/api/cds/evaluate/"]["post"]
    assert {"201", "400"} <= set(evaluate_op["responses"])
    assert "/api/cds/evaluations/{evaluation_id}/" in paths
    assert "/cds-services/{service_id}" in paths
