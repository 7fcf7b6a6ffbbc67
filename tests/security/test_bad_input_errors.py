"""Probe finding: server errors on bad input.

Each attack of the probe, replayed: deeply nested JSON on every JSON endpoint, a number too large
for a float, a NUL byte in the URL, NUL and over-long values in ``import_dcat``, and a JSON-LD
``@context`` that would make the importer fetch a URL. Each answers a clear 400 (the API's error
shape) or a one-line command error; none is a 500 or a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils.text import slugify

from accounts.models import ApiToken, Membership, MembershipRole, Organisation, Role
from accounts.parsers import MAX_DEPTH
from catalogue.models import Dataset
from cds import services as cds_services
from cds.models import Evaluation
from federation.models import Analysis, NodeHeartbeat
from tests.factories import UserFactory, make_member
from tests.federation.factories import make_node
from tests.security.listener import serving

pytestmark = pytest.mark.django_db

DEEP = 100_000  # far past Python's recursion limit
TOO_DEEP = "JSON nested too deeply."


def _nested_list(depth: int) -> str:
    return "[" * depth + "]" * depth


def _nested_dict(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.fixture(autouse=True)
def _pathways(db):
    cds_services.pathway_sync()


@pytest.fixture
def clinician(hospital_a):
    return make_member(hospital_a, Role.CLINICIAN, username="clinician_a")


@pytest.fixture
def token_client(clinician):
    """An API client with a clinician's personal token (how the EHR and scripts call)."""
    _, raw = ApiToken.issue(user=clinician, name="probe")
    client = Client()
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {raw}"
    return client


@pytest.fixture
def node_client(hospital_a):
    _node, token = make_node(hospital_a, "probe-node")
    client = Client()
    client.defaults["HTTP_AUTHORIZATION"] = f"Node {token}"
    return client


def _assert_400(response, message: str | None = None) -> dict:
    assert response.status_code == 400, response.content[:500]
    body = response.json()
    assert body["error"]["status"] == 400
    if message is not None:
        assert message in body["error"]["message"]
    return body


# --- deeply nested JSON ------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [_nested_list(DEEP), _nested_dict(DEEP)], ids=["list", "dict"])
@pytest.mark.parametrize(
    "path",
    [
        "/api/analyses/",
        "/api/cds/evaluate/",
        "/api/feedback/items/",
        "/cds-services/prostate-eau",
        "/cds-services/prostate-eau/feedback",
    ],
)
def test_deeply_nested_json_answers_400_on_the_user_apis(token_client, path, body):
    response = token_client.post(path, body, content_type="application/json")
    _assert_400(response, TOO_DEEP)
    assert not Analysis.objects.exists() and not Evaluation.objects.exists()


@pytest.mark.parametrize("body", [_nested_list(DEEP), _nested_dict(DEEP)], ids=["list", "dict"])
def test_deeply_nested_json_answers_400_on_the_node_heartbeat(node_client, body):
    response = node_client.post("/api/node/heartbeat/", body, content_type="application/json")
    _assert_400(response, TOO_DEEP)
    assert not NodeHeartbeat.objects.exists()


def test_nesting_below_the_recursion_limit_but_past_the_cap_is_refused_too(token_client):
    """900 levels parse, then broke whatever walked the value next (serializers, audit)."""
    inputs = '{"psa": ' + _nested_list(900) + "}"
    body = '{"pathway": "prostate-eau", "inputs": ' + inputs + "}"
    response = token_client.post("/api/cds/evaluate/", body, content_type="application/json")
    _assert_400(response, TOO_DEEP)


def test_ordinary_nesting_still_parses(token_client):
    inputs = {"psa": {"value": 12, "unit": "ng/mL"}, "isup_grade": 1}
    body = {
        "pathway": "prostate-eau",
        "inputs": inputs,
        "pad": json.loads(_nested_list(MAX_DEPTH - 2)),
    }
    response = token_client.post("/api/cds/evaluate/", body, content_type="application/json")
    assert response.status_code == 201, response.content[:500]


def test_deeply_nested_json_in_the_analysis_form_is_a_field_error(client, researcher):
    client.force_login(researcher)
    # Deeper than the parser allows, yet short enough for the field's length limit.
    nested = _nested_list(MAX_DEPTH + 10)
    data = {"analysis": "cohort_count:1", "min_nodes": 1, "params_json": nested}
    response = client.post("/federation/analyses/new/", data)
    assert response.status_code == 400
    assert TOO_DEEP in response.content.decode()
    assert not Analysis.objects.exists()


# --- numbers too large for a float ------------------------------------------------------------------
@pytest.mark.parametrize(
    "ki67",
    [str(10**400), '{"value": ' + str(10**400) + ', "unit": "%"}', "1e400", '"1e400"'],
    ids=["int", "quantity", "float-literal", "string"],
)
def test_a_number_too_large_for_a_float_is_a_field_error(token_client, ki67):
    body = '{"pathway": "breast-st-gallen", "inputs": {"er_pct": 80, "ki67_pct": ' + ki67 + "}}"
    response = token_client.post("/api/cds/evaluate/", body, content_type="application/json")
    fields = _assert_400(response)["error"]["fields"]
    # The engine names the input; a non-finite JSON literal is already refused by the serializer.
    assert "inputs.ki67_pct" in fields or fields["inputs"] == [
        "ki67_pct: Value must be valid JSON."
    ]
    assert not Evaluation.objects.exists()


def test_a_number_too_large_in_the_evaluation_form_is_a_field_error(client, clinician):
    client.force_login(clinician)
    response = client.post(
        "/cds/pathways/breast-st-gallen/evaluate/", {"er_pct": "80", "ki67_pct": str(10**400)}
    )
    assert response.status_code in (200, 400)
    assert "ki67" in response.content.decode().lower()
    assert not Evaluation.objects.exists()


def test_a_number_too_large_from_a_cds_hooks_prefetch_is_dropped_not_a_500(token_client):
    observation = {
        "resourceType": "Observation",
        "id": "obs-psa",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2857-1"}]},
        "subject": {"reference": "Patient/p1"},
        "valueQuantity": {"value": 1, "unit": "ng/mL"},
    }
    text = json.dumps(observation).replace('"value": 1,', '"value": ' + str(10**400) + ",")
    body = (
        '{"hook": "patient-view", "hookInstance": "' + str(uuid.uuid4()) + '", '
        '"context": {"userId": "Practitioner/1", "patientId": "p1"}, "prefetch": {'
        '"patient": {"resourceType": "Patient", "id": "p1"}, '
        '"conditions": {"resourceType": "Bundle", "type": "searchset", "entry": []}, '
        '"observations": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": '
        + text
        + "}]}}}"
    )
    response = token_client.post(
        "/cds-services/prostate-eau", body, content_type="application/json"
    )
    assert response.status_code in (200, 400), response.content[:500]


# --- a NUL byte in the URL -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "/catalogue/datasets/%00/",
        "/catalogue/datasets/a%00b/versions/",
        "/catalogue/dcat.%00",
        "/feedback/cds/%00/",
        "/accounts/invitations/%00/",
        "/static/css/portal.css%00",
        "/api/feedback/cds-disagreements/%00/",
        "/catalogue/?q=%00",
    ],
)
def test_a_nul_byte_in_the_url_answers_400(client, steward_a, path):
    client.force_login(steward_a)
    response = client.get(path)
    assert response.status_code == 400
    assert b"NUL" in response.content


def test_a_nul_byte_in_an_api_url_answers_the_api_error_shape(token_client):
    response = token_client.get("/api/catalogue/datasets/%00/")
    _assert_400(response, "NUL")


# --- import_dcat -----------------------------------------------------------------------------------------
TTL = """@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
@prefix health: <http://healthdataportal.eu/ns/health#> .
<https://example.org/ds/1> a dcat:Dataset ;
    dct:identifier "{identifier}" ;
    dct:title "{title}"@en ;
    dct:description "A cohort."@en ;
    health:numberOfUniqueIndividuals {individuals} ;
    dct:publisher <https://example.org/org/1> .
<https://example.org/org/1> a foaf:Agent ; foaf:name "{publisher}" .
"""


def _ttl(tmp_path: Path, **values) -> Path:
    fields = {
        "identifier": "probe-1",
        "title": "Probe",
        "individuals": 10,
        "publisher": "Probe Hospital",
        **values,
    }
    path = tmp_path / "catalogue.ttl"
    text = TTL
    for key, value in fields.items():
        text = text.replace("{" + key + "}", str(value))
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def importer_name(db) -> str:
    """Imports act as a data steward of an organisation that already exists."""
    steward = UserFactory(username="probe.steward")
    for name in ("Probe Hospital", "Probe"):
        organisation = Organisation.objects.create(name=name, slug=slugify(name), country="BE")
        membership = Membership.objects.create(user=steward, organisation=organisation)
        MembershipRole.objects.create(membership=membership, name=Role.DATA_STEWARD)
    return steward.username


def _import(path: Path, username: str) -> None:
    call_command("import_dcat", str(path), "--as", username)


def _import_error(path: Path, username: str = "probe.steward") -> str:
    with pytest.raises(CommandError) as exc:
        _import(path, username)
    message = str(exc.value)
    assert "\n" not in message and "Nothing was imported" in message
    assert not Dataset.objects.exists()
    return message


def test_import_dcat_control_sample_imports(tmp_path, capsys, importer_name):
    """The same document without the hostile value imports, so the refusals below are specific."""
    _import(_ttl(tmp_path), importer_name)
    assert "1 created" in capsys.readouterr().out


@pytest.mark.parametrize(
    "field, value",
    [
        ("title", "Probe\\u0000title"),
        ("identifier", "probe\\u0000"),
        ("publisher", "Probe\\u0000Hospital"),
    ],
)
def test_import_dcat_refuses_a_nul_in_a_value(tmp_path, field, value):
    assert "control character" in _import_error(_ttl(tmp_path, **{field: value}))


@pytest.mark.parametrize(
    "field, value",
    [
        ("title", "T" * 301),
        ("identifier", "i" * 201),
        ("publisher", "P" * 201),
        ("individuals", 10**30),
        ("individuals", -5),
    ],
)
def test_import_dcat_refuses_a_value_its_column_cannot_hold(tmp_path, field, value):
    message = _import_error(_ttl(tmp_path, **{field: value}))
    assert "longer than" in message or "must be between" in message


def test_import_dcat_refuses_an_over_long_description(tmp_path):
    path = _ttl(tmp_path)
    path.write_text(path.read_text().replace('"A cohort."', '"' + "d" * 60_000 + '"'))
    assert "longer than" in _import_error(path)


@pytest.fixture
def listener():
    context = json.dumps({"@context": {"dct": "http://purl.org/dc/terms/"}}).encode()
    with serving(context, "application/ld+json") as server:
        yield server


def _jsonld(context) -> dict:
    return {
        "@context": context,
        "@id": "https://example.org/ds/1",
        "@type": "http://www.w3.org/ns/dcat#Dataset",
        "dct:title": "Probe",
    }


@pytest.mark.parametrize(
    "shape",
    ["string", "list", "import", "scoped"],
)
def test_import_dcat_never_fetches_a_remote_jsonld_context(tmp_path, listener, shape):
    url = f"{listener.url}/context.jsonld"
    document = {
        "string": _jsonld(url),
        "list": _jsonld([url, {"dcat": "http://www.w3.org/ns/dcat#"}]),
        "import": _jsonld({"@import": url}),
        "scoped": _jsonld({"dct": {"@id": "http://purl.org/dc/terms/", "@context": url}}),
    }[shape]
    path = tmp_path / "catalogue.jsonld"
    path.write_text(json.dumps(document), encoding="utf-8")
    assert "remote JSON-LD @context" in _import_error(path)
    assert listener.connections == 0


def test_import_dcat_refuses_deeply_nested_jsonld(tmp_path):
    path = tmp_path / "catalogue.jsonld"
    path.write_text(_nested_list(DEEP), encoding="utf-8")
    assert TOO_DEEP in _import_error(path)


def test_import_dcat_from_the_shell_prints_one_line_and_exits_non_zero(tmp_path, listener):
    url = f"{listener.url}/context.jsonld"
    path = tmp_path / "catalogue.jsonld"
    path.write_text(json.dumps(_jsonld(url)), encoding="utf-8")
    env = {**os.environ, "OPTIMA_VAR_DIR": str(tmp_path / "var")}
    result = subprocess.run(
        [sys.executable, "manage.py", "import_dcat", str(path), "--as", "probe.steward"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "remote JSON-LD @context" in result.stderr
    assert listener.connections == 0


def test_a_local_jsonld_document_with_an_inline_context_still_imports(
    tmp_path, capsys, importer_name
):
    document = {
        "@context": {
            "dcat": "http://www.w3.org/ns/dcat#",
            "dct": "http://purl.org/dc/terms/",
            "foaf": "http://xmlns.com/foaf/0.1/",
        },
        "@graph": [
            {
                "@id": "https://example.org/ds/1",
                "@type": "dcat:Dataset",
                "dct:identifier": "probe-ld",
                "dct:title": {"@value": "Probe", "@language": "en"},
                "dct:description": {"@value": "A cohort.", "@language": "en"},
                "dct:publisher": {"@id": "https://example.org/org/1"},
            },
            {"@id": "https://example.org/org/1", "@type": "foaf:Agent", "foaf:name": "Probe"},
        ],
    }
    path = tmp_path / "catalogue.jsonld"
    path.write_text(json.dumps(document), encoding="utf-8")
    _import(path, importer_name)
    assert "1 created" in capsys.readouterr().out
