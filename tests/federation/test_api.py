"""The researchers' and site admins' API: start, follow and cancel analyses; nodes."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from accounts.models import AuditEvent
from federation.models import Analysis, Node, NodeDataset, NodeStatus
from tests.federation.factories import (
    LUNG,
    SimNode,
    grant_federated_analytics,
    make_dataset,
    make_node,
)

PARAMS = {"cohort": {"condition_concept_ids": LUNG}, "stratify_by": ["sex"]}


@pytest.fixture
def served(hospital_a, hospital_b, site_urls):
    """Two datasets, each served by its hospital's node (reported and ready)."""
    sims = []
    datasets = []
    for org, url in ((hospital_a, site_urls[0]), (hospital_b, site_urls[1])):
        dataset = make_dataset(org, f"Lung cohort {org.slug}")
        node, token = make_node(org, f"{org.slug}-omop")
        NodeDataset.objects.create(node=node, dataset=dataset)
        sim = SimNode(node, token, url)
        sim.heartbeat()
        sims.append(sim)
        datasets.append(dataset)
    yield datasets, sims
    for sim in sims:
        sim.close()


def body(datasets, **extra):
    return {
        "type": "cohort_count",
        "version": 1,
        "datasets": [d.pk for d in datasets],
        "params": PARAMS,
        **extra,
    }


def test_it_starts_an_analysis_and_shows_the_documented_shape(
    api_as, researcher, served, django_capture_on_commit_callbacks
):
    datasets, sims = served
    for d in datasets:
        grant_federated_analytics(researcher, d)
    client = api_as(researcher)
    response = client.post("/api/analyses/", body(datasets, deadline_hours=2), format="json")
    assert response.status_code == 201, response.content
    analysis_id = response.json()["id"]
    assert Analysis.objects.get(pk=analysis_id).run_deadline_hours == 2
    detail = client.get(f"/api/analyses/{analysis_id}/").json()
    assert {"id", "type", "version", "status", "runs", "result"} <= set(detail)
    assert detail["status"] == "running"
    assert {r["status"] for r in detail["runs"]} == {"dispatched"}
    assert set(detail["runs"][0]) >= {"node", "round", "status", "reason"}
    for sim in sims:
        with django_capture_on_commit_callbacks(execute=True):
            sim.cycle()
    detail = client.get(f"/api/analyses/{analysis_id}/").json()
    assert detail["status"] == "completed"
    assert set(detail["result"]) >= {"total", "rows"}
    assert set(detail["result"]["rows"][0]) >= {"sex", "count", "lower_bound"}
    analysis = Analysis.objects.get(pk=analysis_id)
    assert set(analysis.datasets.all()) == set(datasets)


def test_it_answers_403_naming_the_missing_entitlements(api_as, researcher, served):
    datasets, _ = served
    grant_federated_analytics(researcher, datasets[0])
    response = api_as(researcher).post("/api/analyses/", body(datasets), format="json")
    assert response.status_code == 403
    message = response.json()["error"]["message"]
    assert datasets[1].title in message and datasets[0].title not in message
    assert not Analysis.objects.exists()


def test_bad_parameters_answer_400_with_field_messages(api_as, researcher, served):
    datasets, _ = served
    for d in datasets:
        grant_federated_analytics(researcher, d)
    client = api_as(researcher)
    bad = body(datasets, params={"cohort": {"condition_concept_ids": []}, "stratify_by": ["x"]})
    response = client.post("/api/analyses/", bad, format="json")
    assert response.status_code == 400
    messages = response.json()["error"]["fields"]["params"]
    assert any("condition_concept_ids" in m for m in messages)
    assert any("stratify_by" in m for m in messages)
    response = client.post("/api/analyses/", body(datasets, min_nodes=3), format="json")
    assert response.status_code == 400
    assert "min_nodes" in response.json()["error"]["fields"]
    response = client.post("/api/analyses/", {**body(datasets), "datasets": [99999]}, format="json")
    assert response.status_code == 400


def test_a_dataset_without_a_node_is_a_400(api_as, researcher, hospital_a):
    dataset = make_dataset(hospital_a)
    grant_federated_analytics(researcher, dataset)
    response = api_as(researcher).post("/api/analyses/", body([dataset]), format="json")
    assert response.status_code == 400
    assert "not served by any approved node" in str(response.json())


def test_outsiders_get_404_and_lists_are_private(
    api_as, researcher, outsider, served, django_assert_max_num_queries
):
    datasets, _ = served
    for d in datasets:
        grant_federated_analytics(researcher, d)
    client = api_as(researcher)
    for _ in range(3):
        client.post("/api/analyses/", body(datasets), format="json")
    analysis = Analysis.objects.first()
    assert api_as(outsider).get(f"/api/analyses/{analysis.pk}/").status_code == 404
    assert api_as(outsider).post(f"/api/analyses/{analysis.pk}/cancel/").status_code == 404
    assert api_as(outsider).get("/api/analyses/").json()["count"] == 0
    with django_assert_max_num_queries(6):
        listing = client.get("/api/analyses/")
    assert listing.json()["count"] == 3


def test_the_researcher_cancels(api_as, researcher, served):
    datasets, _ = served
    for d in datasets:
        grant_federated_analytics(researcher, d)
    client = api_as(researcher)
    analysis_id = client.post("/api/analyses/", body(datasets), format="json").json()["id"]
    response = client.post(f"/api/analyses/{analysis_id}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert {r["status"] for r in response.json()["runs"]} == {"cancelled"}
    assert client.post(f"/api/analyses/{analysis_id}/cancel/").status_code == 400


def test_site_admins_see_their_nodes_only(api_as, site_admin_a, outsider, served):
    _, sims = served
    response = api_as(site_admin_a).get("/api/nodes/")
    names = [n["name"] for n in response.json()["results"]]
    assert names == [sims[0].node.name]
    assert response.json()["results"][0]["liveness"] == "online"
    assert api_as(site_admin_a).get(f"/api/nodes/{sims[1].node.pk}/").status_code == 404
    assert api_as(outsider).get("/api/nodes/").json()["count"] == 0


def test_the_analysis_catalogue_lists_every_type_with_its_schema(api):
    types = api.get("/api/analysis-types/").json()
    assert {(t["type"], t["version"]) for t in types} == {
        ("cohort_count", 1),
        ("characterisation", 1),
        ("kaplan_meier", 1),
        ("logistic_regression", 1),
        ("database_profile", 1),
    }
    assert all("properties" in t["params_schema"] for t in types)


def test_node_enrol_creates_an_approved_node_and_prints_its_token_last(hospital_a, capsys):
    dataset = make_dataset(hospital_a)
    call_command(
        "node_enrol", "--org", hospital_a.slug, "--name", "cli", "--datasets", str(dataset.pk)
    )
    token = capsys.readouterr().out.strip().splitlines()[-1]
    node = Node.authenticate(token)
    assert node is not None and node.status == NodeStatus.APPROVED
    assert list(node.served_datasets.values_list("dataset_id", flat=True)) == [dataset.pk]
    event = AuditEvent.objects.get(action="node.enrolled")
    assert event.actor_repr == "manage.py node_enrol"
    assert token not in str(event.payload)
