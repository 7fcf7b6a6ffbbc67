"""HL7 CDS Hooks 2.0: discovery, the patient-view service (cards, 412) and feedback."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client

from accounts.models import ApiToken, AuditEvent, Role
from cds import services
from cds.models import Evaluation, HookFeedback
from tests.factories import make_member

pytestmark = pytest.mark.django_db

PATIENT_ID = "pat-123"


def bundle(*resources):
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


PATIENT = {"resourceType": "Patient", "id": PATIENT_ID, "name": [{"family": "Doe"}]}


def condition(stage="cT2b cN0 cM0"):
    return {
        "resourceType": "Condition",
        "id": "cond-1",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": {"text": "Adenocarcinoma of prostate"},
        "recordedDate": "2026-01-10",
        "stage": [{"summary": {"text": stage}}],
    }


def psa(value=6.5):
    return {
        "resourceType": "Observation",
        "id": "obs-psa",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2857-1"}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": "2026-01-05",
        "valueQuantity": {
            "value": value,
            "unit": "ng/mL",
            "system": "http://unitsofmeasure.org",
            "code": "ng/mL",
        },
    }


def isup(grade=1):
    return {
        "resourceType": "Observation",
        "id": "obs-isup",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "94734-1"}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": "2026-01-05",
        "valueInteger": grade,
    }


def hook_request(prefetch, **extra):
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": PATIENT_ID},
        "prefetch": prefetch,
        **extra,
    }


def full_prefetch(psa_value=6.5, stage="cT2b cN0 cM0"):
    return {
        "patient": PATIENT,
        "conditions": bundle(condition(stage)),
        "observations": bundle(psa(psa_value), isup(1)),
    }


@pytest.fixture(autouse=True)
def pathways(db):
    services.pathway_sync()


@pytest.fixture
def clinician(hospital_a):
    return make_member(hospital_a, Role.CLINICIAN, username="clinician_a")


@pytest.fixture
def ehr(clinician):
    """A CDS client (the EHR) holding a clinician's personal API token, with CSRF checks on."""
    _, raw = ApiToken.issue(user=clinician, name="EHR")
    client = Client(enforce_csrf_checks=True)

    def call(method, path, body=None, token=raw):
        headers = {"HTTP_AUTHORIZATION": f"Token {token}"} if token else {}
        if method == "get":
            return client.get(path, **headers)
        return client.post(path, json.dumps(body), content_type="application/json", **headers)

    return call


def test_discovery_lists_one_patient_view_service_per_active_pathway(ehr):
    response = ehr("get", "/cds-services")
    assert response.status_code == 200
    services_ = {s["id"]: s for s in response.json()["services"]}
    assert set(services_) == {"prostate-eau", "prostate-nccn", "breast-st-gallen", "nsclc-esmo"}
    eau = services_["prostate-eau"]
    assert eau["hook"] == "patient-view"
    assert eau["title"] and eau["description"]
    assert eau["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert eau["prefetch"]["conditions"].startswith("Condition?patient={{context.patientId}}")
    assert "2857-1" in eau["prefetch"]["observations"]


def test_the_hooks_need_a_token_and_refuse_bearer_jwt_clearly(ehr):
    assert ehr("get", "/cds-services", token=None).status_code == 401
    client = Client()
    response = client.get("/cds-services", HTTP_AUTHORIZATION="Bearer eyJhbGciOi.x.y")
    assert response.status_code == 401
    assert "not supported yet" in response.json()["error"]["message"]


def test_the_service_answers_a_card_from_the_prefetched_record(ehr, clinician):
    response = ehr("post", "/cds-services/prostate-eau", hook_request(full_prefetch()))
    assert response.status_code == 200, response.content
    cards = response.json()["cards"]
    assert len(cards) == 1
    card = cards[0]
    assert len(card["summary"]) < 140
    assert "Intermediate risk" in card["summary"]
    assert card["indicator"] in ("info", "warning")
    assert card["source"]["label"] and card["source"]["url"].startswith("https://uroweb.org")
    assert "**Why**" in card["detail"] and "| Rule | Result |" in card["detail"]
    assert "ct = cT2b" in card["detail"]
    evaluation = Evaluation.objects.get(pk=card["uuid"])
    assert evaluation.source == "cds-hooks" and evaluation.user == clinician
    assert evaluation.classification == "intermediate"
    assert card["links"][0]["url"].endswith(f"/cds/evaluations/{evaluation.pk}/")
    assert card["links"][0]["type"] == "absolute"
    # No patient identifiers are kept: only the clinical inputs.
    stored = json.dumps([evaluation.inputs, evaluation.output])
    assert PATIENT_ID not in stored and "Doe" not in stored
    event = AuditEvent.objects.get(action="cds.evaluated", object_id=str(evaluation.pk))
    assert PATIENT_ID not in json.dumps(event.payload)


def test_an_implausible_record_value_is_dropped_with_a_warning_card(ehr):
    response = ehr(
        "post", "/cds-services/prostate-eau", hook_request(full_prefetch(psa_value=20000))
    )
    assert response.status_code == 200
    card = response.json()["cards"][0]
    assert card["indicator"] == "warning"
    assert "psa = 20000 not used" in card["detail"]
    assert "psa" in card["summary"]


def test_missing_prefetch_without_a_fhir_server_answers_412(ehr):
    prefetch = full_prefetch()
    del prefetch["observations"]
    response = ehr("post", "/cds-services/prostate-eau", hook_request(prefetch))
    assert response.status_code == 412
    assert "observations" in response.json()["error"]["message"]
    prefetch["observations"] = None  # the client tried and could not fetch it
    assert ehr("post", "/cds-services/prostate-eau", hook_request(prefetch)).status_code == 412
    assert not Evaluation.objects.exists()


def test_a_bad_request_or_unknown_service_is_refused(ehr):
    body = hook_request(full_prefetch())
    body["hook"] = "order-select"
    assert ehr("post", "/cds-services/prostate-eau", body).status_code == 400
    body = hook_request(full_prefetch())
    body["context"] = {}
    assert ehr("post", "/cds-services/prostate-eau", body).status_code == 400
    assert ehr("post", "/cds-services/no-such", hook_request(full_prefetch())).status_code == 404


def test_feedback_records_accepted_and_overridden_cards(ehr):
    card = ehr("post", "/cds-services/prostate-eau", hook_request(full_prefetch())).json()["cards"][
        0
    ]
    body = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "accepted",
                "outcomeTimestamp": "2026-11-27T10:00:00Z",
            },
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {
                    "reason": {
                        "system": "http://example.org/reasons",
                        "code": "patient-preference",
                        "display": "Patient preference",
                    },
                    "userComment": "Prefers surveillance",
                },
                "outcomeTimestamp": "2026-11-27T10:05:00Z",
            },
        ]
    }
    response = ehr("post", "/cds-services/prostate-eau/feedback", body)
    assert response.status_code == 200, response.content
    rows = {f.outcome: f for f in HookFeedback.objects.all()}
    assert set(rows) == {"accepted", "overridden"}
    assert str(rows["overridden"].card_uuid) == card["uuid"]
    assert rows["overridden"].override_text == "Patient preference — Prefers surveillance"
    assert AuditEvent.objects.filter(action="cds.hook_feedback_recorded").count() == 2
    client = Client()
    client.force_login(Evaluation.objects.get().user)
    page = client.get(f"/cds/evaluations/{card['uuid']}/").content.decode()
    assert "Feedback from the record system" in page
    assert "Overridden</strong>: Patient preference — Prefers surveillance" in page


def test_feedback_on_an_unknown_or_foreign_card_is_404(ehr, outsider):
    unknown = {
        "feedback": [
            {
                "card": str(uuid.uuid4()),
                "outcome": "accepted",
                "outcomeTimestamp": "2026-11-27T10:00:00Z",
            }
        ]
    }
    assert ehr("post", "/cds-services/prostate-eau/feedback", unknown).status_code == 404
    card = ehr("post", "/cds-services/prostate-eau", hook_request(full_prefetch())).json()["cards"][
        0
    ]
    _, raw = ApiToken.issue(user=outsider, name="other EHR")
    foreign = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "accepted",
                "outcomeTimestamp": "2026-11-27T10:00:00Z",
            }
        ]
    }
    assert ehr("post", "/cds-services/prostate-eau/feedback", foreign, token=raw).status_code == 404
    bad = {
        "feedback": [
            {"card": card["uuid"], "outcome": "maybe", "outcomeTimestamp": "2026-11-27T10:00:00Z"}
        ]
    }
    assert ehr("post", "/cds-services/prostate-eau/feedback", bad).status_code == 400
    assert not HookFeedback.objects.exists()


def test_missing_prefetch_is_fetched_from_an_allowed_fhir_server(ehr, settings, monkeypatch):
    from cds import hooks

    settings.CDS_HOOKS_FHIR_SERVERS = ["https://ehr.example.org/fhir"]
    calls = []

    def fake_get(url, headers):
        calls.append((url, headers))
        return bundle(psa(6.5), isup(1))

    monkeypatch.setattr(hooks, "http_get_json", fake_get)
    prefetch = full_prefetch()
    del prefetch["observations"]
    body = hook_request(
        prefetch,
        fhirServer="https://ehr.example.org/fhir",
        fhirAuthorization={
            "access_token": "abc",
            "token_type": "Bearer",
            "scope": "patient/*.read",
        },
    )
    response = ehr("post", "/cds-services/prostate-eau", body)
    assert response.status_code == 200, response.content
    assert response.json()["cards"][0]["summary"].startswith("Intermediate risk (prostate-eau): ")
    assert Evaluation.objects.get().classification == "intermediate"
    url, headers = calls[0]
    assert url.startswith(f"https://ehr.example.org/fhir/Observation?patient={PATIENT_ID}&code=")
    assert headers["Authorization"] == "Bearer abc"


def test_a_fhir_server_outside_the_allow_list_is_not_queried(ehr, settings, monkeypatch):
    from cds import hooks

    settings.CDS_HOOKS_FHIR_SERVERS = []
    monkeypatch.setattr(hooks, "http_get_json", lambda *a: pytest.fail("must not fetch"))
    prefetch = full_prefetch()
    del prefetch["observations"]
    body = hook_request(prefetch, fhirServer="http://169.254.169.254/latest")
    response = ehr("post", "/cds-services/prostate-eau", body)
    assert response.status_code == 412
    assert "CDS_HOOKS_FHIR_SERVERS" in response.json()["error"]["message"]
