"""One notification service: a row per recipient, e-mailed once with retries and a resend sweep,
listed in-app to its recipient only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import notifications
from accounts.models import Notification
from accounts.tasks import send_notification_emails
from optima_portal.celery import app
from tests.factories import NotificationFactory, UserFactory

pytestmark = pytest.mark.django_db


class FlakyBackend(EmailBackend):
    """The locmem backend behind a mail server that refuses the first ``failures`` messages."""

    failures = 0

    def send_messages(self, messages):
        if FlakyBackend.failures > 0:
            FlakyBackend.failures -= 1
            raise ConnectionRefusedError("mail server down")
        return super().send_messages(messages)


@pytest.fixture
def flaky_mail(settings):
    """Run retries in-process: an eager task's ``retry`` re-applies it at once, unless the eager
    mode propagates the ``Retry`` to the caller (the unit tests' default)."""
    settings.EMAIL_BACKEND = f"{__name__}.FlakyBackend"
    propagates = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False

    def fail(times: int) -> None:
        FlakyBackend.failures = times

    yield fail
    FlakyBackend.failures = 0
    app.conf.task_eager_propagates = propagates


def _tell(*recipients, **kwargs):
    return notifications.notify(
        recipients=recipients,
        verb=kwargs.pop("verb", "test.happened"),
        subject=kwargs.pop("subject", "Something happened"),
        body=kwargs.pop("body", "In detail."),
        url=kwargs.pop("url", "/dashboard/"),
        **kwargs,
    )


# --- One row per recipient ------------------------------------------------------------------


def test_it_writes_one_row_per_recipient_and_emails_each_once_after_commit(
    researcher, steward_a, dac_a, hospital_a, django_capture_on_commit_callbacks
):
    dac_a.is_active = False
    dac_a.save()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        rows = _tell(
            researcher, steward_a, researcher, None, dac_a, organisation=hospital_a, obj=hospital_a
        )
        assert mail.outbox == []  # nothing leaves before the transaction commits
    assert sorted(n.recipient.username for n in rows) == ["researcher", "steward_a"]
    assert Notification.objects.count() == 2
    row = Notification.objects.get(recipient=researcher)
    assert (row.object_type, row.object_id) == ("accounts.organisation", str(hospital_a.pk))
    assert row.organisation == hospital_a and row.email and row.read_at is None
    assert len(callbacks) == 1  # one task for every row
    callbacks[0]()
    assert sorted(m.to[0] for m in mail.outbox) == sorted([researcher.email, steward_a.email])
    message = next(m for m in mail.outbox if m.to == [researcher.email])
    assert message.subject == "[OPTIMA] Something happened"
    assert "In detail." in message.body and "http://" in message.body
    assert message.alternatives[0][1] == "text/html"
    assert Notification.objects.filter(sent_at__isnull=False, attempts=1).count() == 2


def test_it_lists_but_does_not_email_a_recipient_without_an_address(
    django_capture_on_commit_callbacks,
):
    nobody = UserFactory(username="no_address", email="")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        (row,) = _tell(nobody)
    assert callbacks == [] and mail.outbox == []
    assert row.email is False
    assert notifications.resend_unsent(now=timezone.now() + timedelta(minutes=5)) == 0


def test_it_writes_nothing_when_the_callers_transaction_rolls_back(researcher):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        _tell(researcher)
        raise RuntimeError("the change itself failed")
    assert not Notification.objects.exists()


# --- Retries, the sweep, never twice ----------------------------------------------------------


def test_a_failed_send_records_the_error_and_a_retry_succeeds(researcher, flaky_mail):
    row = NotificationFactory(recipient=researcher)
    flaky_mail(1)
    result = notifications.send_pending([row.pk])
    assert (result.sent, result.failed) == ([], [row.pk])
    row.refresh_from_db()
    assert row.sent_at is None and row.attempts == 1
    assert "mail server down" in row.error
    assert mail.outbox == []

    result = notifications.send_pending([row.pk])
    assert result.sent == [row.pk]
    row.refresh_from_db()
    assert row.sent_at is not None and row.attempts == 2 and row.error == ""
    assert len(mail.outbox) == 1


def test_the_task_retries_the_rows_that_failed(researcher, steward_a, flaky_mail):
    first = NotificationFactory(recipient=researcher)
    second = NotificationFactory(recipient=steward_a)
    flaky_mail(1)  # the first message fails; the retry sends it
    assert send_notification_emails.delay([first.pk, second.pk]).get() == 1  # the retry's count
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.attempts, second.attempts) == (2, 1)
    assert first.sent_at and second.sent_at and first.error == ""
    assert sorted(m.to[0] for m in mail.outbox) == sorted([researcher.email, steward_a.email])


def test_the_task_gives_up_after_its_retries_and_the_sweep_stops_at_the_limit(
    researcher, flaky_mail
):
    row = NotificationFactory(recipient=researcher)
    flaky_mail(100)
    assert send_notification_emails.delay([row.pk]).get() == 0
    row.refresh_from_db()
    task_attempts = 1 + send_notification_emails.max_retries
    assert row.attempts == task_attempts and row.sent_at is None and row.error
    later = timezone.now() + timedelta(minutes=5)
    for _ in range(notifications.MAX_ATTEMPTS + 2):
        notifications.resend_unsent(now=later)
    row.refresh_from_db()
    assert row.attempts == notifications.MAX_ATTEMPTS and row.sent_at is None
    assert mail.outbox == []


def test_the_sweep_resends_only_rows_due_and_unsent(researcher):
    now = timezone.now()
    due = NotificationFactory(recipient=researcher, created_at=now - timedelta(minutes=5))
    NotificationFactory(recipient=researcher, created_at=now - timedelta(minutes=5), sent_at=now)
    NotificationFactory(recipient=researcher, created_at=now)  # the task may still be on its way
    NotificationFactory(recipient=researcher, created_at=now - timedelta(minutes=5), email=False)
    NotificationFactory(
        recipient=researcher,
        created_at=now - timedelta(minutes=5),
        attempts=notifications.MAX_ATTEMPTS,
    )
    NotificationFactory(recipient=researcher, created_at=now - timedelta(days=3))  # stale
    assert notifications.unsent_ids(now=now) == [due.pk]
    assert app.tasks["accounts.resend_notification_emails"].delay().get() == 1
    assert [m.subject for m in mail.outbox] == [f"[OPTIMA] {due.subject}"]
    assert notifications.resend_unsent(now=now) == 0


def test_a_row_is_never_sent_twice(researcher):
    row = NotificationFactory(recipient=researcher)
    assert send_notification_emails.delay([row.pk]).get() == 1
    assert send_notification_emails.delay([row.pk, row.pk]).get() == 0
    assert notifications.resend_unsent(now=timezone.now() + timedelta(minutes=5)) == 0
    assert notifications.send_pending([row.pk]).sent == []
    assert len(mail.outbox) == 1
    row.refresh_from_db()
    assert row.attempts == 1


def test_the_tasks_and_the_sweep_are_registered_and_scheduled_by_name():
    from accounts.beat import SCHEDULE

    app.loader.import_default_modules()
    names = {"accounts.send_notification_emails", "accounts.resend_notification_emails"}
    assert names <= set(app.tasks)
    assert "accounts.resend_notification_emails" in {e["task"] for e in SCHEDULE.values()}


# --- In-app: own notifications only -----------------------------------------------------------


def test_in_app_list_unread_count_and_mark_read(client_as, api_as, researcher):
    NotificationFactory(recipient=researcher, subject="One", url="/governance/requests/")
    NotificationFactory(recipient=researcher, subject="Two")
    client = client_as(researcher)
    count = client.get("/notifications/count/", HTTP_HX_REQUEST="true")
    assert b'aria-label="2 unread"' in count.content
    page = client.get("/notifications/")
    assert page.status_code == 200 and b"One" in page.content and b"2 unread" in page.content
    first = Notification.objects.get(subject="One")
    response = client.post(f"/notifications/{first.pk}/read/")
    assert response["Location"] == "/governance/requests/"
    api = api_as(researcher)
    assert api.get("/api/notifications/unread-count/").json() == {"unread": 1}
    assert [n["subject"] for n in api.get("/api/notifications/?unread=true").json()["results"]] == [
        "Two"
    ]
    client.post("/notifications/read/")
    assert api.get("/api/notifications/unread-count/").json() == {"unread": 0}


def test_the_api_marks_read_by_ids_or_all_and_refuses_neither(api_as, researcher):
    one, two, three = (NotificationFactory(recipient=researcher) for _ in range(3))
    api = api_as(researcher)
    assert api.post("/api/notifications/mark-read/", {}, format="json").status_code == 400
    response = api.post("/api/notifications/mark-read/", {"ids": [one.pk, two.pk]}, format="json")
    assert response.json() == {"unread": 1}
    assert api.post(f"/api/notifications/{three.pk}/read/").json()["read_at"] is not None
    assert api.post("/api/notifications/mark-read/", {"all": True}, format="json").json() == {
        "unread": 0
    }


def test_another_persons_notification_answers_404_and_stays_unread(
    client_as, api_as, researcher, outsider
):
    theirs = NotificationFactory(recipient=researcher, subject="Private matter")
    api = api_as(outsider)
    assert api.get(f"/api/notifications/{theirs.pk}/").status_code == 404
    assert api.post(f"/api/notifications/{theirs.pk}/read/").status_code == 404
    assert api.post(
        "/api/notifications/mark-read/", {"ids": [theirs.pk]}, format="json"
    ).json() == {"unread": 0}
    assert api.get("/api/notifications/").json()["results"] == []
    client = client_as(outsider)
    assert client.post(f"/notifications/{theirs.pk}/read/").status_code == 404
    client.post("/notifications/read/")
    assert b"Private matter" not in client.get("/notifications/").content
    assert notifications.mark_read(user=outsider, ids=[theirs.pk]) == 0
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert api_as(researcher).get(f"/api/notifications/{theirs.pk}/").status_code == 200


def test_the_list_page_and_api_use_a_constant_number_of_queries(
    client_as, api_as, researcher, hospital_a
):
    def queries(url, client):
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    NotificationFactory.create_batch(2, recipient=researcher, organisation=hospital_a)
    client, api = client_as(researcher), api_as(researcher)
    queries("/notifications/", client)  # the first request of a session does more
    few = (queries("/notifications/", client), queries("/api/notifications/", api))
    NotificationFactory.create_batch(25, recipient=researcher, organisation=hospital_a)
    many = (queries("/notifications/", client), queries("/api/notifications/", api))
    assert few == many


def test_the_header_loads_the_count_with_htmx_and_old_addresses_redirect(client_as, researcher):
    client = client_as(researcher)
    page = client.get("/dashboard/")
    assert b'hx-get="/notifications/count/"' in page.content
    assert client.get("/governance/notifications/?page=2")["Location"] == "/notifications/?page=2"
    assert client.get("/governance/notifications/count/")["Location"] == "/notifications/count/"
