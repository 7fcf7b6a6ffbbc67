"""Federated login rules: linking by (issuer, sub), invitations, MFA claims, refusals, PASSWORD_LOGIN.

The token exchange itself runs against a real provider in tests/browser/test_oidc_login.py; here
the service is given the claims of an already validated ID token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import authenticate
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import oidc, otp
from accounts.checks import check_oidc_issuers
from accounts.models import AuditEvent, FederatedIdentity, Invitation, Membership, Role
from tests.factories import OrganisationFactory, UserFactory

pytestmark = pytest.mark.django_db
ISSUER = "https://login.example.org/oidc"
PROVIDER = oidc.Provider(
    key="lslogin",
    issuer=ISSUER,
    client_id="portal",
    client_secret="secret",
    name="LS Login",
    scope="openid email profile",
    claim_map={},
)


@pytest.fixture(autouse=True)
def _configured(settings):
    settings.OIDC_PROVIDERS = {
        PROVIDER.key: {
            "issuer": ISSUER,
            "client_id": "portal",
            "client_secret": "secret",
            "name": "LS Login",
            "scope": "openid email profile",
            "claim_map": {},
        }
    }


def _claims(sub="subject-1", email="ana@hospital-a.example", verified=True, **extra) -> dict:
    return {"iss": ISSUER, "sub": sub, "email": email, "email_verified": verified, **extra}


def _invite(organisation, email, *roles) -> Invitation:
    _raw, token_hash = Invitation.new_token()
    return Invitation.objects.create(
        organisation=organisation,
        email=email,
        roles=list(roles),
        token_hash=token_hash,
        expires_at=Invitation.default_expiry(),
    )


def test_it_links_by_issuer_and_subject_never_by_email(steward_a):
    steward_a.email = "ana@hospital-a.example"
    steward_a.save()
    first = oidc.federated_login(p=PROVIDER, claims=_claims(email=steward_a.email))
    # Same verified e-mail as an existing account: still a new account, with no role.
    assert first.created and first.user != steward_a
    assert not Membership.objects.filter(user=first.user).exists()
    assert not first.user.has_usable_password()
    again = oidc.federated_login(p=PROVIDER, claims=_claims(email="changed@example.org"))
    assert again.user == first.user and not again.created
    other_issuer = oidc.federated_login(
        p=PROVIDER, claims={**_claims(), "iss": "https://other.example.org"}
    )
    assert other_issuer.user not in (first.user, steward_a)
    event = AuditEvent.objects.filter(action="account.oidc_login").order_by("seq").first()
    assert event.payload["subject"] == "subject-1" and event.payload["new_account"] is True


def test_a_first_login_accepts_invitations_only_to_a_verified_email(hospital_a):
    invitation = _invite(hospital_a, "ana@hospital-a.example", Role.DAC_MEMBER)
    unverified = oidc.federated_login(p=PROVIDER, claims=_claims(verified=False))
    assert unverified.invitations == [] and unverified.user.email == ""
    assert not Membership.objects.filter(user=unverified.user).exists()

    verified = oidc.federated_login(p=PROVIDER, claims=_claims(sub="subject-2"))
    assert verified.invitations == [invitation]
    membership = Membership.objects.get(user=verified.user, organisation=hospital_a)
    assert membership.role_names == [Role.DAC_MEMBER]
    invitation.refresh_from_db()
    assert invitation.accepted_by == verified.user
    assert AuditEvent.objects.filter(action="invitation.accepted", actor=verified.user).exists()


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"amr": ["pwd", "mfa"]}, True),
        ({"amr": "mfa"}, True),
        ({"acr": "https://refeds.org/profile/mfa"}, True),
        ({"amr": ["pwd"]}, False),
        ({"acr": "https://refeds.org/profile/sfa"}, False),
        ({}, False),
    ],
)
def test_only_acr_or_amr_asserting_mfa_counts_as_a_second_factor(claims, expected):
    assert oidc.asserts_mfa(claims) is expected


def test_a_logged_in_person_links_an_identity_once(researcher, steward_a):
    linked = oidc.federated_login(p=PROVIDER, claims=_claims(), link_to=researcher)
    assert linked.linked and linked.user == researcher
    assert AuditEvent.objects.filter(action="account.oidc_linked", actor=researcher).exists()
    with pytest.raises(oidc.Refused) as refused:
        oidc.federated_login(p=PROVIDER, claims=_claims(), link_to=steward_a)
    assert refused.value.reason == "linked_to_another_account"
    assert FederatedIdentity.objects.get(subject="subject-1").user == researcher


def test_a_disabled_account_is_refused(researcher):
    oidc.federated_login(p=PROVIDER, claims=_claims(), link_to=researcher)
    researcher.is_active = False
    researcher.save()
    with pytest.raises(oidc.Refused) as refused:
        oidc.federated_login(p=PROVIDER, claims=_claims())
    assert refused.value.reason == "account_disabled"


def test_the_claim_map_grants_membership_without_roles_and_is_off_by_default(hospital_a):
    entitlement = "urn:geant:example.org:group:optima:hospital-a"
    plain = oidc.federated_login(p=PROVIDER, claims=_claims(eduperson_entitlement=[entitlement]))
    assert not Membership.objects.filter(user=plain.user).exists()

    mapped_provider = oidc.Provider(
        **{
            **PROVIDER.__dict__,
            "claim_map": {
                "claim": "eduperson_entitlement",
                "organisations": {entitlement: hospital_a.slug},
            },
        }
    )
    OrganisationFactory(name="Hospital Z", slug="hospital-z")
    mapped = oidc.federated_login(
        p=mapped_provider,
        claims=_claims(sub="subject-2", eduperson_entitlement=[entitlement, "urn:other"]),
    )
    membership = Membership.objects.get(user=mapped.user)
    assert membership.organisation == hospital_a and membership.role_names == []
    assert AuditEvent.objects.get(action="membership.claim_mapped").payload["value"] == entitlement


def test_a_callback_with_a_forged_state_is_refused_and_audited(client):
    response = client.get("/accounts/oidc/lslogin/callback/?code=stolen&state=forged")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    event = AuditEvent.objects.get(action="account.oidc_refused")
    assert event.payload["provider"] == "lslogin"
    assert event.payload["reason"].startswith("invalid_response")
    assert "_auth_user_id" not in client.session


def test_an_unknown_provider_is_a_404(client):
    assert client.get("/accounts/oidc/nowhere/login/").status_code == 404
    assert client.get("/accounts/oidc/nowhere/callback/").status_code == 404


def test_linking_needs_the_second_factor_the_role_requires(client, dac_a, settings):
    settings.OTP_ENFORCED = True
    TOTPDevice.objects.create(user=dac_a, name="phone", key=otp.DEMO_TOTP_KEY, confirmed=True)
    client.force_login(dac_a)
    response = client.post("/accounts/oidc/lslogin/link/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/2fa/verify/")
    assert "oidc_link_user" not in client.session


def test_the_login_page_offers_each_provider(client):
    html = client.get("/accounts/login/?next=/catalogue/").content.decode()
    assert 'href="/accounts/oidc/lslogin/login/?next=/catalogue/"' in html
    assert "Log in with LS Login" in html and 'name="password"' in html


def test_password_login_off_hides_and_refuses_passwords(client, researcher, hospital_a, settings):
    researcher.set_password("correct-horse-battery-9")
    researcher.save()
    settings.PASSWORD_LOGIN = False
    page = client.get("/accounts/login/").content.decode()
    assert 'name="password"' not in page and "Log in with LS Login" in page
    refused = client.post(
        "/accounts/login/",
        {"username": researcher.username, "password": "correct-horse-battery-9"},
    )
    assert refused.status_code == 403 and "_auth_user_id" not in client.session
    assert authenticate(username=researcher.username, password="correct-horse-battery-9") is None
    admin = client.post(
        "/admin/login/", {"username": researcher.username, "password": "correct-horse-battery-9"}
    )
    assert admin.status_code == 200 and "_auth_user_id" not in client.session
    # An invitation can no longer create a password account.
    raw, token_hash = Invitation.new_token()
    Invitation.objects.create(
        organisation=hospital_a,
        email="new@hospital-a.example",
        roles=[Role.RESEARCHER],
        token_hash=token_hash,
        expires_at=Invitation.default_expiry(),
    )
    signup = {
        "username": "newbie",
        "first_name": "New",
        "last_name": "Person",
        "password1": "correct-horse-battery-9",
        "password2": "correct-horse-battery-9",
    }
    assert client.post(f"/invitations/{raw}/", signup).status_code == 403
    assert not UserFactory._meta.model.objects.filter(username="newbie").exists()
    assert "Log in with LS Login" in client.get(f"/invitations/{raw}/").content.decode()


def test_logout_without_a_provider_session_ends_the_portal_session(client, researcher):
    client.force_login(researcher)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in client.session


def test_providers_are_read_from_the_environment_with_secrets_from_files(tmp_path):
    secret = tmp_path / "lslogin-secret"
    secret.write_text("s3cret-from-file")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(
        OPTIMA_VAR_DIR=str(tmp_path),
        OIDC_PROVIDERS="lslogin,egi",
        OIDC_LSLOGIN_ISSUER="https://login.aai.lifescience-ri.eu/oidc/",
        OIDC_LSLOGIN_CLIENT_ID="optima",
        OIDC_LSLOGIN_CLIENT_SECRET_FILE=str(secret),
        OIDC_LSLOGIN_NAME="LS Login",
        OIDC_LSLOGIN_CLAIM_MAP='{"claim": "eduperson_entitlement", "organisations": {}}',
        OIDC_EGI_ISSUER="https://aai.egi.eu/auth/realms/egi",
        OIDC_EGI_CLIENT_ID="optima-egi",
    )
    code = (
        "import json; from django.conf import settings; print(json.dumps(settings.OIDC_PROVIDERS))"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    configured = json.loads(result.stdout.strip().splitlines()[-1])
    assert configured["lslogin"]["client_secret"] == "s3cret-from-file"
    assert configured["lslogin"]["claim_map"]["claim"] == "eduperson_entitlement"
    assert configured["egi"]["name"] == "egi" and configured["egi"]["claim_map"] == {}
    del env["OIDC_EGI_ISSUER"]
    missing = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode != 0 and "OIDC_EGI_ISSUER" in missing.stderr


def test_check_deploy_warns_about_a_plain_http_issuer(settings):
    assert check_oidc_issuers() == []
    settings.OIDC_PROVIDERS = {
        "local": {**settings.OIDC_PROVIDERS["lslogin"], "issuer": "http://idp"}
    }
    assert [w.id for w in check_oidc_issuers()] == ["accounts.W002"]
