"""Probe finding: another hospital's draft leaked its title through the analysis API (403 naming
the draft) and the analysis form listed datasets the researcher could not use.

Every dataset lookup outside the catalogue now goes through the catalogue's selectors: an unknown
id and an invisible one (another publisher's draft) answer the same 400, naming nothing; the form
lists only published datasets the researcher is entitled to that a node serves.
"""

from __future__ import annotations

import re

import pytest

from catalogue.models import Dataset
from federation.models import Analysis, FlJob, NodeDataset
from tests.federation.factories import LUNG, grant_federated_analytics, make_dataset, make_node
from tests.federation.fl_factories import FL_PARAMS

pytestmark = pytest.mark.django_db

DRAFT_TITLE = "Unannounced pancreatic trial cohort"
UNKNOWN_ID = 987654321


@pytest.fixture
def world(hospital_a, hospital_b, researcher):
    """A's published dataset the researcher is entitled to, B's draft and B's published one
    (not entitled), all served by an approved node."""
    entitled = make_dataset(hospital_a, "Entitled lung cohort")
    draft = make_dataset(hospital_b, DRAFT_TITLE, published=False)
    unentitled = make_dataset(hospital_b, "Published but not granted")
    for org, datasets in ((hospital_a, [entitled]), (hospital_b, [draft, unentitled])):
        node, _ = make_node(org, f"{org.slug}-omop")
        for dataset in datasets:
            NodeDataset.objects.create(node=node, dataset=dataset)
    grant_federated_analytics(researcher, entitled)
    grant_federated_analytics(researcher, draft)  # even an entitlement row does not reveal it
    return {"entitled": entitled, "draft": draft, "unentitled": unentitled}


def start(client, dataset_id: int):
    return client.post(
        "/api/analyses/",
        {
            "type": "cohort_count",
            "version": 1,
            "datasets": [dataset_id],
            "params": {"cohort": {"condition_concept_ids": LUNG}},
        },
        format="json",
    )


def _without_ids(body: bytes) -> str:
    return re.sub(r"\d+", "N", body.decode())


def test_it_answers_a_draft_id_exactly_like_an_unknown_one(api_as, researcher, world):
    client = api_as(researcher)
    draft = start(client, world["draft"].pk)
    unknown = start(client, UNKNOWN_ID)
    assert draft.status_code == unknown.status_code == 400
    assert "datasets" in draft.json()["error"]["fields"]
    assert DRAFT_TITLE not in draft.content.decode()
    assert _without_ids(draft.content) == _without_ids(unknown.content)
    assert not Analysis.objects.exists()


def test_a_visible_dataset_without_entitlement_is_refused_naming_its_published_title(
    api_as, researcher, world
):
    dataset = world["unentitled"]
    # An unreviewed edit of the working copy is not what the researcher may read.
    Dataset.objects.filter(pk=dataset.pk).update(title="Unreviewed working-copy title")
    response = start(api_as(researcher), dataset.pk)
    assert response.status_code == 403
    text = response.content.decode()
    assert "Published but not granted" in text and "Unreviewed" not in text


def test_the_analysis_form_lists_only_entitled_published_served_datasets(
    client_as, researcher, world
):
    page = client_as(researcher).get("/federation/analyses/new/").content.decode()
    assert "Entitled lung cohort" in page
    assert DRAFT_TITLE not in page
    assert "Published but not granted" not in page


def test_the_form_refuses_a_posted_draft_id(client_as, researcher, world):
    response = client_as(researcher).post(
        "/federation/analyses/new/",
        {
            "analysis": "cohort_count:1",
            "datasets": [world["draft"].pk],
            "cancer": "lung",
        },
    )
    assert response.status_code == 400
    assert DRAFT_TITLE not in response.content.decode()
    assert not Analysis.objects.exists()


def test_the_federated_learning_api_answers_a_draft_id_like_an_unknown_one(
    api_as, researcher, world
):
    client = api_as(researcher)
    answers = [
        client.post(
            "/api/fl-jobs/", {"datasets": [pk], "params": FL_PARAMS, "title": "x"}, format="json"
        )
        for pk in (world["draft"].pk, UNKNOWN_ID)
    ]
    assert [a.status_code for a in answers] == [400, 400]
    assert DRAFT_TITLE not in answers[0].content.decode()
    assert _without_ids(answers[0].content) == _without_ids(answers[1].content)
    assert not FlJob.objects.exists()


def test_the_basket_answers_a_draft_id_like_an_unknown_one(api_as, researcher, world):
    client = api_as(researcher)
    draft = client.post("/api/basket/", {"dataset": world["draft"].pk}, format="json")
    unknown = client.post("/api/basket/", {"dataset": UNKNOWN_ID}, format="json")
    assert draft.status_code == unknown.status_code == 400
    assert _without_ids(draft.content) == _without_ids(unknown.content)
    assert DRAFT_TITLE not in draft.content.decode()


def test_an_access_request_cannot_name_a_draft(api_as, researcher, world):
    client = api_as(researcher)
    answers = [
        client.post(
            "/api/access-requests/",
            {"project_title": "Probe", "items": [{"dataset": pk}]},
            format="json",
        )
        for pk in (world["draft"].pk, UNKNOWN_ID)
    ]
    assert [a.status_code for a in answers] == [400, 400]
    assert _without_ids(answers[0].content) == _without_ids(answers[1].content)
