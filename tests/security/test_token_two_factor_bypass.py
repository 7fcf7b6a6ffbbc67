"""Probe finding: a personal API token bypassed two-factor authentication.

A DAC member without any TOTP device decided access requests with a token; a token created while
its owner was a plain researcher kept working (with the new powers) after a DAC role was added.
"""

from __future__ import annotations

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from accounts import otp
from accounts import services as account_services
from accounts.models import ApiToken, AuditEvent, Role
from governance import services
from governance.models import Decision, DecisionStatus
from tests.factories import make_member
from tests.governance.factories import active_agreement, complete_draft, published_dataset

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _enforced(settings):
    settings.OTP_ENFORCED = True


@pytest.fixture
def decision(hospital_a, institute, researcher):
    dataset = published_dataset(hospital_a, title="NSCLC cohort A")
    active_agreement(hospital_a, institute)
    draft = complete_draft(researcher, [dataset])
    request = services.access_request_submit(actor=researcher, access_request=draft)
    return Decision.objects.get(request=request, custodian=hospital_a)


def _device(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", key=otp.DEMO_TOTP_KEY, confirmed=True)


def _with_token(user) -> APIClient:
    _token, raw = ApiToken.issue(user=user, name="script")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    return client


def _approve(client: APIClient, decision: Decision):
    url = f"/api/access-requests/{decision.request_id}/decisions/hospital-a/approve/"
    return client.post(url, {"reason": "Fine."}, format="json")


def _unchanged(decision: Decision, events_before: int) -> bool:
    decision.refresh_from_db()
    return (
        decision.status == DecisionStatus.PENDING
        and decision.decided_by_id is None
        and AuditEvent.objects.count() == events_before
    )


def test_a_dac_members_token_without_a_device_cannot_decide(dac_a, decision):
    client = _with_token(dac_a)
    events = AuditEvent.objects.count()
    response = _approve(client, decision)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "two_factor_required"
    assert "/accounts/2fa/enrol/" in error["message"]
    assert _unchanged(decision, events)
    # Reads are refused too: the token does not act at all.
    assert client.get("/api/access-requests/").status_code == 403
    # An unconfirmed (half-enrolled) device is no device.
    TOTPDevice.objects.create(user=dac_a, name="phone", key=otp.DEMO_TOTP_KEY, confirmed=False)
    assert _approve(client, decision).status_code == 403
    assert _unchanged(decision, events)


def test_with_a_confirmed_device_the_token_decides(dac_a, decision):
    _device(dac_a)
    response = _approve(_with_token(dac_a), decision)
    assert response.status_code == 200, response.content
    decision.refresh_from_db()
    assert decision.status == DecisionStatus.APPROVED and decision.decided_by == dac_a


def test_the_rule_follows_the_session_predicate(researcher, settings):
    """Roles added to OTP_REQUIRED_ROLES (and staff) need a device for their tokens too."""
    client = _with_token(researcher)
    assert client.get("/api/access-requests/").status_code == 200
    settings.OTP_REQUIRED_ROLES = ["researcher"]
    response = client.get("/api/access-requests/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "two_factor_required"
    settings.OTP_ENFORCED = False
    assert client.get("/api/access-requests/").status_code == 200


def test_a_staff_token_needs_a_device(platform_admin):
    client = _with_token(platform_admin)
    assert client.get("/api/audit/").status_code == 403
    _device(platform_admin)
    assert client.get("/api/audit/").status_code == 200


def test_a_token_does_not_gain_a_role_granted_after_it_was_issued(
    hospital_a, org_admin_a, decision
):
    person = make_member(hospital_a, Role.DATA_STEWARD, username="promoted")
    _device(person)
    old = _with_token(person)
    assert old.get("/api/access-requests/").status_code == 200
    account_services.membership_set_roles(
        actor=org_admin_a,
        organisation=hospital_a,
        user=person,
        roles=[Role.DATA_STEWARD, Role.DAC_MEMBER],
    )
    events = AuditEvent.objects.count()
    response = _approve(old, decision)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "token_scope_outdated"
    assert "/accounts/tokens/" in response.json()["error"]["message"]
    assert _unchanged(decision, events)
    # A new token, issued with the new role, acts.
    assert _approve(_with_token(person), decision).status_code == 200


def test_the_tokens_page_says_which_tokens_need_renewal(client, hospital_a, org_admin_a):
    person = make_member(hospital_a, Role.DATA_STEWARD, username="promoted")
    ApiToken.issue(user=person, name="notebook")
    account_services.membership_set_roles(
        actor=org_admin_a, organisation=hospital_a, user=person, roles=[Role.CURATOR]
    )
    client.force_login(person)
    page = client.get("/accounts/tokens/").content.decode()
    assert "issued before your current roles" in page


def test_becoming_staff_later_is_a_grown_scope_too(steward_a):
    client = _with_token(steward_a)
    steward_a.is_staff = True
    steward_a.save()
    _device(steward_a)
    response = client.get("/api/access-requests/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "token_scope_outdated"


def test_losing_a_role_keeps_the_token_working_with_less(hospital_a, org_admin_a):
    person = make_member(hospital_a, Role.DATA_STEWARD, Role.CURATOR, username="demoted")
    client = _with_token(person)
    account_services.membership_set_roles(
        actor=org_admin_a, organisation=hospital_a, user=person, roles=[Role.DATA_STEWARD]
    )
    assert client.get("/api/access-requests/").status_code == 200


def test_tokens_issued_before_scopes_were_recorded_must_be_replaced(steward_a):
    token, raw = ApiToken.issue(user=steward_a, name="old")
    ApiToken.objects.filter(pk=token.pk).update(scope=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    response = client.get("/api/access-requests/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "token_scope_outdated"
