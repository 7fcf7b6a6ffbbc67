"""/api/datasets/: search with facets, detail, steward writes, lifecycle actions."""

from __future__ import annotations

import pytest

from catalogue.models import Dataset, Status
from tests.catalogue.factories import make_draft, make_published

pytestmark = pytest.mark.django_db

URL = "/api/datasets/"


def payload(**overrides):
    data = {
        "publisher": "hospital-a",
        "title": "API lung registry",
        "description": "Registered through the API.",
        "keywords": ["lung"],
        "contact_email": "data@a.example",
        "indications": ["sclc"],
        "data_categories": ["clinical"],
        "access_rights": "NON_PUBLIC",
        "access_modes": ["federated_learning"],
        "legal_basis": "gdpr_9_2_j",
        "terms_of_use_text": "Aggregates only.",
        "distributions": [
            {"kind": "federated_omop", "title": "OMOP at node A", "node_ref": "node-a"}
        ],
    }
    data.update(overrides)
    return data


def test_the_list_searches_facets_and_sorts(api, steward_a, hospital_a, curator):
    lung_one = make_published(steward_a, curator, hospital_a, title="Lung one", codes=("nsclc",))
    make_published(
        steward_a,
        curator,
        hospital_a,
        title="Prostate two",
        codes=("prostate",),
        description="PSA.",
        keywords=["psa"],
    )
    make_draft(steward_a, hospital_a, title="Hidden draft")
    body = api.get(URL, {"indication": "lung"}).json()
    assert body["count"] == 1
    assert body["results"][0]["title"] == "Lung one"
    # The number POST /api/analyses/ takes: clients need no other call to find it (issue 19).
    assert body["results"][0]["id"] == lung_one.pk
    assert body["results"][0]["indications"] == ["nsclc"]
    lung = {f["value"]: f["count"] for f in body["facets"]["indication"]}
    assert lung["solid-tumours"] == 2 and lung["lung"] == 1
    body = api.get(URL, {"q": "psa", "sort": "title"}).json()
    assert [r["title"] for r in body["results"]] == ["Prostate two"]


def test_list_query_count_is_constant(
    api, steward_a, hospital_a, curator, django_assert_max_num_queries
):
    make_published(steward_a, curator, hospital_a)
    with django_assert_max_num_queries(16) as first:
        api.get(URL, {"mode": "federated_analytics"})
    for i in range(5):
        make_published(steward_a, curator, hospital_a, title=f"More {i}")
    with django_assert_max_num_queries(len(first.captured_queries)):
        api.get(URL, {"mode": "federated_analytics", "per_page": 50})


def test_a_steward_creates_updates_and_submits_and_a_curator_publishes(
    api_as, steward_a, hospital_a, curator
):
    steward = api_as(steward_a)
    response = steward.post(URL, payload(), format="json")
    assert response.status_code == 201, response.json()
    identifier = response.json()["identifier"]
    assert response.json()["status"] == "draft"
    response = steward.patch(
        f"{URL}{identifier}/", {"title": "API lung registry v1"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["working_copy"]["title"] == "API lung registry v1"
    response = steward.post(f"{URL}{identifier}/submit/")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "submitted"
    response = api_as(curator).post(f"{URL}{identifier}/publish/", {"notes": "v1"}, format="json")
    assert response.status_code == 200
    assert response.json()["published"]["version"] == 1
    assert Dataset.objects.get(identifier=identifier).status == Status.PUBLISHED


def test_bad_input_answers_400_with_field_messages(api_as, steward_a, hospital_a):
    response = api_as(steward_a).post(
        URL,
        payload(indications=["nope"], access_modes=["teleport"], contact_email="x"),
        format="json",
    )
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert {"indications", "access_modes", "contact_email"} <= set(fields)


def test_submitting_with_violations_answers_400_by_field(api_as, steward_a, hospital_a):
    steward = api_as(steward_a)
    identifier = steward.post(URL, payload(description="", contact_email=""), format="json").json()[
        "identifier"
    ]
    response = steward.post(f"{URL}{identifier}/submit/")
    assert response.status_code == 400
    assert "description" in response.json()["error"]["fields"]


def test_outsiders_cannot_see_or_touch_drafts(api, api_as, steward_a, steward_b, hospital_a):
    draft = make_draft(steward_a, hospital_a)
    url = f"{URL}{draft.identifier}/"
    assert api.get(url).status_code == 404
    assert api_as(steward_b).get(url).status_code == 404
    assert api_as(steward_b).patch(url, {"title": "x"}, format="json").status_code == 404
    assert api_as(steward_b).post(url + "submit/").status_code == 404
    response = api_as(steward_b).post(URL, payload(), format="json")
    assert response.status_code == 400 and "publisher" in response.json()["error"]["fields"]


def test_readers_get_the_published_version_only(api, steward_a, hospital_a, curator):
    dataset = make_published(steward_a, curator, hospital_a)
    body = api.get(f"{URL}{dataset.identifier}/").json()
    assert body["published"]["metadata"]["title"] == "Lung cancer cohort"
    assert body["working_copy"] is None and body["status"] is None


def test_non_curators_cannot_publish_and_restore_works(api_as, steward_a, hospital_a, curator):
    dataset = make_published(steward_a, curator, hospital_a)
    steward = api_as(steward_a)
    steward.patch(f"{URL}{dataset.identifier}/", {"title": "Changed"}, format="json")
    steward.post(f"{URL}{dataset.identifier}/submit/")
    assert steward.post(f"{URL}{dataset.identifier}/publish/").status_code == 404
    response = api_as(curator).post(
        f"{URL}{dataset.identifier}/request-changes/", {"comment": "Why?"}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "changes_requested"
    response = steward.post(f"{URL}{dataset.identifier}/versions/1/restore/")
    assert response.status_code == 200
    assert response.json()["working_copy"]["title"] == "Lung cancer cohort"
    versions = steward.get(f"{URL}{dataset.identifier}/versions/").json()
    assert [v["version"] for v in versions] == [1]


def test_terms_of_use_carry_a_minimum_cell_count_that_the_published_version_keeps(
    api_as, steward_a, hospital_a, curator, client
):
    steward = api_as(steward_a)
    for bad in (0, -3, 1001, "ten"):
        response = steward.post(URL, payload(terms_min_cell_count=bad), format="json")
        assert response.status_code == 400
        assert "terms_min_cell_count" in response.json()["error"]["fields"]
    response = steward.post(URL, payload(terms_min_cell_count=10), format="json")
    assert response.status_code == 201, response.json()
    identifier = response.json()["identifier"]
    assert steward.post(f"{URL}{identifier}/submit/").status_code == 200
    assert api_as(curator).post(f"{URL}{identifier}/publish/", {}, format="json").status_code == 200
    dataset = Dataset.objects.get(identifier=identifier)
    terms = dataset.current_terms_of_use
    assert terms.min_cell_count == 10 and dataset.published_min_cell_count == 10
    assert dataset.current_version.metadata["terms_min_cell_count"] == 10
    client.force_login(steward_a)
    page = client.get(f"/catalogue/datasets/{identifier}/").content.decode()
    assert "No cell below 10 individuals" in page
