"""Database profiles as runs: a steward requests one, each site's review applies, the pooled
profile matches counts computed independently on the nodes' databases, and only the publisher's
stewards attach it to the dataset."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
from django.utils import timezone

from catalogue.models import DatasetProfile
from federation import services
from federation.models import Analysis, AnalysisStatus, NodeDataset, RunStatus
from optima_node.policy import Policy
from tests.federation.factories import make_dataset


def _independent(urls: list[str]) -> dict:
    persons, conditions, ends = 0, 0, []
    for url in urls:
        con = sqlite3.connect(url[len("sqlite:///") :])
        persons += con.execute("SELECT COUNT(*) FROM person").fetchone()[0]
        conditions += con.execute("SELECT COUNT(*) FROM condition_occurrence").fetchone()[0]
        ends.append(con.execute("SELECT MAX(condition_start_date) FROM condition_occurrence"))
        ends[-1] = ends[-1].fetchone()[0][:10]
        con.close()
    return {"persons": persons, "conditions": conditions, "oldest_newest": min(ends)}


@pytest.fixture
def profiled(steward_a, sim_nodes):
    """A dataset of hospital A served by two nodes (A's and B's databases)."""
    dataset = make_dataset(steward_a.memberships.first().organisation)
    for sim in sim_nodes[:2]:
        NodeDataset.objects.create(node=sim.node, dataset=dataset)
    return dataset


def test_it_round_trips_through_review_and_attaches(
    client_as,
    steward_a,
    site_admin_a,
    outsider,
    steward_b,
    profiled,
    sim_nodes,
    site_urls,
    run_nodes,
    django_capture_on_commit_callbacks,
):
    sims = sim_nodes[:2]
    sims[0].agent.policy = Policy(min_cell_count=1, review_before_release=True)
    sims[1].agent.policy = Policy(min_cell_count=1)
    # Outsiders and another hospital's steward cannot request a profile of A's dataset.
    for user in (outsider, steward_b):
        assert (
            client_as(user).post(f"/federation/datasets/{profiled.pk}/profile/").status_code == 404
        )
    client = client_as(steward_a)
    assert "Request database profile" in client.get("/federation/").content.decode()
    assert client.post(f"/federation/datasets/{profiled.pk}/profile/").status_code == 302
    analysis = Analysis.objects.get(type="database_profile")
    run_nodes(sims)
    run = analysis.runs.get(node=sims[0].node)
    assert run.status == RunStatus.AWAITING_RELEASE  # the site admin sees it first
    review = client_as(site_admin_a).get("/federation/review/").content.decode()
    assert f"Run {run.pk}: database_profile v1" in review
    with django_capture_on_commit_callbacks(execute=True):
        released = client_as(site_admin_a).post(f"/federation/runs/{run.pk}/release/")
    assert released.status_code == 302
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED, analysis.reason
    expected = _independent(site_urls[:2])
    assert analysis.result["person_count"] == {"count": expected["persons"], "lower_bound": False}
    tables = {t["table"]: t for t in analysis.result["tables"]}
    assert tables["condition_occurrence"]["records"] == expected["conditions"]
    assert tables["condition_occurrence"]["newest_date"] == expected["oldest_newest"]
    assert analysis.result["cdm_versions"] == ["5.4"]

    page = client_as(steward_a).get(f"/federation/analyses/{analysis.pk}/").content.decode()
    assert "Attach profile" in page
    # The other hospital's steward cannot attach it: the analysis is not theirs to see.
    attach = f"/federation/analyses/{analysis.pk}/attach-profile/"
    assert client_as(steward_b).post(attach, {"dataset": profiled.pk}).status_code == 404
    assert client_as(outsider).post(attach, {"dataset": profiled.pk}).status_code == 404
    assert not DatasetProfile.objects.exists()
    response = client_as(steward_a).post(attach, {"dataset": profiled.pk})
    assert response.status_code == 302
    assert response["Location"] == f"/catalogue/datasets/{profiled.identifier}/"
    attached = DatasetProfile.objects.get(dataset=profiled)
    assert attached.data["person_count"]["count"] == expected["persons"]
    assert attached.data["nodes"] == [s.node.name for s in sims]
    assert attached.attached_by == steward_a and attached.source == f"Analysis #{analysis.pk}"
    assert str(attached.data_updated_on) == "2025-01-01"  # the synthetic CDM source release


def test_a_steward_of_another_publisher_cannot_attach_even_a_profile_they_requested(
    steward_a, steward_b, profiled, sim_nodes, run_nodes
):
    from django.core.exceptions import PermissionDenied

    analysis = services.dataset_profile_request(steward=steward_a, dataset=profiled)
    run_nodes(sim_nodes[:2])
    analysis.refresh_from_db()
    with pytest.raises(PermissionDenied):
        services.dataset_profile_attach_from_analysis(
            steward=steward_b, analysis=analysis, dataset=profiled
        )
    with pytest.raises(PermissionDenied):
        services.dataset_profile_request(steward=steward_b, dataset=profiled)


def test_a_partial_profile_is_not_attached(steward_a, profiled, sim_nodes, run_nodes):
    from django.core.exceptions import ValidationError

    sim_nodes[1].agent.policy = Policy(allowed_analysis_types=["cohort_count"])
    analysis = services.dataset_profile_request(steward=steward_a, dataset=profiled)
    analysis.min_nodes = 1
    analysis.save(update_fields=["min_nodes"])
    run_nodes(sim_nodes[:2])
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED and analysis.partial
    with pytest.raises(ValidationError):
        services.dataset_profile_attach_from_analysis(
            steward=steward_a, analysis=analysis, dataset=profiled
        )


def test_the_weekly_job_requests_and_attaches_a_new_profile(
    steward_a, profiled, sim_nodes, run_nodes
):
    first = services.dataset_profile_request(steward=steward_a, dataset=profiled)
    run_nodes(sim_nodes[:2])
    first.refresh_from_db()
    services.dataset_profile_attach_from_analysis(
        steward=steward_a, analysis=first, dataset=profiled
    )
    assert services.profiles_request_scheduled() == 0  # a fresh profile: nothing to do
    DatasetProfile.objects.update(computed_at=timezone.now() - timedelta(days=8))
    assert services.profiles_request_scheduled() == 1
    assert services.profiles_request_scheduled() == 0  # one is running already
    run_nodes(sim_nodes[:2])
    scheduled = Analysis.objects.filter(type="database_profile").exclude(pk=first.pk).get()
    assert scheduled.status == AnalysisStatus.COMPLETED
    assert scheduled.reason == "The profile was attached to the dataset."
    assert DatasetProfile.objects.get().source == f"Analysis #{scheduled.pk}"


def test_the_portal_refuses_a_profile_with_a_small_count(sim_nodes, steward_a, profiled):
    from federation import release_check

    analysis = services.dataset_profile_request(steward=steward_a, dataset=profiled)
    sim = sim_nodes[0]
    sim.agent.policy = Policy(min_cell_count=5)
    assert sim.heartbeat().status_code == 200
    assignment = sim.claim().json()
    assert assignment["run_id"] in set(analysis.runs.values_list("pk", flat=True))
    result = sim.execute(assignment)
    leaked = result.result
    leaked["cancers"][0] = {"strata": {"cancer": "lung"}, "count": 2, "suppressed": False}
    assert release_check.small_cells("database_profile", 1, leaked, 5) == ["cancers[0]"]
    posted = sim.post(result.model_copy(update={"result": leaked}))
    assert posted.status_code == 422  # the portal refuses it and the run fails
    run = analysis.runs.get(node=sim.node)
    assert run.status == RunStatus.FAILED and run.result is None
    assert "below the site's minimum cell count" in run.reason


def test_an_entitled_researcher_runs_a_profile_from_the_form_but_cannot_attach_it(
    client_as, researcher, profiled, sim_nodes, run_nodes
):
    from tests.federation.factories import grant_federated_analytics

    grant_federated_analytics(researcher, profiled)
    client = client_as(researcher)
    response = client.post(
        "/federation/analyses/new/",
        {"analysis": "database_profile:1", "datasets": [profiled.pk], "cancer": ""},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    analysis = Analysis.objects.get(type="database_profile")
    assert [c["code"] for c in analysis.params["cancers"]][:2] == ["solid-tumours", "lung"]
    run_nodes(sim_nodes[:2])
    page = client.get(f"/federation/analyses/{analysis.pk}/").content.decode()
    assert "Persons per cancer" in page and "Attach profile" not in page
    attach = f"/federation/analyses/{analysis.pk}/attach-profile/"
    assert client.post(attach, {"dataset": profiled.pk}).status_code == 404
    assert not DatasetProfile.objects.exists()


def test_the_cancer_list_matches_the_catalogues_indication_codes(db):
    from catalogue.models import CancerIndication
    from optima_node.schemas import PROFILE_CANCERS

    assert {code for code, _ in PROFILE_CANCERS} == set(
        CancerIndication.objects.values_list("code", flat=True)
    )
