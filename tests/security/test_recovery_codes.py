"""TOTP recovery codes: shown once, stored hashed, single use, per person, audited."""

from __future__ import annotations

import re

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import otp
from accounts.models import ApiToken, AuditEvent, RecoveryCode

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-9"
CODE = re.compile(r"<code>([2-9a-z]{5}-[2-9a-z]{5})</code>")


@pytest.fixture(autouse=True)
def _enforced(settings):
    settings.OTP_ENFORCED = True
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # throttling is tested on its own below


def _log_in(client, user, *, verify: bool):
    user.set_password(PASSWORD)
    user.save()
    TOTPDevice.objects.get_or_create(
        user=user, name="phone", defaults={"key": otp.DEMO_TOTP_KEY, "confirmed": True}
    )
    assert client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    if verify:
        response = client.post(
            "/accounts/2fa/verify/", {"code": otp.current_code(otp.DEMO_TOTP_KEY)}
        )
        assert response.status_code == 302, response.content


def _generate(client) -> list[str]:
    page = client.post("/accounts/2fa/recovery-codes/")
    assert page.status_code == 200
    return CODE.findall(page.content.decode())


def test_it_shows_ten_codes_once_and_stores_only_salted_hashes(client, dac_a):
    _log_in(client, dac_a, verify=True)
    codes = _generate(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    rows = RecoveryCode.objects.filter(device__user=dac_a)
    assert rows.count() == 10
    stored = " ".join(f"{r.salt} {r.digest}" for r in rows)
    assert not any(code.replace("-", "") in stored for code in codes)
    assert len({r.salt for r in rows}) == 10
    again = client.get("/accounts/2fa/recovery-codes/").content.decode()
    assert CODE.findall(again) == [] and "<strong>10</strong> unused" in again
    event = AuditEvent.objects.get(action="account.recovery_codes_generated", actor=dac_a)
    assert event.payload == {"count": 10, "replaced": 0}


def test_a_code_replaces_the_authenticator_once_and_the_second_use_fails(client, dac_a):
    _log_in(client, dac_a, verify=True)
    code = _generate(client)[3]
    client.post("/accounts/logout/")

    _log_in(client, dac_a, verify=False)
    assert client.get("/governance/requests/").status_code == 302
    used = client.post(
        "/accounts/2fa/verify/", {"recovery_code": code.upper(), "next": "/governance/requests/"}
    )
    assert used.status_code == 302 and used["Location"] == "/governance/requests/"
    assert client.get("/governance/requests/").status_code == 200
    event = AuditEvent.objects.get(action="account.recovery_code_used", actor=dac_a)
    assert event.payload == {"remaining": 9}
    client.post("/accounts/logout/")

    _log_in(client, dac_a, verify=False)
    replay = client.post("/accounts/2fa/verify/", {"recovery_code": code})
    assert replay.status_code == 400
    assert "not valid or was already used" in replay.content.decode()
    assert client.get("/governance/requests/").status_code == 302


def test_a_code_of_another_person_fails(client, dac_a, platform_admin):
    _log_in(client, platform_admin, verify=True)
    other = _generate(client)[0]
    client.post("/accounts/logout/")
    _log_in(client, dac_a, verify=True)
    _generate(client)
    client.post("/accounts/logout/")

    _log_in(client, dac_a, verify=False)
    assert client.post("/accounts/2fa/verify/", {"recovery_code": other}).status_code == 400
    assert client.get("/governance/").status_code == 302
    assert not AuditEvent.objects.filter(action="account.recovery_code_used").exists()


def test_regenerating_invalidates_the_old_codes(client, dac_a):
    _log_in(client, dac_a, verify=True)
    old = _generate(client)
    new = _generate(client)
    assert not set(old) & set(new)
    assert AuditEvent.objects.filter(action="account.recovery_codes_generated").order_by(
        "seq"
    ).last().payload == {
        "count": 10,
        "replaced": 10,
    }
    client.post("/accounts/logout/")
    _log_in(client, dac_a, verify=False)
    assert client.post("/accounts/2fa/verify/", {"recovery_code": old[0]}).status_code == 400


def test_wrong_codes_throttle_the_next_attempt(client, dac_a, settings):
    _log_in(client, dac_a, verify=True)
    code = _generate(client)[0]
    client.post("/accounts/logout/")
    settings.OTP_TOTP_THROTTLE_FACTOR = 1
    _log_in(client, dac_a, verify=False)
    assert client.post("/accounts/2fa/verify/", {"recovery_code": "aaaaa-aaaaa"}).status_code == 400
    assert client.post("/accounts/2fa/verify/", {"recovery_code": code}).status_code == 400


def test_only_a_verified_session_creates_codes(client, dac_a, steward_a):
    _log_in(client, dac_a, verify=False)
    page = client.post("/accounts/2fa/recovery-codes/")
    assert page.status_code == 302 and page["Location"].startswith("/accounts/2fa/verify/")
    assert client.post("/api/2fa/recovery-codes/").status_code == 403
    assert not RecoveryCode.objects.exists()
    client.post("/accounts/logout/")
    # Without an authenticator there is nothing to back up.
    client.force_login(steward_a)
    assert client.post("/accounts/2fa/recovery-codes/")["Location"] == "/accounts/2fa/enrol/"
    assert client.post("/api/2fa/recovery-codes/").status_code == 403


def test_the_api_creates_codes_for_a_verified_session_but_never_for_a_token(client, api, dac_a):
    _log_in(client, dac_a, verify=True)
    assert client.get("/api/2fa/recovery-codes/").json() == {"remaining": 0}
    created = client.post("/api/2fa/recovery-codes/")
    assert created.status_code == 201
    codes = created.json()["codes"]
    assert len(codes) == 10 and created.json()["remaining"] == 10
    assert otp.recovery_code_use(user=dac_a, code=codes[0]) is not None
    assert client.get("/api/2fa/recovery-codes/").json() == {"remaining": 9}
    # A stolen token must not mint codes that skip the second factor.
    _token, raw = ApiToken.issue(user=dac_a, name="script")
    api.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    assert api.post("/api/2fa/recovery-codes/").status_code == 403
    assert RecoveryCode.objects.filter(device__user=dac_a, used_at__isnull=True).count() == 9


def test_after_a_lost_phone_a_new_authenticator_replaces_the_old_one(client, dac_a):
    _log_in(client, dac_a, verify=True)
    code = _generate(client)[0]
    client.post("/accounts/logout/")

    _log_in(client, dac_a, verify=False)
    assert client.post("/accounts/2fa/verify/", {"recovery_code": code}).status_code == 302
    assert client.get("/accounts/2fa/enrol/").status_code == 200
    new_device = TOTPDevice.objects.get(user=dac_a, confirmed=False)
    confirmed = client.post("/accounts/2fa/enrol/", {"code": otp.current_code(new_device.key)})
    assert confirmed.status_code == 302
    assert list(TOTPDevice.objects.filter(user=dac_a)) == [new_device]
    event = AuditEvent.objects.filter(action="account.2fa_enrolled", actor=dac_a).get()
    assert event.payload == {"replaced": 1}
    client.post("/accounts/logout/")

    # The lost phone's codes no longer work; the new app's do.
    password_step = client.post(
        "/accounts/login/", {"username": dac_a.username, "password": PASSWORD}
    )
    assert password_step.status_code == 302
    lost = client.post("/accounts/2fa/verify/", {"code": otp.current_code(otp.DEMO_TOTP_KEY)})
    assert lost.status_code == 400
    # (the next step's code: this step's was spent confirming the app)
    new_code = otp.current_code(new_device.key, steps_ahead=1)
    new = client.post("/accounts/2fa/verify/", {"code": new_code})
    assert new.status_code == 302
