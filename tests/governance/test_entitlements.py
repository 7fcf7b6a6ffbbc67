"""Entitlements: granted on approval with guardian permissions, revoked, expired, suspended when their
agreement ends or the terms change, renewed; and the selectors the federation app calls."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError

from governance import jobs, selectors, services
from governance.models import (
    AccessRequest,
    Decision,
    Entitlement,
    EntitlementStatus,
    RequestStatus,
    SuspensionReason,
)
from tests.governance.factories import active_agreement, complete_draft, publish_version

pytestmark = pytest.mark.django_db
FA = "federated_analytics"


def _fresh(user):
    # guardian caches permissions on the user object
    return get_user_model().objects.get(pk=user.pk)


def _can(user, dataset, perm="catalogue.run_federated_analysis") -> bool:
    return _fresh(user).has_perm(perm, dataset)


@pytest.fixture
def approved(researcher, teammate, dac_a, hospital_a, institute, dataset_a):
    hospital_a.time_zone = "Europe/Berlin"
    hospital_a.save()
    agreement = active_agreement(hospital_a, institute)
    r = complete_draft(
        researcher, [dataset_a], team=[teammate], requested_end_date=date(2030, 6, 30)
    )
    services.access_request_submit(actor=researcher, access_request=r)
    decision = Decision.objects.get(request=r)
    services.decision_approve(actor=dac_a, decision=decision)
    return r, agreement


def test_approval_grants_one_entitlement_per_team_member(approved, researcher, teammate, dataset_a):
    r, agreement = approved
    rows = Entitlement.objects.filter(request=r).order_by("holder__username")
    assert [e.holder for e in rows] == [researcher, teammate]
    e = rows[0]
    assert (e.dataset, e.access_mode, e.agreement, e.status) == (dataset_a, FA, agreement, "active")
    assert e.ends_at == datetime(2030, 6, 30, 23, 59, 59, tzinfo=ZoneInfo("Europe/Berlin"))
    assert e.terms == dataset_a.current_terms_of_use
    assert _can(researcher, dataset_a) and _can(teammate, dataset_a)
    assert not _can(researcher, dataset_a, "catalogue.run_federated_learning")


def test_the_selectors_for_the_federation_app(approved, researcher, outsider, dataset_a, dataset_b):
    assert (
        selectors.missing_entitlements(user=researcher, datasets=[dataset_a], access_mode=FA) == []
    )
    assert selectors.missing_entitlements(
        user=researcher, datasets=[dataset_a, dataset_b], access_mode=FA
    ) == [dataset_b]
    assert selectors.missing_entitlements(
        user=researcher, datasets=[dataset_a], access_mode="federated_learning"
    ) == [dataset_a]
    assert selectors.missing_entitlements(user=outsider, datasets=[dataset_a], access_mode=FA) == [
        dataset_a
    ]
    assert list(selectors.entitled_datasets(user=researcher, access_mode=FA)) == [dataset_a]
    assert list(selectors.entitled_datasets(user=outsider, access_mode=FA)) == []


def test_revoking_removes_the_permission(approved, dac_a, dac_b, researcher, dataset_a):
    e = Entitlement.objects.get(holder=researcher)
    with pytest.raises(PermissionDenied):
        services.entitlement_revoke(actor=dac_b, entitlement=e, reason="x")
    with pytest.raises(PermissionDenied):
        services.entitlement_revoke(actor=researcher, entitlement=e, reason="x")
    with pytest.raises(ValidationError):
        services.entitlement_revoke(actor=dac_a, entitlement=e, reason="")
    assert _can(researcher, dataset_a)
    services.entitlement_revoke(actor=dac_a, entitlement=e, reason="Misuse reported")
    e.refresh_from_db()
    assert (e.status, e.revoked_reason, e.revoked_by) == ("revoked", "Misuse reported", dac_a)
    assert not _can(researcher, dataset_a)
    assert selectors.missing_entitlements(
        user=researcher, datasets=[dataset_a], access_mode=FA
    ) == [dataset_a]


def test_revoking_one_of_two_entitlements_keeps_the_permission(
    approved, dac_a, researcher, dataset_a, institute
):
    r2 = complete_draft(researcher, [dataset_a])
    services.access_request_submit(actor=researcher, access_request=r2)
    services.decision_approve(actor=dac_a, decision=Decision.objects.get(request=r2))
    first = Entitlement.objects.filter(holder=researcher).order_by("pk").first()
    services.entitlement_revoke(actor=dac_a, entitlement=first, reason="Superseded")
    assert _can(researcher, dataset_a)


def test_expiry_job_ends_entitlements_and_removes_the_permission(
    approved, researcher, teammate, dataset_a
):
    e = Entitlement.objects.get(holder=researcher)
    assert jobs.entitlements_expire(now=e.ends_at - timedelta(seconds=1)) == 0
    assert jobs.entitlements_expire(now=e.ends_at + timedelta(seconds=1)) == 2
    assert jobs.entitlements_expire(now=e.ends_at + timedelta(seconds=2)) == 0
    e.refresh_from_db()
    assert e.status == EntitlementStatus.EXPIRED
    assert not _can(researcher, dataset_a) and not _can(teammate, dataset_a)


def test_an_expired_agreement_suspends_the_entitlements_resting_on_it(
    approved, researcher, dataset_a
):
    _, agreement = approved
    assert jobs.agreements_expire(today=agreement.expiry_date) == 1
    e = Entitlement.objects.get(holder=researcher)
    assert (e.status, e.suspension_reason) == ("suspended", SuspensionReason.AGREEMENT_ENDED)
    assert not _can(researcher, dataset_a)
    assert researcher.notifications.filter(verb="entitlement.suspended").exists()


def test_a_terminated_agreement_suspends_too(approved, org_admin_a, researcher, dataset_a):
    _, agreement = approved
    services.agreement_terminate(actor=org_admin_a, agreement=agreement, reason="Breach")
    assert Entitlement.objects.filter(status="suspended").count() == 2
    assert not _can(researcher, dataset_a)


def test_changed_terms_must_be_accepted_again(approved, researcher, teammate, dataset_a):
    publish_version(dataset_a, terms_text="New terms: acknowledge the hospital.")
    # The selector refuses at once, before any job ran.
    assert selectors.missing_entitlements(
        user=researcher, datasets=[dataset_a], access_mode=FA
    ) == [dataset_a]
    assert jobs.entitlements_check_terms() == 2
    e = Entitlement.objects.get(holder=researcher)
    assert (e.status, e.suspension_reason) == ("suspended", SuspensionReason.TERMS_CHANGED)
    assert not _can(researcher, dataset_a)
    with pytest.raises(PermissionDenied):
        services.entitlement_accept_terms(actor=teammate, entitlement=e)
    services.entitlement_accept_terms(actor=researcher, entitlement=e)
    e.refresh_from_db()
    assert e.status == "active" and e.terms.version == 2
    assert _can(researcher, dataset_a)
    assert (
        selectors.missing_entitlements(user=researcher, datasets=[dataset_a], access_mode=FA) == []
    )
    assert selectors.missing_entitlements(user=teammate, datasets=[dataset_a], access_mode=FA) == [
        dataset_a
    ]


def test_withdrawing_revokes_what_was_granted(
    researcher, dac_a, dac_b, hospital_a, hospital_b, institute, dataset_a, dataset_b
):
    active_agreement(hospital_a, institute)
    r = complete_draft(researcher, [dataset_a, dataset_b])
    services.access_request_submit(actor=researcher, access_request=r)
    services.decision_approve(
        actor=dac_a, decision=Decision.objects.get(request=r, custodian=hospital_a)
    )
    assert _can(researcher, dataset_a)
    services.access_request_withdraw(actor=researcher, access_request=r)
    assert not _can(researcher, dataset_a)
    assert Entitlement.objects.get().status == "revoked"


def test_renewal_reminder_and_one_click_renewal(approved, client_as, researcher, teammate):
    r, _ = approved
    e = Entitlement.objects.get(holder=researcher)
    assert jobs.entitlements_remind(now=e.ends_at - timedelta(days=20)) == 0
    assert jobs.entitlements_remind(now=e.ends_at - timedelta(days=13)) == 2
    assert jobs.entitlements_remind(now=e.ends_at - timedelta(days=12)) == 0
    note = researcher.notifications.get(verb="entitlement.expiry_reminder")
    assert note.url == f"/governance/entitlements/{e.pk}/renew/"
    client = client_as(researcher)
    assert client.get(note.url).status_code == 200
    response = client.post(note.url)
    renewal = AccessRequest.objects.exclude(pk=r.pk).get()
    assert response["Location"] == f"/governance/requests/{renewal.pk}/edit/"
    assert renewal.renewal_of == r and renewal.status == RequestStatus.DRAFT
    assert renewal.project_title == r.project_title and renewal.lay_summary == r.lay_summary
    assert list(renewal.team_members.all()) == [teammate]
    assert renewal.items.get().dataset_id == e.dataset_id


def test_entitlement_pages_and_api(approved, client_as, api_as, researcher, dac_a, dac_b, outsider):
    e = Entitlement.objects.get(holder=researcher)
    page = client_as(researcher).get("/governance/entitlements/")
    assert page.status_code == 200 and b"NSCLC cohort A" in page.content
    assert api_as(outsider).get(f"/api/entitlements/{e.pk}/").status_code == 404
    assert api_as(dac_b).get(f"/api/entitlements/{e.pk}/").status_code == 404
    response = api_as(dac_a).post(
        f"/api/entitlements/{e.pk}/revoke/", {"reason": ""}, format="json"
    )
    assert response.status_code == 400
    response = api_as(dac_a).post(
        f"/api/entitlements/{e.pk}/revoke/", {"reason": "Ended"}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "revoked"
    listing = api_as(researcher).get("/api/entitlements/").json()
    assert listing["count"] == 1
    # Clients (issue 19) read the dataset's id and title off the entitlement.
    dataset = listing["results"][0]["dataset"]
    assert dataset["id"] == e.dataset_id and dataset["title"] == "NSCLC cohort A"


def test_the_researcher_dashboard_shows_entitlements(approved, client_as, researcher):
    page = client_as(researcher).get("/dashboard/")
    assert b"My entitlements" in page.content and b"NSCLC cohort A" in page.content


ENT_ROLES = ("researcher", "teammate", "dac_a", "dac_b", "outsider", "platform_admin")


@pytest.fixture
def ent_people(researcher, teammate, dac_a, dac_b, outsider, platform_admin):
    return {
        "researcher": researcher,
        "teammate": teammate,
        "dac_a": dac_a,
        "dac_b": dac_b,
        "outsider": outsider,
        "platform_admin": platform_admin,
    }


def _ent_snapshot(e):
    e = Entitlement.objects.get(pk=e.pk)
    return (e.status, e.terms_id, e.revoked_reason)


@pytest.mark.parametrize("role", ENT_ROLES)
@pytest.mark.parametrize(
    ("action", "terms_changed", "expected"),
    [
        ("revoke", False, {"dac_a": 200, "platform_admin": 200, "researcher": 403}),
        ("accept-terms", True, {"researcher": 200, "dac_a": 403, "platform_admin": 403}),
        ("renew", False, {"researcher": 201, "dac_a": 403, "platform_admin": 403}),
    ],
)
def test_entitlement_actions_by_role(
    api_as, approved, ent_people, dataset_a, role, action, terms_changed, expected
):
    e = Entitlement.objects.get(holder=ent_people["researcher"])
    if terms_changed:
        publish_version(dataset_a, terms_text="Changed")
        jobs.entitlements_check_terms()
    before = (_ent_snapshot(e), AccessRequest.objects.count())
    want = expected.get(role, 404)
    response = api_as(ent_people[role]).post(
        f"/api/entitlements/{e.pk}/{action}/", {"reason": "Because"}, format="json"
    )
    assert response.status_code == want, response.content
    if want >= 400:
        assert response.json()["error"]["message"]
        assert (_ent_snapshot(e), AccessRequest.objects.count()) == before
    else:
        assert (_ent_snapshot(e), AccessRequest.objects.count()) != before
