"""Who sees an item: its author, its site and the platform team; a shared item also the other test
sites, who may comment and vote. Everyone else gets 404, for the item and for its attachments."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import AuditEvent
from feedback import permissions, services
from feedback.models import FeedbackItem, Status, Vote

from .factories import PNG, FeedbackItemFactory

pytestmark = pytest.mark.django_db


def _attach(item, user):
    return services.attachment_add(
        user=user, item=item, upload=SimpleUploadedFile("screen.png", PNG, "image/png")
    )


def test_another_site_gets_404_for_an_unshared_item_and_its_attachment(
    client_as, api_as, item_a, clinician_a, clinician_b
):
    attachment = _attach(item_a, clinician_a)
    client = client_as(clinician_b)
    assert client.get(f"/feedback/{item_a.pk}/").status_code == 404
    assert client.get(f"/feedback/{item_a.pk}/attachments/{attachment.pk}/").status_code == 404
    assert client.post(f"/feedback/{item_a.pk}/comments/", {"body": "hi"}).status_code == 404
    assert client.post(f"/feedback/{item_a.pk}/vote/").status_code == 404
    api = api_as(clinician_b)
    assert api.get(f"/api/feedback/items/{item_a.pk}/").status_code == 404
    assert (
        api.get(f"/api/feedback/items/{item_a.pk}/attachments/{attachment.pk}/").status_code == 404
    )
    assert api.post(f"/api/feedback/items/{item_a.pk}/vote/").status_code == 404
    assert api.get("/api/feedback/items/").json()["count"] == 0


def test_the_site_and_the_platform_team_see_an_unshared_item(
    client_as, item_a, colleague_a, triager, platform_admin
):
    for user in (colleague_a, triager, platform_admin):
        assert client_as(user).get(f"/feedback/{item_a.pk}/").status_code == 200


def test_an_attachment_is_served_as_a_download_to_those_who_see_the_item(
    client_as, item_a, clinician_a, colleague_a
):
    attachment = _attach(item_a, clinician_a)
    response = client_as(colleague_a).get(f"/feedback/{item_a.pk}/attachments/{attachment.pk}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in response["Content-Security-Policy"]
    assert b"".join(response.streaming_content) == PNG


def test_an_attachment_of_one_item_is_not_reachable_through_another(
    client_as, item_a, clinician_a, clinician_b, hospital_b
):
    attachment = _attach(item_a, clinician_a)
    own = FeedbackItemFactory(site=hospital_b, author=clinician_b)
    response = client_as(clinician_b).get(f"/feedback/{own.pk}/attachments/{attachment.pk}/")
    assert response.status_code == 404


def test_a_shared_item_is_seen_by_the_other_test_sites_who_may_comment_and_vote(
    client_as, api_as, shared_item_a, clinician_b
):
    client = client_as(clinician_b)
    assert client.get(f"/feedback/{shared_item_a.pk}/").status_code == 200
    r = client.post(f"/feedback/{shared_item_a.pk}/comments/", {"body": "Same **here**."})
    assert r.status_code == 302
    r = client.post(f"/feedback/{shared_item_a.pk}/vote/")
    assert r.status_code == 302
    assert Vote.objects.filter(item=shared_item_a, user=clinician_b).exists()
    page = client.get(f"/feedback/{shared_item_a.pk}/").content.decode()
    assert "Same <strong>here</strong>." in page
    assert "Hospital B" in page  # the commenter's site is shown
    api = api_as(clinician_b)
    body = api.get(f"/api/feedback/items/{shared_item_a.pk}/").json()
    assert body["vote_count"] == 1
    assert body["has_voted"] is True
    assert body["comment_count"] == 1
    r = api.delete(f"/api/feedback/items/{shared_item_a.pk}/vote/")
    assert r.json() == {"vote_count": 0, "has_voted": False}
    assert list(
        AuditEvent.objects.filter(object_id=str(shared_item_a.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    ) == ["feedback.commented", "feedback.voted", "feedback.unvoted"]


def test_shared_items_are_for_test_sites_only(client_as, shared_item_a, researcher):
    assert client_as(researcher).get(f"/feedback/{shared_item_a.pk}/").status_code == 404


def test_other_sites_may_not_attach_to_a_shared_item(api_as, shared_item_a, clinician_b):
    r = api_as(clinician_b).post(
        f"/api/feedback/items/{shared_item_a.pk}/attachments/",
        {"file": SimpleUploadedFile("x.png", PNG, "image/png")},
        format="multipart",
    )
    assert r.status_code == 404


def test_votes_are_once_per_person_not_for_ones_own_item_and_only_while_open(
    shared_item_a, clinician_a, clinician_b, api_as
):
    assert services.vote_add(user=clinician_b, item=shared_item_a) is True
    assert services.vote_add(user=clinician_b, item=shared_item_a) is False
    assert shared_item_a.votes.count() == 1
    r = api_as(clinician_a).post(f"/api/feedback/items/{shared_item_a.pk}/vote/")
    assert r.status_code == 400
    assert "your own" in r.json()["error"]["fields"]["vote"][0]
    FeedbackItem.objects.filter(pk=shared_item_a.pk).update(status=Status.RESOLVED)
    shared_item_a.refresh_from_db()
    r = api_as(clinician_b).delete(f"/api/feedback/items/{shared_item_a.pk}/vote/")
    assert r.status_code == 200


def test_the_list_shows_exactly_what_each_person_may_see(
    client_as, item_a, shared_item_a, clinician_b, hospital_b, hospital_c, triager
):
    own_b = FeedbackItemFactory(site=hospital_b, title="B's own")
    unshared_c = FeedbackItemFactory(site=hospital_c, title="C's private")
    visible = set(
        permissions.restrict(FeedbackItem.objects.all(), clinician_b).values_list("pk", flat=True)
    )
    assert visible == {shared_item_a.pk, own_b.pk}
    page = client_as(clinician_b).get("/feedback/").content.decode()
    assert "B&#x27;s own" in page or "B's own" in page
    assert "A shared usability issue" in page
    assert "Hospital A&#x27;s bug" not in page and "Hospital A's bug" not in page
    assert "C&#x27;s private" not in page
    assert set(
        permissions.restrict(FeedbackItem.objects.all(), triager).values_list("pk", flat=True)
    ) == {item_a.pk, shared_item_a.pk, own_b.pk, unshared_c.pk}


def test_anonymous_visitors_are_sent_to_log_in(client, item_a):
    response = client.get(f"/feedback/{item_a.pk}/")
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_only_the_author_may_edit_and_share(client_as, item_a, clinician_a, colleague_a):
    assert client_as(colleague_a).get(f"/feedback/{item_a.pk}/edit/").status_code == 404
    r = client_as(clinician_a).post(
        f"/feedback/{item_a.pk}/edit/",
        {
            "title": item_a.title,
            "description": item_a.description,
            "persona": item_a.persona,
            "severity": item_a.severity,
            "shared": "on",
        },
    )
    assert r.status_code == 302
    item_a.refresh_from_db()
    assert item_a.shared is True
    assert AuditEvent.objects.filter(action="feedback.shared", object_id=str(item_a.pk)).exists()
