"""`make run` on another port: every link and URI follows it; the ready banner is the last thing
printed, with no seeded e-mail echoed after it."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.management import call_command

from accounts import demo as accounts_demo
from accounts import services as accounts_services
from accounts.models import Role
from accounts.notifications import notify
from catalogue import demo as catalogue_demo
from catalogue import export
from feedback import services as feedback_services
from optima_portal import devrun
from optima_portal.celery import app
from tests.factories import make_member
from tests.feedback.factories import FeedbackItemFactory

pytestmark = pytest.mark.django_db

BASE = "http://127.0.0.1:18801"
CONSOLE = "django.core.mail.backends.console.EmailBackend"


def test_it_sets_the_base_url_from_the_port_it_serves_unless_one_is_given():
    assert devrun._environment(18801, {}) == {"PORTAL_BASE_URL": BASE}
    assert devrun._environment(18801, {"PORTAL_BASE_URL": ""}) == {"PORTAL_BASE_URL": BASE}
    production = {"PORTAL_BASE_URL": "https://portal.example.org"}
    assert devrun._environment(18801, production) == {}


def test_the_banner_names_the_url_the_logins_and_the_second_factor():
    text = devrun.banner(url=f"{BASE}/", ready=True, started=["web", "worker"])
    assert f"is ready at {BASE}/" in text
    assert accounts_demo.DEMO_PASSWORD in text
    for _, username in accounts_demo.PERSONA_LOGINS:
        assert username in text
    assert "two-factor code" in text and "Started: web, worker." in text


def test_every_email_link_and_dcat_uri_uses_the_base_url(
    settings, hospital_a, platform_org, django_capture_on_commit_callbacks
):
    settings.PORTAL_BASE_URL = BASE
    org_admin = make_member(hospital_a, Role.ORG_ADMIN, username="orgadmin_a")
    with django_capture_on_commit_callbacks(execute=True):
        accounts_services.invitation_send(
            actor=org_admin, organisation=hospital_a, email="new@example.org", roles=["researcher"]
        )
    signatory = make_member(hospital_a, Role.SIGNATORY, username="signatory_a")
    with django_capture_on_commit_callbacks(execute=True):
        notify(
            recipients=[signatory],
            verb="agreement.activated",
            subject="Agreement active",
            url="/governance/",
        )
    clinician = make_member(hospital_a, Role.CLINICIAN, username="clinician_a")
    item = FeedbackItemFactory(site=hospital_a, author=clinician, title="A bug")
    triager = make_member(platform_org, Role.CURATOR, username="triager")
    with django_capture_on_commit_callbacks(execute=True):
        feedback_services.comment_add(user=triager, item=item, body="Which browser?")

    invitation, agreement, feedback = mail.outbox
    assert f"{BASE}/invitations/" in invitation.body
    assert f"{BASE}/governance/" in agreement.body
    assert f"{BASE}/feedback/{item.pk}/" in feedback.body
    for message in mail.outbox:
        assert ":8000" not in message.body

    accounts_demo.seed()
    catalogue_demo.seed()
    turtle = export.full_graph().serialize(format="turtle")
    assert f"<{BASE}/catalogue/datasets/" in turtle
    assert ":8000" not in turtle


def test_seeding_runs_mail_tasks_inline_and_discards_their_mail(
    settings, hospital_a, capsys, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = CONSOLE
    app.conf.task_always_eager = False  # as in `make run`: tasks go to the worker
    user = make_member(hospital_a, Role.RESEARCHER, username="researcher_a")
    with accounts_demo.seed_mail_discarded(), django_capture_on_commit_callbacks(execute=True):
        (notice,) = notify(recipients=[user], verb="request.submitted", subject="Submitted")
    notice.refresh_from_db()
    assert notice.sent_at is not None  # handled now, not left queued for the worker
    assert "Subject:" not in capsys.readouterr().out
    assert app.conf.task_always_eager is False
    assert settings.EMAIL_BACKEND == CONSOLE


def test_seed_demo_echoes_no_email(settings, capsys):
    settings.EMAIL_BACKEND = CONSOLE
    call_command("seed_demo", "--quiet-logins")
    out = capsys.readouterr().out
    assert "Catalogue:" in out and "Governance:" in out
    assert "Subject:" not in out and "Content-Type:" not in out
