"""The move of governance's and feedback's notifications into ``accounts.Notification``: the old
rows are copied (and copied back when the migrations are reversed)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from tests.factories import OrganisationFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("governance", "0001_initial"), ("feedback", "0001_initial")]
AFTER = [
    ("governance", "0002_move_notifications_to_accounts"),
    ("feedback", "0002_move_notifications_to_accounts"),
]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_old_rows_are_copied_into_accounts_and_back():
    user = UserFactory(username="moved")
    site = OrganisationFactory(slug="site-moved")
    sent = timezone.now() - timedelta(days=1)
    old = _migrate(BEFORE)
    try:
        old.get_model("governance", "Notification").objects.create(
            user_id=user.pk,
            event="agreement.sent",
            title="Agreement A-1 is out for signature",
            url="/governance/agreements/1/",
            emailed_at=sent,
        )
        item = old.get_model("feedback", "FeedbackItem").objects.create(
            title="Broken chart",
            description="It does not render.",
            site_id=site.pk,
            author_id=user.pk,
        )
        old.get_model("feedback", "Notification").objects.create(
            item_id=item.pk,
            recipient_id=user.pk,
            kind="status",
            subject="[OPTIMA feedback #1] Triaged: Broken chart",
            body="Hello",
            error="mail server down",
        )
        new = _migrate(AFTER)
        rows = {
            n.verb: n
            for n in new.get_model("accounts", "Notification").objects.filter(recipient_id=user.pk)
        }
        assert set(rows) == {"agreement.sent", "feedback.status_changed"}
        agreement = rows["agreement.sent"]
        assert agreement.subject == "Agreement A-1 is out for signature"
        assert agreement.sent_at == sent and agreement.read_at is None
        feedback = rows["feedback.status_changed"]
        assert feedback.url == f"/feedback/{item.pk}/"
        assert (feedback.object_type, feedback.object_id) == ("feedback.feedbackitem", str(item.pk))
        assert feedback.sent_at is None and feedback.error == "mail server down"
        assert feedback.email and feedback.attempts == 1  # the sweep may still send it

        back = _migrate(BEFORE)
        assert back.get_model("governance", "Notification").objects.get().emailed_at == sent
        assert back.get_model("feedback", "Notification").objects.get().item_id == item.pk
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
