"""The analysis form's "Cohort from ATLAS (JSON)": pasted, uploaded, or refused with a message."""

from __future__ import annotations

import json

from django.core.files.uploadedfile import SimpleUploadedFile

from federation.models import Analysis
from tests.federation.factories import grant_federated_analytics
from tests.federation.test_circe_end_to_end import DEFINITION, served  # noqa: F401
from tests.federation.test_views import create_via_form


def _entitled(client_as, researcher, served):  # noqa: F811
    datasets, _ = served
    for d in datasets:
        grant_federated_analytics(researcher, d)
    return client_as(researcher), datasets


def test_it_takes_a_pasted_definition_instead_of_the_cohort_fields(
    client_as,
    researcher,
    served,  # noqa: F811
):
    client, datasets = _entitled(client_as, researcher, served)
    page = client.get("/federation/analyses/new/").content.decode()
    assert "Cohort from ATLAS (JSON)" in page and 'enctype="multipart/form-data"' in page
    response = create_via_form(client, datasets, circe_json=json.dumps(DEFINITION))
    assert response.status_code == 302, response.content.decode()[:2000]
    params = Analysis.objects.get().params
    assert set(params["cohort"]) == {"circe"}
    assert params["cohort"]["circe"]["ConceptSets"][0]["name"] == "Lung cancer"
    assert params["time_unit_days"] == 30


def test_it_takes_an_uploaded_atlas_export_with_its_expression(
    client_as,
    researcher,
    served,  # noqa: F811
):
    client, datasets = _entitled(client_as, researcher, served)
    # WebAPI's cohort definition export: the expression travels as a JSON string.
    export = {"name": "Lung cancer", "expression": json.dumps(DEFINITION)}
    upload = SimpleUploadedFile("lung.json", json.dumps(export).encode(), "application/json")
    response = create_via_form(client, datasets, circe_file=upload)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Analysis.objects.get().params["cohort"]["circe"]["PrimaryCriteria"][
        "ObservationWindow"
    ] == {
        "PriorDays": 365,
        "PostDays": 0,
    }


def test_it_refuses_bad_json_and_unsupported_constructs_with_messages(
    client_as,
    researcher,
    served,  # noqa: F811
):
    client, datasets = _entitled(client_as, researcher, served)
    response = create_via_form(client, datasets, circe_json="{not json")
    assert response.status_code == 400
    assert "This is not valid JSON." in response.content.decode()
    unsupported = {**DEFINITION, "CensorWindow": {"StartDate": "2010-01-01"}}
    response = create_via_form(client, datasets, circe_json=json.dumps(unsupported))
    assert response.status_code == 400
    assert "cohort.circe.CensorWindow" in response.content.decode()
    assert not Analysis.objects.exists()
