"""The triage workflow by role: who may do what, illegal transitions refused with a message,
an audit event for every transition, authors notified of status changes and replies."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError

from accounts import notifications
from accounts.audit import verify_chain
from accounts.models import AuditEvent, Notification
from feedback import services
from feedback.models import Status

from .factories import FeedbackItemFactory

pytestmark = pytest.mark.django_db


def _actions(item):
    return list(
        AuditEvent.objects.filter(object_type="feedback.feedbackitem", object_id=str(item.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )


def test_it_walks_new_triaged_in_progress_resolved_and_audits_every_step(item_a, triager):
    services.feedback_triage(
        user=triager, item=item_a, assignee=triager, priority="high", labels=["UI", "regression"]
    )
    assert item_a.status == Status.TRIAGED
    assert item_a.triaged_at is not None
    assert sorted(item_a.labels.values_list("name", flat=True)) == ["regression", "ui"]
    services.feedback_start(user=triager, item=item_a)
    assert item_a.status == Status.IN_PROGRESS
    services.feedback_resolve(
        user=triager, item=item_a, resolution_note="Fixed the filter.", fixed_in_version="0.2.0"
    )
    item_a.refresh_from_db()
    assert item_a.status == Status.RESOLVED
    assert item_a.fixed_in_version == "0.2.0"
    assert item_a.closed_at is not None
    assert _actions(item_a) == ["feedback.triaged", "feedback.started", "feedback.resolved"]
    event = AuditEvent.objects.get(action="feedback.resolved")
    assert event.payload == {"from": "in_progress", "to": "resolved", "fixed_in_version": "0.2.0"}
    assert event.organisation_id == item_a.site_id
    assert verify_chain().ok


def test_staff_platform_admin_may_triage_too(item_a, platform_admin):
    services.feedback_triage(user=platform_admin, item=item_a, assignee=platform_admin)
    assert item_a.status == Status.TRIAGED


@pytest.mark.parametrize("who", ["clinician_a", "colleague_a", "steward_a"])
def test_it_refuses_triage_by_anyone_outside_the_platform_team(request, item_a, who):
    user = request.getfixturevalue(who)
    with pytest.raises(PermissionDenied, match="Only the platform team"):
        services.feedback_triage(user=user, item=item_a)
    item_a.refresh_from_db()
    assert item_a.status == Status.NEW
    assert _actions(item_a) == []


@pytest.mark.parametrize(
    ("status", "name", "message"),
    [
        (Status.NEW, "resolve", "Triage it first"),
        (Status.NEW, "start", "Triage it first"),
        (Status.NEW, "reopen", "cannot be reopened"),
        (Status.IN_PROGRESS, "triage", "cannot be triaged"),
        (Status.RESOLVED, "start", "Reopen it first"),
        (Status.WONT_FIX, "resolve", "Reopen it first"),
        (Status.DUPLICATE, "triage", "Reopen it first"),
    ],
)
def test_it_refuses_illegal_transitions_with_a_message(
    triager, clinician_a, hospital_a, status, name, message
):
    item = FeedbackItemFactory(site=hospital_a, author=clinician_a, status=status)
    data = {"resolve": {"resolution_note": "x"}}.get(name, {})
    with pytest.raises(ValidationError) as exc:
        services.feedback_transition(user=triager, item=item, name=name, **data)
    assert message in exc.value.message_dict["status"][0]
    item.refresh_from_db()
    assert item.status == status


def test_the_author_may_reopen_but_a_colleague_may_not(clinician_a, colleague_a, hospital_a):
    item = FeedbackItemFactory(site=hospital_a, author=clinician_a, status=Status.RESOLVED)
    with pytest.raises(PermissionDenied, match="Only the author or the platform team"):
        services.feedback_reopen(user=colleague_a, item=item)
    services.feedback_reopen(user=clinician_a, item=item, reason="Still broken in Firefox.")
    item.refresh_from_db()
    assert item.status == Status.REOPENED
    assert item.reopened_count == 1
    assert item.closed_at is None
    assert item.comments.get().body == "Reopened: Still broken in Firefox."
    assert _actions(item) == ["feedback.reopened", "feedback.commented"]


def test_a_reopened_item_can_be_triaged_again(clinician_a, hospital_a, triager):
    item = FeedbackItemFactory(site=hospital_a, author=clinician_a, status=Status.REOPENED)
    services.feedback_triage(user=triager, item=item, assignee=triager)
    assert item.status == Status.TRIAGED


def test_wont_fix_needs_a_reason(item_a, triager):
    with pytest.raises(ValidationError) as exc:
        services.feedback_wont_fix(user=triager, item=item_a, resolution_note="  ")
    assert "resolution_note" in exc.value.message_dict
    services.feedback_wont_fix(user=triager, item=item_a, resolution_note="Out of scope.")
    assert item_a.status == Status.WONT_FIX


def test_duplicate_points_at_the_original_and_never_at_itself(item_a, triager, hospital_a):
    original = FeedbackItemFactory(site=hospital_a)
    middle = FeedbackItemFactory(site=hospital_a)
    services.feedback_mark_duplicate(user=triager, item=middle, duplicate_of=original)
    services.feedback_mark_duplicate(user=triager, item=item_a, duplicate_of=middle)
    assert item_a.duplicate_of == original
    other = FeedbackItemFactory(site=hospital_a)
    with pytest.raises(ValidationError, match="itself"):
        services.feedback_mark_duplicate(user=triager, item=other, duplicate_of=other)


def test_assignee_must_be_on_the_platform_team(item_a, triager, colleague_a):
    with pytest.raises(ValidationError) as exc:
        services.feedback_triage(user=triager, item=item_a, assignee=colleague_a)
    assert "assignee" in exc.value.message_dict


def test_fixed_in_version_is_checked(item_a, triager):
    services.feedback_triage(user=triager, item=item_a)
    with pytest.raises(ValidationError) as exc:
        services.feedback_resolve(
            user=triager, item=item_a, resolution_note="ok", fixed_in_version="next week!"
        )
    assert "fixed_in_version" in exc.value.message_dict


def test_the_author_is_told_in_app_and_by_email_of_status_changes_and_replies(
    item_a, triager, clinician_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.feedback_triage(user=triager, item=item_a, assignee=triager)
    with django_capture_on_commit_callbacks(execute=True):
        services.comment_add(user=triager, item=item_a, body="Can you send a screenshot?")
    with django_capture_on_commit_callbacks(execute=True):
        services.comment_add(user=clinician_a, item=item_a, body="Attached.")
    assert [m.to for m in mail.outbox] == [[clinician_a.email], [clinician_a.email]]
    assert "Triaged" in mail.outbox[0].subject
    assert "New to Triaged" in mail.outbox[0].body
    assert "Can you send a screenshot?" in mail.outbox[1].body
    assert f"/feedback/{item_a.pk}/" in mail.outbox[1].body
    # The same two messages are in the author's in-app list (the author's own reply is not).
    told = Notification.objects.filter(recipient=clinician_a).order_by("pk")
    assert [n.verb for n in told] == ["feedback.status_changed", "feedback.replied"]
    assert [n.url for n in told] == [f"/feedback/{item_a.pk}/"] * 2
    assert all(n.sent_at is not None and n.read_at is None for n in told)
    assert not Notification.objects.exclude(recipient=clinician_a).exists()
    # Sending again is a no-op: the row records that it went out.
    assert notifications.send_pending([n.pk for n in told]).sent == []
    assert len(mail.outbox) == 2


def test_api_transitions_answer_403_with_a_message_for_the_wrong_role(api_as, item_a, clinician_a):
    response = api_as(clinician_a).post(
        f"/api/feedback/items/{item_a.pk}/triage/", {}, format="json"
    )
    assert response.status_code == 403
    assert "Only the platform team" in response.json()["error"]["message"]


def test_api_illegal_transition_answers_400_with_the_reason(api_as, item_a, triager):
    response = api_as(triager).post(
        f"/api/feedback/items/{item_a.pk}/resolve/", {"resolution_note": "done"}, format="json"
    )
    assert response.status_code == 400
    assert "Triage it first" in response.json()["error"]["fields"]["status"][0]


def test_api_walks_the_whole_workflow(api_as, item_a, triager, clinician_a):
    client = api_as(triager)
    base = f"/api/feedback/items/{item_a.pk}"
    r = client.post(
        f"{base}/triage/",
        {"assignee": triager.username, "priority": "urgent", "labels": ["network"]},
        format="json",
    )
    assert r.status_code == 200, r.json()
    assert r.json()["status"] == "triaged"
    assert r.json()["assignee"] == triager.username
    assert r.json()["labels"] == ["network"]
    assert client.post(f"{base}/start/").json()["status"] == "in_progress"
    r = client.post(f"{base}/wont-fix/", {"resolution_note": "By design."}, format="json")
    assert r.json()["status"] == "wont_fix"
    r = api_as(clinician_a).post(f"{base}/reopen/", {"reason": "Please reconsider"}, format="json")
    assert r.status_code == 200
    assert r.json()["status"] == "reopened"
    assert "reopen" not in r.json()["transitions"]


def test_html_triage_and_resolve_by_the_platform_team(client_as, item_a, triager, clinician_a):
    client = client_as(triager)
    r = client.post(
        f"/feedback/{item_a.pk}/triage/",
        {"triage-assignee": triager.pk, "triage-priority": "high", "triage-labels": "ui, docs"},
    )
    assert r.status_code == 302
    client.post(f"/feedback/{item_a.pk}/start/")
    r = client.post(
        f"/feedback/{item_a.pk}/resolve/",
        {
            "resolve-resolution_note": "Fixed in the *search* view.",
            "resolve-fixed_in_version": "0.2.0",
        },
        follow=True,
    )
    assert "is now “Resolved”" in r.content.decode()
    item_a.refresh_from_db()
    assert item_a.status == Status.RESOLVED
    # The author sees the resolution on the item's page.
    page = client_as(clinician_a).get(f"/feedback/{item_a.pk}/").content.decode()
    assert "Fixed in the <em>search</em> view." in page
    assert "Fixed in version <strong>0.2.0</strong>" in page


def test_html_refusal_shows_the_message(client_as, item_a, clinician_a):
    r = client_as(clinician_a).post(
        f"/feedback/{item_a.pk}/triage/", {"triage-priority": "high"}, follow=True
    )
    assert "Only the platform team can triage" in r.content.decode()
    item_a.refresh_from_db()
    assert item_a.status == Status.NEW


def test_html_illegal_transition_shows_the_message(client_as, item_a, triager):
    r = client_as(triager).post(
        f"/feedback/{item_a.pk}/resolve/", {"resolve-resolution_note": "done"}
    )
    assert r.status_code == 400
    assert "Triage it first" in r.content.decode()


def test_unsent_notifications_are_sent_later_once(item_a, triager, clinician_a, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    # Queued, but the after-commit task never ran (no worker): the periodic sweep sends it.
    services.feedback_triage(user=triager, item=item_a, assignee=triager)
    notification = Notification.objects.get()
    assert notification.sent_at is None and mail.outbox == []
    assert notifications.resend_unsent() == 0  # too fresh: the task may still be on its way
    Notification.objects.filter(pk=notification.pk).update(
        created_at=timezone.now() - timedelta(minutes=2)
    )
    assert notifications.resend_unsent() == 1
    assert notifications.resend_unsent() == 0
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [clinician_a.email]


def test_the_role_is_checked_before_the_details(item_a, clinician_a):
    # Someone who may not resolve hears that, not that the note is missing.
    with pytest.raises(PermissionDenied):
        services.feedback_resolve(user=clinician_a, item=item_a, resolution_note="")
    with pytest.raises(PermissionDenied):
        services.feedback_wont_fix(user=clinician_a, item=item_a, resolution_note="")


@pytest.mark.parametrize(
    ("start", "name", "data", "action"),
    [
        (Status.NEW, "wont_fix", {"resolution_note": "No."}, "feedback.closed_wont_fix"),
        (Status.TRIAGED, "resolve", {"resolution_note": "Done."}, "feedback.resolved"),
        (Status.REOPENED, "start", {}, "feedback.started"),
        (Status.DUPLICATE, "reopen", {}, "feedback.reopened"),
    ],
)
def test_every_transition_writes_its_audit_event(
    triager, clinician_a, hospital_a, start, name, data, action
):
    item = FeedbackItemFactory(site=hospital_a, author=clinician_a, status=start)
    services.feedback_transition(user=triager, item=item, name=name, **data)
    event = AuditEvent.objects.get(object_id=str(item.pk), action=action)
    assert (event.payload["from"], event.payload["to"]) == (start, item.status)
    assert event.actor == triager


def test_marking_a_duplicate_is_audited_with_the_original(triager, hospital_a, item_a):
    original = FeedbackItemFactory(site=hospital_a)
    services.feedback_mark_duplicate(user=triager, item=item_a, duplicate_of=original)
    event = AuditEvent.objects.get(action="feedback.marked_duplicate")
    assert event.payload["duplicate_of"] == original.pk
