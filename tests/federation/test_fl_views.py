"""Federated-learning pages and API: start, follow, abort, release gate, registry, downloads;
outsiders get 404; query counts stay constant on list pages."""

from __future__ import annotations

import pytest

from accounts.models import Role
from federation.flare import services as fl
from federation.models import FlJob, FlJobStatus, TrainedModel
from tests.factories import OrganisationFactory, make_member
from tests.federation.fl_factories import (
    FL_PARAMS,
    FakeFlare,
    grant_federated_learning,
    make_fl_site,
)


@pytest.fixture
def flare(monkeypatch, tmp_path, settings):
    settings.FLARE_ADMIN_STARTUP_KIT = str(tmp_path / "kit")
    settings.FLARE_WORK_DIR = str(tmp_path / "work")
    return FakeFlare(monkeypatch, tmp_path)


@pytest.fixture
def setup(hospital_a, hospital_b, researcher, flare):
    sites = [make_fl_site(hospital_a, "a-omop"), make_fl_site(hospital_b, "b-omop")]
    datasets = [s.served_datasets.get().dataset for s in sites]
    for dataset in datasets:
        grant_federated_learning(researcher, dataset)
    return sites, datasets


def finished_job(researcher, datasets, flare, django_capture_on_commit_callbacks, title="FL"):
    with django_capture_on_commit_callbacks(execute=True):
        fl_job = fl.fl_create(
            researcher=researcher, datasets=datasets, params=FL_PARAMS, title=title
        )
    flare.status, flare.report = "FINISHED:COMPLETED", FakeFlare.report_for(["a-omop", "b-omop"])
    return fl.fl_poll(fl_job_id=fl_job.pk)


FORM = {
    "title": "Five-year death",
    "template": "logistic_regression",
    "condition_concept_ids": "443392",
    "outcome_days": "1825",
    "covariates": ["age_at_index", "sex_male", "index_year", "stage"],
    "rounds": "3",
    "local_epochs": "5",
    "learning_rate": "0.5",
    "min_sites": "2",
    "hidden_units": "8",
}


def test_a_researcher_starts_a_job_from_the_form_and_follows_it(
    client_as, researcher, setup, flare, django_capture_on_commit_callbacks
):
    _, datasets = setup
    client = client_as(researcher)
    page = client.get("/federation/learning/new/")
    assert page.status_code == 200 and "Model template" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/federation/learning/new/", {**FORM, "datasets": [d.pk for d in datasets]}
        )
    fl_job = FlJob.objects.get()
    assert response.status_code == 302 and response.url == f"/federation/learning/{fl_job.pk}/"
    flare.status, flare.report = "RUNNING", FakeFlare.report_for(["a-omop", "b-omop"], rounds=2)
    fl.fl_poll(fl_job_id=fl_job.pk)
    page = client.get(response.url).content.decode()
    assert "Training" in page and "round 2 of 2" in page
    assert "a-omop" in page and "0.700" in page and "Pooled validation AUC" in page
    assert 'hx-trigger="every 3s"' in page and "Abort training" in page
    partial = client.get(response.url, HTTP_HX_REQUEST="true").content.decode()
    assert partial.startswith('<div id="fl-body"')
    # The generic analysis page sends FL analyses here.
    assert client.get(f"/federation/analyses/{fl_job.analysis_id}/").url == response.url
    response = client.post(f"/federation/learning/{fl_job.pk}/abort/")
    assert response.status_code == 302
    fl_job.refresh_from_db()
    assert fl_job.status == FlJobStatus.ABORTED


def test_the_form_offers_only_entitled_datasets_and_answers_400_with_messages(
    client_as, researcher, hospital_a, hospital_b, flare
):
    sites = [make_fl_site(hospital_a, "a-omop"), make_fl_site(hospital_b, "b-omop")]
    datasets = [s.served_datasets.get().dataset for s in sites]
    client = client_as(researcher)
    page = client.get("/federation/learning/new/").content.decode()
    assert not any(d.title in page for d in datasets)
    response = client.post(
        "/federation/learning/new/", {**FORM, "datasets": [d.pk for d in datasets]}
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not FlJob.objects.exists()
    for dataset in datasets:
        grant_federated_learning(researcher, dataset)
    response = client.post(
        "/federation/learning/new/",
        {**FORM, "min_sites": "3", "datasets": [d.pk for d in datasets]},
    )
    assert response.status_code == 400
    assert "min_sites: 2 site(s) take part, the job needs 3" in response.content.decode()
    response = client.post("/federation/learning/new/", {**FORM, "condition_concept_ids": "x"})
    assert response.status_code == 400


def test_release_gate_page_and_registry_with_downloads(
    client_as, researcher, site_admin_a, outsider, setup, flare, django_capture_on_commit_callbacks
):
    _, datasets = setup
    fl_job = finished_job(researcher, datasets, flare, django_capture_on_commit_callbacks)
    page = client_as(researcher).get(f"/federation/learning/{fl_job.pk}/").content.decode()
    assert "awaits release" in page and "Release model" not in page
    admin = client_as(site_admin_a)
    assert (
        "Models awaiting your release decision"
        in admin.get("/federation/learning/").content.decode()
    )
    page = admin.get(f"/federation/learning/{fl_job.pk}/").content.decode()
    assert "Release model" in page and "Decline release" in page
    response = admin.post(f"/federation/learning/{fl_job.pk}/release/", {"name": "Death 5y"})
    model = TrainedModel.objects.get()
    assert response.url == f"/federation/models/{model.pk}/"

    client = client_as(researcher)
    assert "Death 5y" in client.get("/federation/models/").content.decode()
    page = client.get(f"/federation/models/{model.pk}/").content.decode()
    assert "Download model (JSON)" in page and "Participating sites" in page
    download = client.get(f"/federation/models/{model.pk}/download.json")
    assert download.status_code == 200 and download.json()["version"] == 1
    assert "attachment" in download["Content-Disposition"]
    card = client.get(f"/federation/models/{model.pk}/card.md")
    assert card.content.decode().startswith("# Death 5y v1")
    # An outsider sees the registry entry but cannot download, and never sees the job.
    other = client_as(outsider)
    assert other.get(f"/federation/models/{model.pk}/download.json").status_code == 403
    assert other.get(f"/federation/learning/{fl_job.pk}/").status_code == 404
    assert other.post(f"/federation/learning/{fl_job.pk}/abort/").status_code == 404


def test_a_site_admin_declines_and_researchers_cannot_release(
    client_as, researcher, site_admin_a, setup, flare, django_capture_on_commit_callbacks
):
    _, datasets = setup
    fl_job = finished_job(researcher, datasets, flare, django_capture_on_commit_callbacks)
    assert (
        client_as(researcher).post(f"/federation/learning/{fl_job.pk}/release/").status_code == 404
    )
    response = client_as(site_admin_a).post(
        f"/federation/learning/{fl_job.pk}/decline/", {"reason": "Validation too weak."}
    )
    assert response.status_code == 302
    fl_job.refresh_from_db()
    assert fl_job.status == FlJobStatus.DECLINED and fl_job.reason == "Validation too weak."


def test_list_pages_keep_query_counts_constant(
    client_as,
    researcher,
    setup,
    flare,
    django_capture_on_commit_callbacks,
    django_assert_max_num_queries,
    site_admin_a,
):
    _, datasets = setup
    for i in range(4):
        fl_job = finished_job(
            researcher, datasets, flare, django_capture_on_commit_callbacks, f"M{i}"
        )
        fl.fl_release(actor=site_admin_a, fl_job=fl_job, name="Same model")
    client = client_as(researcher)
    with django_assert_max_num_queries(12):
        assert client.get("/federation/learning/").status_code == 200
    with django_assert_max_num_queries(10):
        page = client.get("/federation/models/").content.decode()
    assert page.count("Same model") == 4 and "v4" in page


def test_api_create_follow_release_and_download(
    api_as, researcher, site_admin_a, outsider, setup, flare, django_capture_on_commit_callbacks
):
    _, datasets = setup
    api = api_as(researcher)
    schema = api.get("/api/fl-params-schema/").json()
    assert schema["type"] == "federated_learning" and "template" in schema["schema"]["properties"]
    bad = api.post(
        "/api/fl-jobs/",
        {"datasets": [d.pk for d in datasets], "params": {**FL_PARAMS, "rounds": 0}},
        format="json",
    )
    assert bad.status_code == 400
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(
            "/api/fl-jobs/",
            {"datasets": [d.pk for d in datasets], "params": FL_PARAMS},
            format="json",
        )
    assert created.status_code == 201, created.content
    job_id = created.json()["id"]
    flare.status, flare.report = "FINISHED:COMPLETED", FakeFlare.report_for(["a-omop", "b-omop"])
    fl.fl_poll(fl_job_id=job_id)
    body = api.get(f"/api/fl-jobs/{job_id}/").json()
    assert body["status"] == "awaiting_release" and body["progress"]["rounds"][0]["round"] == 1
    assert api.post(f"/api/fl-jobs/{job_id}/release/", {}, format="json").status_code == 404
    assert api_as(outsider).get(f"/api/fl-jobs/{job_id}/").status_code == 404
    released = api_as(site_admin_a).post(
        f"/api/fl-jobs/{job_id}/release/", {"name": "API model"}, format="json"
    )
    assert released.status_code == 201
    model_id = released.json()["id"]
    listing = api.get("/api/models/").json()
    rows = listing["results"] if isinstance(listing, dict) else listing
    assert rows[0]["name"] == "API model"
    assert api.get(f"/api/models/{model_id}/download/").json()["template"] == "logistic_regression"
    assert api_as(outsider).get(f"/api/models/{model_id}/download/").status_code == 403


def test_api_abort_and_entitlement_403(
    api_as, researcher, setup, flare, django_capture_on_commit_callbacks
):
    _sites, datasets = setup
    other = make_member(OrganisationFactory(name="Lab", slug="lab"), Role.RESEARCHER, username="r2")
    response = api_as(other).post(
        "/api/fl-jobs/", {"datasets": [d.pk for d in datasets], "params": FL_PARAMS}, format="json"
    )
    assert response.status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        job_id = (
            api_as(researcher)
            .post(
                "/api/fl-jobs/",
                {"datasets": [d.pk for d in datasets], "params": FL_PARAMS},
                format="json",
            )
            .json()["id"]
        )
    aborted = api_as(researcher).post(f"/api/fl-jobs/{job_id}/abort/")
    assert aborted.status_code == 200 and aborted.json()["status"] == "aborted"
    again = api_as(researcher).post(f"/api/fl-jobs/{job_id}/abort/")
    assert again.status_code == 400


def test_dashboard_lists_models_awaiting_release_and_generic_cancel_refuses(
    client_as, api_as, researcher, site_admin_a, setup, flare, django_capture_on_commit_callbacks
):
    from federation.dashboard import sections

    _, datasets = setup
    fl_job = finished_job(researcher, datasets, flare, django_capture_on_commit_callbacks, "Dash")
    titles = {s.title: s for s in sections(site_admin_a)}
    assert "Models awaiting your release decision" in titles
    assert "Models awaiting your release decision" not in {s.title for s in sections(researcher)}
    response = api_as(researcher).post(f"/api/analyses/{fl_job.analysis_id}/cancel/")
    assert response.status_code == 400
    fl_job.refresh_from_db()
    assert fl_job.status == FlJobStatus.AWAITING_RELEASE
