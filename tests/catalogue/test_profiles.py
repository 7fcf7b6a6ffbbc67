"""The database profile on the dataset page, in the API and in the HealthDCAT-AP export; the
agreed update interval, the freshness filter and the overdue e-mails."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from accounts.models import Notification
from catalogue import export, profiles, rdf, services, validation
from catalogue.models import DatasetProfile
from federation.kinds.profile import pool
from optima_node.db import connect
from optima_node.policy import Policy
from optima_node.profile import compute_profile
from optima_node.schemas import DatabaseProfileParams
from optima_node.synth import synthesise
from tests.catalogue.factories import make_published

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def node_profile(tmp_path_factory) -> dict:
    """What one node releases for a small synthetic CDM (k = 5), as JSON."""
    import json

    path = tmp_path_factory.mktemp("profile") / "omop.sqlite3"
    db = connect(f"sqlite:///{path}")
    synthesise(db, 600, 7, ["prostate", "breast", "lung"])
    profile = compute_profile(db, DatabaseProfileParams(), Policy(min_cell_count=5))
    db.close()
    return json.loads(json.dumps(profile, default=str))


@pytest.fixture
def pooled(node_profile) -> dict:
    return {**pool([node_profile], {}), "nodes": ["a-omop"]}


@pytest.fixture
def published(steward_a, curator, hospital_a):
    return make_published(steward_a, curator, hospital_a)


def _attach(dataset, profile, steward, **kwargs):
    return services.dataset_profile_attach(
        dataset=dataset, profile=profile, actor=steward, **kwargs
    )


def test_only_the_publishers_stewards_attach_a_profile(published, pooled, steward_b, outsider):
    for user in (steward_b, outsider):
        with pytest.raises(PermissionDenied):
            _attach(published, pooled, user)
    assert not DatasetProfile.objects.exists()


def test_the_dataset_page_shows_the_profile_with_charts(
    client_as, client, published, pooled, steward_a, researcher
):
    _attach(published, pooled, steward_a, source="Analysis #1")
    updated = date(2025, 1, 1)  # the synthetic CDM's source release date
    days = (timezone.localdate() - updated).days
    page = client_as(researcher).get(f"/catalogue/datasets/{published.identifier}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert f"Data updated <strong>{days} days ago</strong> (2025-01-01)" in html
    for chart in ("plot-pyramid", "plot-records", "plot-freshness"):
        assert f'class="plot plot-{chart[5:]}"' in html
    assert 'role="img"' in html and "style=" not in html.split('id="profile"')[1]
    persons = pooled["person_count"]["count"]
    assert f"<td>{persons}</td>" in html
    # Suppressed cells are shown as lower bounds, never as the small number.
    assert any(r["lower_bound"] for r in pooled["by_sex_age"])
    assert "≥" in html


def test_the_api_carries_the_profile_and_its_freshness(
    api_as, published, pooled, steward_a, researcher
):
    _attach(published, pooled, steward_a)
    services.dataset_update_interval_set(user=steward_a, dataset=published, days=30)
    body = api_as(researcher).get(f"/api/datasets/{published.identifier}/").json()
    assert body["profile"]["data"]["person_count"] == pooled["person_count"]
    assert body["freshness"]["state"] == "overdue"
    assert body["freshness"]["updated_on"] == "2025-01-01"
    assert body["freshness"]["due_on"] == "2025-01-31"
    listed = api_as(researcher).get("/api/datasets/?freshness=overdue").json()
    assert [d["identifier"] for d in listed["results"]] == [published.identifier]
    assert listed["results"][0]["freshness"] == "overdue"
    assert api_as(researcher).get("/api/datasets/?freshness=fresh").json()["count"] == 0


def test_the_search_filters_on_freshness(client, published, pooled, steward_a, curator, hospital_a):
    fresh = make_published(steward_a, curator, hospital_a, title="Breast cancer cohort")
    without = make_published(steward_a, curator, hospital_a, title="Prostate cancer cohort")
    recent = {
        **pooled,
        "source_release_date": (timezone.localdate() - timedelta(days=3)).isoformat(),
    }
    _attach(fresh, recent, steward_a)
    _attach(published, pooled, steward_a)
    for dataset in (fresh, published, without):
        services.dataset_update_interval_set(user=steward_a, dataset=dataset, days=90)

    def titles(freshness: str) -> set[str]:
        html = client.get("/catalogue/", {"freshness": freshness}).content.decode()
        return {d.title for d in (fresh, published, without) if d.title in html}

    assert titles("fresh") == {"Breast cancer cohort"}
    assert titles("overdue") == {"Lung cancer cohort", "Prostate cancer cohort"}
    assert len(titles("")) == 3
    assert "data updated 3 days ago" in client.get("/catalogue/").content.decode()
    without.refresh_from_db()
    assert profiles.freshness(without).state == profiles.OVERDUE


def test_only_stewards_set_the_update_interval_and_it_keeps_the_published_status(
    client_as, published, steward_a, steward_b
):
    url = f"/catalogue/datasets/{published.identifier}/update-interval/"
    assert client_as(steward_b).post(url, {"update_interval_days": "7"}).status_code == 404
    assert client_as(steward_a).post(url, {"update_interval_days": "0"}).status_code == 302
    published.refresh_from_db()
    assert published.update_interval_days is None
    assert client_as(steward_a).post(url, {"update_interval_days": "7"}).status_code == 302
    published.refresh_from_db()
    assert published.update_interval_days == 7 and published.status == "published"


def test_overdue_datasets_notify_the_stewards_and_site_admins_once(
    published, pooled, steward_a, site_admin_a, steward_b, django_capture_on_commit_callbacks
):
    _attach(published, pooled, steward_a)
    services.dataset_update_interval_set(user=steward_a, dataset=published, days=365)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.datasets_overdue_notify(today=date(2025, 6, 1)) == 0  # within a year
        assert services.datasets_overdue_notify(today=date(2026, 1, 2)) == 1
        assert services.datasets_overdue_notify(today=date(2026, 1, 3)) == 0  # once
    # One notification (in-app and e-mailed) per person of the publisher, nobody else.
    messages = [m for m in mail.outbox if "overdue" in m.subject]
    assert sorted(to for m in messages for to in m.to) == sorted(
        [steward_a.email, site_admin_a.email]
    )
    assert all("was due on 2026-01-01" in m.body for m in messages)
    told = Notification.objects.filter(verb="dataset.overdue")
    assert {n.recipient for n in told} == {steward_a, site_admin_a}
    # A new profile starts the clock again.
    _attach(published, {**pooled, "source_release_date": "2026-01-05"}, steward_a)
    assert DatasetProfile.objects.get().overdue_notified_on is None


def test_the_healthdcat_export_carries_the_profile_and_validates(
    published, pooled, steward_a, tmp_path
):
    _attach(published, pooled, steward_a)
    graph = export.dataset_graph(published.current_version)
    ds = rdf.dataset_uri(published.identifier)
    individuals = graph.value(ds, rdf.HEALTH.numberOfUniqueIndividuals)
    assert int(individuals) == pooled["person_count"]["count"]
    assert individuals.datatype == rdf.XSD.nonNegativeInteger
    records = sum(t["records"] for t in pooled["tables"] if t["table"] != "person")
    assert int(graph.value(ds, rdf.HEALTH.numberOfRecords)) == records
    period = graph.value(ds, rdf.DCTERMS.temporal)
    assert str(graph.value(period, rdf.DCAT.startDate)) == pooled["observation_start"]
    group = graph.value(ds, rdf.HEALTH.hasVariables)
    tables = {str(t).rsplit("/", 1)[-1] for t in graph.objects(group, rdf.CSVW.table)}
    assert tables == {t["table"] for t in pooled["tables"] if t["records"]}
    conforms, report = validation.validate_graph(graph)
    assert conforms, report.serialize(format="turtle")[:3000]


def test_a_profile_without_its_sections_is_refused(published, steward_a):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        _attach(published, {"person_count": {"count": 10}}, steward_a)
