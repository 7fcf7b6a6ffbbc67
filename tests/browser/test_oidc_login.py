"""Federated login against a real OpenID Connect provider (tests/oidc_provider, its own process).

No mocked endpoint: the portal discovers the provider, redirects the browser there, exchanges the
code (with PKCE, which the provider requires) and checks the signed ID token; logout ends the
provider's session too (RP-initiated logout).
"""

from __future__ import annotations

import base64

import pytest
from django.urls import reverse

from accounts import otp
from accounts.models import AuditEvent, FederatedIdentity, Invitation, Role
from governance import services as governance
from governance.models import Decision
from tests.governance.factories import active_agreement, complete_draft, published_dataset
from tests.oidc_provider import server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DANA = {"username": "dana", "password": "provider-pw-dana", "email": "dana@hospital-a.example"}
MONA = {"username": "mona", "password": "provider-pw-mona", "email": "mona@hospital-a.example"}
PROVIDER_NAME = "Test institution"


@pytest.fixture(scope="session")
def provider(live_server, tmp_path_factory):
    running = server.start(
        tmp_path_factory.mktemp("oidc-provider"),
        portal_url=live_server.url,
        users=[
            {**DANA, "first_name": "Dana", "last_name": "Decider"},
            {**MONA, "first_name": "Mona", "last_name": "Multi", "mfa": True},
        ],
    )
    yield running
    running.stop()


@pytest.fixture
def portal(provider, settings):
    settings.OTP_ENFORCED = True
    settings.OIDC_PROVIDERS = {
        "test": {
            "issuer": provider.issuer,
            "client_id": server.CLIENT_ID,
            "client_secret": server.CLIENT_SECRET,
            "name": PROVIDER_NAME,
            "scope": "openid email profile",
            "claim_map": {},
        }
    }
    return provider


@pytest.fixture
def submitted_request(hospital_a, institute, researcher):
    dataset = published_dataset(hospital_a, title="NSCLC cohort A")
    active_agreement(hospital_a, institute)
    draft = complete_draft(researcher, [dataset])
    return governance.access_request_submit(actor=researcher, access_request=draft)


def _invite(hospital_a, email: str) -> str:
    raw, token_hash = Invitation.new_token()
    Invitation.objects.create(
        organisation=hospital_a,
        email=email,
        roles=[Role.DAC_MEMBER],
        token_hash=token_hash,
        expires_at=Invitation.default_expiry(),
    )
    return raw


def _sign_in_at_provider(page, person: dict) -> None:
    """On the provider's own page (another origin: the portal's axe/CSP checks do not apply)."""
    page.pw.wait_for_url("http://127.0.0.1:*/accounts/login/**")
    page.pw.get_by_label("Provider username").fill(person["username"])
    page.pw.get_by_label("Provider password").fill(person["password"])
    page.pw.get_by_role("button", name="Sign in at the provider").click()


def _log_out_everywhere(page, live_server) -> None:
    page.logout()
    # The provider ended its session and sent the browser back to the portal's log-in page.
    page.pw.wait_for_url(f"{live_server.url}/accounts/login/")
    page.check()


def test_it_logs_in_through_the_provider_links_invitations_and_guards_dac_decisions(
    page, portal, live_server, hospital_a, submitted_request
):
    request_url = reverse("governance:request_detail", args=[submitted_request.pk])
    _invite(hospital_a, MONA["email"])
    dana_invitation = _invite(hospital_a, DANA["email"])

    # Mona's provider asserts MFA (amr "mfa"): the DAC decision is open at once.
    page.goto(f"/accounts/login/?next={request_url}")
    page.get_by_role("link", name=f"Log in with {PROVIDER_NAME}").click()
    _sign_in_at_provider(page, MONA)
    page.pw.wait_for_url(f"{live_server.url}{request_url}")
    page.check()
    assert page.get_by_role("button", name="Approve").first.is_visible()
    mona = FederatedIdentity.objects.get(email=MONA["email"]).user
    assert mona.has_usable_password() is False
    _log_out_everywhere(page, live_server)

    # Dana follows her invitation link; her provider asserts only a password.
    page.goto(reverse("accounts:invitation_accept", args=[dana_invitation]))
    page.get_by_role("link", name=f"Log in with {PROVIDER_NAME}").click()
    _sign_in_at_provider(page, DANA)  # the provider's session ended: it asks again
    # Invited as a DAC member, she is sent to set up the portal's TOTP before anything else.
    page.pw.wait_for_url("**/accounts/2fa/enrol/**")
    page.goto(request_url)
    assert "/accounts/2fa/enrol/" in page.pw.url
    assert page.get_by_role("button", name="Approve").count() == 0
    secret = page.pw.locator("#otp-secret").inner_text()
    key_hex = base64.b32decode(secret + "=" * (-len(secret) % 8)).hex()
    page.get_by_label("Code from your authenticator app").fill(otp.current_code(key_hex))
    page.get_by_role("button", name="Confirm").click()
    page.pw.wait_for_url(f"{live_server.url}{request_url}")
    page.check()
    page.get_by_role("button", name="Approve").first.click()
    page.wait_for_load_state("networkidle")
    page.check()
    decision = Decision.objects.get(request=submitted_request, custodian=hospital_a)
    assert decision.status == "approved"
    assert decision.decided_by.username == "dana"
    # Her account page names the linked provider; she keeps recovery codes for her new TOTP.
    page.goto(reverse("accounts:api_tokens"))
    assert page.get_by_text(f"{PROVIDER_NAME} ({DANA['email']})").is_visible()
    page.get_by_role("link", name="Recovery codes").click()
    page.get_by_role("button", name="Create 10 recovery codes").click()
    page.wait_for_load_state("networkidle")
    page.check()
    assert page.locator("#recovery-codes li").count() == 10
    _log_out_everywhere(page, live_server)

    logins = AuditEvent.objects.filter(action="account.oidc_login").order_by("seq")
    assert [(e.actor.username, e.payload["mfa"], e.payload["new_account"]) for e in logins] == [
        ("mona", True, True),
        ("dana", False, True),
    ]
    assert all(e.payload["issuer"] == portal.issuer for e in logins)
    accepted = AuditEvent.objects.filter(action="invitation.accepted").order_by("seq")
    assert [e.actor.username for e in accepted] == ["mona", "dana"]
