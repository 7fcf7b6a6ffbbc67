"""CSV export, the platform-team dashboard and statistics, query counts on list pages, dashboard
sections and the demo seed."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.audit import verify_chain
from feedback import dashboard, services
from feedback.models import FeedbackItem, Status

from .factories import FeedbackItemFactory

pytestmark = pytest.mark.django_db


def _csv(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_the_csv_export_holds_what_the_person_may_see(
    client_as, item_a, shared_item_a, clinician_b, hospital_b, hospital_c, triager
):
    FeedbackItemFactory(site=hospital_b, title="B's item")
    FeedbackItemFactory(site=hospital_c, title="C's private item")
    services.vote_add(user=clinician_b, item=shared_item_a)
    response = client_as(clinician_b).get("/feedback/export.csv")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = _csv(response)
    assert sorted(r["title"] for r in rows) == ["A shared usability issue", "B's item"]
    shared = next(r for r in rows if r["title"] == "A shared usability issue")
    assert shared["votes"] == "1"
    assert shared["site"] == "Hospital A"
    assert shared["url"].endswith(f"/feedback/{shared_item_a.pk}/")
    assert len(_csv(client_as(triager).get("/feedback/export.csv"))) == 4


def test_the_csv_export_follows_the_list_filters(client_as, triager, hospital_a):
    FeedbackItemFactory(site=hospital_a, status=Status.RESOLVED, title="done")
    FeedbackItemFactory(site=hospital_a, status=Status.NEW, title="new one")
    rows = _csv(client_as(triager).get("/feedback/export.csv?status=resolved"))
    assert [r["title"] for r in rows] == ["done"]


def test_the_csv_export_neutralises_spreadsheet_formulas(client_as, clinician_a, hospital_a):
    FeedbackItemFactory(site=hospital_a, author=clinician_a, title='=HYPERLINK("http://x")')
    rows = _csv(client_as(clinician_a).get("/feedback/export.csv"))
    assert rows[0]["title"] == '\'=HYPERLINK("http://x")'


def test_the_dashboard_is_for_the_platform_team(client_as, clinician_a, triager, hospital_a):
    now = timezone.now()
    for weeks_ago, status in [(0, Status.NEW), (1, Status.RESOLVED), (3, Status.TRIAGED)]:
        item = FeedbackItemFactory(site=hospital_a, status=status)
        FeedbackItem.objects.filter(pk=item.pk).update(
            created_at=now - timedelta(weeks=weeks_ago),
            triaged_at=now - timedelta(weeks=weeks_ago) + timedelta(hours=10)
            if status != Status.NEW
            else None,
            closed_at=now - timedelta(weeks=weeks_ago) + timedelta(hours=50)
            if status == Status.RESOLVED
            else None,
        )
    assert client_as(clinician_a).get("/feedback/dashboard/").status_code == 404
    html = client_as(triager).get("/feedback/dashboard/").content.decode()
    assert html.count("<svg") == 4
    assert "By site" in html or "by site" in html
    assert "median 10.0 h" in html
    assert "median 2.1 days" in html
    assert "script" not in html.split("<main", 1)[1].split("</main>", 1)[0]


def test_the_stats_api(api_as, triager, clinician_a, shared_item_a, clinician_b):
    services.vote_add(user=clinician_b, item=shared_item_a)
    assert api_as(clinician_a).get("/api/feedback/stats/").status_code == 404
    body = api_as(triager).get("/api/feedback/stats/?weeks=4").json()
    assert body["total"] == 1 and body["open"] == 1
    assert body["most_voted"] == [
        {"id": shared_item_a.pk, "title": shared_item_a.title, "site": "hospital-a", "votes": 1}
    ]
    assert sum(body["over_time"]["site"]["series"]["Hospital A"]) == 1
    assert len(body["over_time"]["status"]["weeks"]) == 4


def _populate(n, sites, author, voters):
    for i in range(n):
        item = FeedbackItemFactory(site=sites[i % len(sites)], author=author, shared=True)
        item.labels.create(name=f"label-{item.pk}")
        for voter in voters:
            services.vote_add(user=voter, item=item)
        services.comment_add(user=voters[0], item=item, body="me too")


def test_list_pages_take_a_constant_number_of_queries(
    client_as, api_as, clinician_a, clinician_b, hospital_a, triager, django_assert_max_num_queries
):
    _populate(3, [hospital_a], clinician_a, [clinician_b])
    client = client_as(triager)
    api = api_as(triager)
    with django_assert_max_num_queries(14) as few:
        assert client.get("/feedback/").status_code == 200
    with django_assert_max_num_queries(10) as few_api:
        assert api.get("/api/feedback/items/").json()["count"] == 3
    _populate(12, [hospital_a], clinician_a, [clinician_b])
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/feedback/").status_code == 200
    with django_assert_max_num_queries(len(few_api.captured_queries)):
        assert api.get("/api/feedback/items/").json()["count"] == 15
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/feedback/export.csv").status_code == 200


def test_the_dashboard_takes_a_constant_number_of_queries(
    client_as, clinician_a, clinician_b, hospital_a, triager, django_assert_max_num_queries
):
    _populate(2, [hospital_a], clinician_a, [clinician_b])
    client = client_as(triager)
    with django_assert_max_num_queries(20) as few:
        assert client.get("/feedback/dashboard/").status_code == 200
    _populate(10, [hospital_a], clinician_a, [clinician_b])
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/feedback/dashboard/").status_code == 200


def test_an_item_page_takes_a_bounded_number_of_queries(
    client_as, clinician_a, clinician_b, hospital_a, triager, django_assert_max_num_queries
):
    _populate(1, [hospital_a], clinician_a, [clinician_b])
    item = FeedbackItem.objects.get()
    for _ in range(5):
        services.comment_add(user=clinician_b, item=item, body="more")
    client = client_as(triager)
    with django_assert_max_num_queries(25):
        assert client.get(f"/feedback/{item.pk}/").status_code == 200


def test_dashboard_sections(item_a, clinician_a, triager):
    titles = {s.title: s for s in dashboard.sections(triager)}
    assert f"#{item_a.pk} {item_a.title}" in [i.label for i in titles["Feedback to triage"].items]
    services.feedback_triage(user=triager, item=item_a, assignee=triager)
    titles = {s.title: s for s in dashboard.sections(triager)}
    assert [i.label for i in titles["Feedback assigned to you"].items] == [
        f"#{item_a.pk} {item_a.title}"
    ]
    mine = {s.title: s for s in dashboard.sections(clinician_a)}
    assert mine["Your feedback"].items[0].detail == "Triaged"
    assert "Feedback to triage" not in mine


def test_the_demo_seed_is_idempotent_and_audited(settings):
    from accounts import demo as accounts_demo
    from feedback import demo

    accounts_demo.seed()
    first = demo.seed()
    assert first["created"] == len(demo.ITEMS)
    assert demo.seed()["created"] == 0
    assert FeedbackItem.objects.count() == len(demo.ITEMS)
    assert FeedbackItem.objects.filter(shared=True).count() >= 2
    assert FeedbackItem.objects.filter(status=Status.RESOLVED).exists()
    cds = FeedbackItem.objects.get(category="cds_disagreement")
    assert cds.cds_rule_id == "intermediate"
    assert verify_chain().ok


def test_list_filters(api_as, client_as, triager, clinician_a, hospital_a, hospital_b):
    mine = FeedbackItemFactory(site=hospital_a, author=clinician_a, title="mine")
    closed = FeedbackItemFactory(site=hospital_b, status=Status.WONT_FIX, title="closed")
    cds = FeedbackItemFactory(site=hospital_b, category="cds_disagreement", cds_pathway_id="p1")
    api = api_as(triager)

    def ids(query):
        return {row["id"] for row in api.get(f"/api/feedback/items/?{query}").json()["results"]}

    assert ids("open=false") == {closed.pk}
    assert ids("open=true") == {mine.pk, cds.pk}
    assert ids("cds_pathway=p1") == {cds.pk}
    assert ids(f"site={hospital_b.pk}&status=wont_fix&status=new") == {closed.pk, cds.pk}
    assert ids(f"q=%23{mine.pk}") == {mine.pk}
    assert {
        r["id"] for r in api_as(clinician_a).get("/api/feedback/items/?mine=true").json()["results"]
    } == {mine.pk}
    html = client_as(triager).get("/feedback/?open=false", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html and ">closed</a>" in html and ">mine</a>" not in html
