"""Demo seeding (idempotent) and the periodic jobs (reminders, expiry) with their schedule."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from accounts import demo as accounts_demo
from accounts.models import Notification
from governance import beat, demo, jobs, services
from governance.models import (
    AccessRequest,
    Agreement,
    AgreementStatus,
    Decision,
    Entitlement,
    RequestStatus,
)
from governance.selectors import entitled_datasets
from tests.governance.factories import active_agreement, complete_draft, published_dataset

pytestmark = pytest.mark.django_db


def test_seed_makes_agreements_requests_and_entitlements_idempotently(django_user_model):
    orgs = accounts_demo.seed()
    for code in ("de", "fr", "nl"):
        published_dataset(orgs[code], title=f"Lung {code}")
        published_dataset(orgs[code], title=f"Breast {code}")
    demo.seed()
    counts = (Agreement.objects.count(), AccessRequest.objects.count(), Entitlement.objects.count())
    demo.seed()
    assert (
        Agreement.objects.count(),
        AccessRequest.objects.count(),
        Entitlement.objects.count(),
    ) == counts
    agreements = Agreement.objects.filter(status=AgreementStatus.ACTIVE)
    assert agreements.count() == 4
    for agreement in agreements:
        assert agreement.signatures.count() == 2 and agreement.signed_document_sha256
        assert agreement.parties.filter(organisation__slug="eicor").exists()
    researcher = django_user_model.objects.get(username="researcher")
    assert entitled_datasets(user=researcher, access_mode="federated_analytics").count() == 4
    assert (
        AccessRequest.objects.get(project_title=demo.APPROVED_TITLE).status
        == RequestStatus.APPROVED
    )
    assert (
        AccessRequest.objects.get(project_title=demo.PENDING_TITLE).status
        == RequestStatus.SUBMITTED
    )


def test_seed_without_catalogue_data_still_makes_agreements():
    accounts_demo.seed()
    demo.seed()
    assert Agreement.objects.filter(status=AgreementStatus.ACTIVE).count() == 4
    assert not AccessRequest.objects.exists()


def test_the_beat_schedule_names_registered_tasks():
    from optima_portal.celery import app

    app.loader.import_default_modules()
    for entry in beat.SCHEDULE.values():
        assert entry["task"] in app.tasks, entry["task"]


@pytest.fixture
def active(hospital_a, institute, org_admin_a, signatory_a, signatory_i):
    return active_agreement(hospital_a, institute, expiry=date(2027, 3, 31))


def test_agreement_reminders_at_30_and_7_days_once_each(
    active, org_admin_a, signatory_a, signatory_i
):
    assert jobs.agreements_remind_expiry(today=date(2027, 2, 28)) == 0  # 31 days left
    assert jobs.agreements_remind_expiry(today=date(2027, 3, 1)) == 1  # 30 days left
    assert jobs.agreements_remind_expiry(today=date(2027, 3, 2)) == 0
    assert jobs.agreements_remind_expiry(today=date(2027, 3, 24)) == 1  # 7 days left
    assert jobs.agreements_remind_expiry(today=date(2027, 3, 25)) == 0
    told = Notification.objects.filter(verb="agreement.expiry_reminder")
    assert told.count() == 6  # two reminders × (org admin A, signatory A, signatory I)
    assert {n.subject for n in told} == {
        f"Agreement {active.reference} expires in 30 days",
        f"Agreement {active.reference} expires in 7 days",
    }


def test_a_late_first_run_sends_one_reminder_not_two(active):
    assert jobs.agreements_remind_expiry(today=date(2027, 3, 28)) == 1
    assert jobs.agreements_remind_expiry(today=date(2027, 3, 29)) == 0
    active.refresh_from_db()
    assert active.reminders_sent == [7, 30]


def test_agreements_expire_on_their_date(active):
    assert jobs.agreements_expire(today=date(2027, 3, 30)) == 0
    assert jobs.agreements_expire(today=date(2027, 3, 31)) == 1
    active.refresh_from_db()
    assert active.status == AgreementStatus.EXPIRED


def test_request_reminders_follow_the_setting(settings, researcher, dac_a, dataset_a):
    r = complete_draft(researcher, [dataset_a])
    services.access_request_submit(actor=researcher, access_request=r)
    since = Decision.objects.get(request=r).waiting_since
    assert jobs.requests_remind(now=since + timedelta(days=13)) == 0
    assert jobs.requests_remind(now=since + timedelta(days=14, minutes=1)) == 1
    assert jobs.requests_remind(now=since + timedelta(days=15)) == 0  # once per delay
    assert jobs.requests_remind(now=since + timedelta(days=29)) == 1
    settings.GOVERNANCE_REQUEST_REMINDER_DAYS = 3
    r2 = complete_draft(researcher, [dataset_a])
    services.access_request_submit(actor=researcher, access_request=r2)
    since2 = Decision.objects.get(request=r2).waiting_since
    assert jobs.requests_remind(now=since2 + timedelta(days=3, minutes=1)) >= 1
    assert Notification.objects.filter(verb="request.reminder", recipient=dac_a).exists()


def test_decided_requests_are_not_reminded(researcher, dac_a, dataset_a, hospital_a, institute):
    active_agreement(hospital_a, institute)
    r = complete_draft(researcher, [dataset_a])
    services.access_request_submit(actor=researcher, access_request=r)
    services.decision_approve(actor=dac_a, decision=Decision.objects.get(request=r))
    since = Decision.objects.get(request=r).waiting_since
    assert jobs.requests_remind(now=since + timedelta(days=20)) == 0


def test_run_all_is_idempotent(active):
    first = jobs.run_all()
    assert jobs.run_all() == dict.fromkeys(first, 0)
