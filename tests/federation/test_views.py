"""HTML pages: create and follow an analysis, results with plots, downloads, node registry, gates."""

from __future__ import annotations

import pytest

from federation import services
from federation.models import Analysis, Node, NodeDataset, NodeStatus, RunStatus
from optima_node.policy import Policy
from tests.federation.factories import (
    LUNG,
    SimNode,
    grant_federated_analytics,
    make_dataset,
    make_node,
)


@pytest.fixture
def served(hospital_a, hospital_b, site_urls):
    sims, datasets = [], []
    for org, url in ((hospital_a, site_urls[0]), (hospital_b, site_urls[1])):
        dataset = make_dataset(org, f"Lung cohort {org.slug}")
        node, token = make_node(org, f"{org.slug}-omop")
        NodeDataset.objects.create(node=node, dataset=dataset)
        sim = SimNode(node, token, url, policy=Policy(min_cell_count=1))
        sim.heartbeat()
        sims.append(sim)
        datasets.append(dataset)
    yield datasets, sims
    for sim in sims:
        sim.close()


def create_via_form(client, datasets, **fields):
    data = {
        "title": "Lung survival",
        "analysis": "kaplan_meier:1",
        "datasets": [d.pk for d in datasets],
        "cancer": "lung",
        "include_descendants": "on",
        "km_stratify_by": "sex",
        "time_unit_days": 30,
        "max_time_units": 120,
        **fields,
    }
    return client.post("/federation/analyses/new/", data)


def test_a_researcher_runs_a_kaplan_meier_from_the_form_and_sees_the_plot(
    client_as, researcher, served, run_nodes
):
    datasets, sims = served
    for d in datasets:
        grant_federated_analytics(researcher, d)
    client = client_as(researcher)
    assert client.get("/federation/analyses/new/").status_code == 200
    response = create_via_form(client, datasets)
    assert response.status_code == 302, response.content.decode()[:3000]
    analysis = Analysis.objects.get()
    assert analysis.params["cohort"]["condition_concept_ids"] == [4115276]
    page = client.get(response["Location"])
    assert b'hx-trigger="every 3s"' in page.content
    partial = client.get(response["Location"], HTTP_HX_REQUEST="true")
    assert partial.content.lstrip().startswith(b'<div id="analysis-body"')
    run_nodes(sims)
    page = client.get(response["Location"]).content.decode()
    assert "every 3s" not in page
    assert "<svg" in page and "Kaplan–Meier" in page
    assert "Number at risk" in page
    csv = client.get(f"/federation/analyses/{analysis.pk}/result.csv")
    assert csv.status_code == 200
    assert csv.content.decode().splitlines()[0].startswith("stratum,time,n_at_risk")
    data = client.get(f"/federation/analyses/{analysis.pk}/result.json").json()
    assert data["result"]["strata"][0]["table"]
    pdf = client.get(f"/federation/analyses/{analysis.pk}/report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_the_form_offers_only_entitled_datasets(client_as, researcher, served):
    datasets, _ = served
    grant_federated_analytics(researcher, datasets[0])
    client = client_as(researcher)
    page = client.get("/federation/analyses/new/").content.decode()
    assert datasets[0].title in page and datasets[1].title not in page
    response = create_via_form(client, datasets)
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not Analysis.objects.exists()


def test_the_form_answers_400_with_field_messages(client_as, researcher, served):
    datasets, _ = served
    response = create_via_form(client_as(researcher), datasets, cancer="", condition_concept_ids="")
    assert response.status_code == 400
    assert "Choose a cancer or enter concept ids." in response.content.decode()


def test_a_regression_shows_coefficients_and_a_forest_plot(
    client_as, researcher, served, run_nodes
):
    datasets, sims = served
    for d in datasets:
        grant_federated_analytics(researcher, d)
    client = client_as(researcher)
    response = create_via_form(
        client,
        datasets,
        analysis="logistic_regression:1",
        outcome_days=365,
        covariates=["age_at_index", "sex_male"],
    )
    assert response.status_code == 302
    run_nodes(sims)
    page = client.get(response["Location"]).content.decode()
    assert "Forest plot of odds ratios" in page
    assert "age_at_index" in page
    assert "Continuous covariates are centred, the same at every node" in page
    assert "<code>age_at_index</code> − 65" in page and "for a woman" in page


def test_outsiders_get_404_on_analyses_and_nodes(client_as, researcher, outsider, served):
    datasets, sims = served
    for d in datasets:
        grant_federated_analytics(researcher, d)
    create_via_form(client_as(researcher), datasets)
    analysis = Analysis.objects.get()
    client = client_as(outsider)
    for url in (
        f"/federation/analyses/{analysis.pk}/",
        f"/federation/analyses/{analysis.pk}/result.json",
        f"/federation/nodes/{sims[0].node.pk}/",
        "/federation/nodes/",
        "/federation/review/",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/federation/analyses/{analysis.pk}/cancel/").status_code == 404


def test_node_registry_lists_liveness_and_keeps_queries_constant(
    client_as, platform_admin, served, hospital_a, django_assert_max_num_queries
):
    client = client_as(platform_admin)
    client.get("/federation/nodes/")
    for i in range(5):
        make_node(hospital_a, f"extra-{i}")
    with django_assert_max_num_queries(12):
        response = client.get("/federation/nodes/")
    page = response.content.decode()
    assert "Online" in page and "Never seen" in page
    assert "The agent has never reported" in page


def test_register_approve_rotate_and_revoke_a_node(
    client_as, site_admin_a, platform_admin, hospital_a
):
    client = client_as(site_admin_a)
    response = client.post(
        "/federation/nodes/register/", {"organisation": hospital_a.pk, "name": "new-node"}
    )
    assert response.status_code == 302
    node = Node.objects.get(name="new-node")
    assert node.status == NodeStatus.PENDING and not node.token_hash
    # Site admins cannot approve their own node.
    assert client.post(f"/federation/nodes/{node.pk}/approve/").status_code == 404
    admin = client_as(platform_admin)
    page = admin.post(f"/federation/nodes/{node.pk}/approve/").content.decode()
    node.refresh_from_db()
    assert node.status == NodeStatus.APPROVED
    token = page.split('id="node-token">')[1].split("<")[0]
    assert Node.authenticate(token) == node
    assert token not in admin.get(f"/federation/nodes/{node.pk}/").content.decode()  # shown once
    client = client_as(site_admin_a)
    page = client.post(f"/federation/nodes/{node.pk}/rotate/").content.decode()
    assert Node.authenticate(token) is None
    client.post(f"/federation/nodes/{node.pk}/revoke/")
    node.refresh_from_db()
    assert node.status == NodeStatus.REVOKED
    # A revoked node has no token to rotate, nor can it be approved again: the refusal page says
    # why (400), and no token is issued.
    refused = client.post(f"/federation/nodes/{node.pk}/rotate/")
    assert refused.status_code == 400
    assert "Only an approved node has a token to rotate." in refused.content.decode()
    again = client_as(platform_admin).post(f"/federation/nodes/{node.pk}/approve/")
    assert again.status_code == 400 and 'id="node-token"' not in again.content.decode()
    node.refresh_from_db()
    assert node.status == NodeStatus.REVOKED


def test_site_admin_reviews_exactly_the_numbers_and_releases(
    client_as, researcher, site_admin_a, served, run_nodes
):
    _datasets, sims = served
    sims[0].agent.policy = Policy(min_cell_count=1, review_before_release=True)
    analysis = services.analysis_start(
        researcher=researcher,
        analysis_type="cohort_count",
        version=1,
        params={"cohort": {"condition_concept_ids": LUNG}, "stratify_by": []},
        nodes=[s.node for s in sims],
    )
    run_nodes(sims)
    run = analysis.runs.get(node=sims[0].node)
    assert run.status == RunStatus.AWAITING_RELEASE
    client = client_as(site_admin_a)
    page = client.get("/federation/review/").content.decode()
    assert "The exact numbers that would leave" in page
    assert f"&quot;count&quot;: {run.result['rows'][0]['count']}" in page
    response = client.post(f"/federation/runs/{run.pk}/release/")
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and run.released_by == site_admin_a


def test_dashboard_sections(client_as, site_admin_a, researcher, served):
    page = client_as(site_admin_a).get("/dashboard/").content.decode()
    assert "Runs awaiting your decision" in page


def test_pages_keep_query_counts_constant(
    client_as, researcher, served, run_nodes, django_assert_max_num_queries
):
    datasets, sims = served
    for d in datasets:
        grant_federated_analytics(researcher, d)
    client = client_as(researcher)
    for _ in range(4):
        create_via_form(client, datasets, analysis="cohort_count:1", stratify_by=["sex"])
    run_nodes(sims)
    analysis = Analysis.objects.first()
    with django_assert_max_num_queries(12):
        assert client.get("/federation/").status_code == 200
    with django_assert_max_num_queries(12):
        assert client.get(f"/federation/analyses/{analysis.pk}/").status_code == 200


def test_review_queue_queries_stay_constant(
    client_as, researcher, site_admin_a, served, run_nodes, django_assert_max_num_queries
):
    _datasets, sims = served
    sims[0].agent.policy = Policy(min_cell_count=1, review_before_release=True)
    for _ in range(3):
        services.analysis_start(
            researcher=researcher,
            analysis_type="cohort_count",
            version=1,
            params={"cohort": {"condition_concept_ids": LUNG}, "stratify_by": []},
            nodes=[s.node for s in sims],
        )
    run_nodes(sims)
    client = client_as(site_admin_a)
    with django_assert_max_num_queries(10):
        page = client.get("/federation/review/").content.decode()
    assert page.count("Release results") == 3
