"""Two-factor authentication (TOTP) for platform admins and DAC members, and session expiry."""

from __future__ import annotations

import time

import pytest
from django.core.management import call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import otp
from accounts.models import ApiToken, AuditEvent

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-9"


@pytest.fixture(autouse=True)
def _enforced(settings):
    settings.OTP_ENFORCED = True


def _with_password(user):
    user.set_password(PASSWORD)
    user.save()
    return user


def _log_in(client, user):
    response = client.post(
        "/accounts/login/", {"username": user.username, "password": PASSWORD}, follow=False
    )
    assert response.status_code == 302, response.content
    return response


def _device(user, key=otp.DEMO_TOTP_KEY):
    return TOTPDevice.objects.create(user=user, name="phone", key=key, confirmed=True)


def test_a_dac_member_with_a_device_must_enter_a_code_after_the_password(client, dac_a, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # throttling has its own test
    _with_password(dac_a)
    _device(dac_a)
    _log_in(client, dac_a)
    response = client.get("/governance/requests/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/2fa/verify/?next=/governance/requests/")

    page = client.get(response["Location"])
    assert page.status_code == 200
    assert 'autocomplete="one-time-code"' in page.content.decode()

    wrong = client.post("/accounts/2fa/verify/", {"code": "000000", "next": "/governance/"})
    assert wrong.status_code == 400
    assert client.get("/governance/").status_code == 302

    good = client.post(
        "/accounts/2fa/verify/",
        {"code": otp.current_code(otp.DEMO_TOTP_KEY), "next": "/governance/requests/"},
    )
    assert good.status_code == 302 and good["Location"] == "/governance/requests/"
    assert client.get("/governance/requests/").status_code == 200
    assert AuditEvent.objects.filter(action="account.2fa_verified", actor=dac_a).count() == 1


def test_a_used_code_cannot_be_replayed(client, dac_a):
    _with_password(dac_a)
    _device(dac_a)
    code = otp.current_code(otp.DEMO_TOTP_KEY)
    _log_in(client, dac_a)
    assert client.post("/accounts/2fa/verify/", {"code": code}).status_code == 302
    client.post("/accounts/logout/")
    _log_in(client, dac_a)
    assert client.post("/accounts/2fa/verify/", {"code": code}).status_code == 400


def test_a_platform_admin_without_a_device_is_sent_to_enrol_and_confirms_with_a_code(
    client, platform_admin, settings
):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    _with_password(platform_admin)
    _log_in(client, platform_admin)
    response = client.get("/audit/")
    assert response["Location"].startswith("/accounts/2fa/enrol/")
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert 'src="data:image/svg+xml;base64,' in html  # the QR code, allowed by img-src data:
    assert "otpauth://totp/OPTIMA%20Portal%3Aplatform_admin?secret=" in html
    device = TOTPDevice.objects.get(user=platform_admin, confirmed=False)
    assert client.post("/accounts/2fa/enrol/", {"code": "123456"}).status_code == 400
    confirmed = client.post(
        "/accounts/2fa/enrol/", {"code": otp.current_code(device.key), "next": "/audit/"}
    )
    assert confirmed.status_code == 302 and confirmed["Location"] == "/audit/"
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/audit/").status_code == 200
    # Once a device is confirmed, the enrol page cannot be used to add another unverified.
    client.post("/accounts/logout/")
    _log_in(client, platform_admin)
    assert client.get("/accounts/2fa/enrol/")["Location"].startswith("/accounts/2fa/verify/")


def test_the_admin_site_is_behind_the_second_factor_too(client, platform_admin):
    _with_password(platform_admin)
    _device(platform_admin)
    _log_in(client, platform_admin)
    assert client.get("/admin/")["Location"].startswith("/accounts/2fa/verify/?next=/admin/")


def test_wrong_codes_throttle_the_next_attempt(client, dac_a):
    _with_password(dac_a)
    _device(dac_a)
    _log_in(client, dac_a)
    assert client.post("/accounts/2fa/verify/", {"code": "000000"}).status_code == 400
    # Right after a failure even the right code is refused (django-otp's growing delay).
    right = client.post("/accounts/2fa/verify/", {"code": otp.current_code(otp.DEMO_TOTP_KEY)})
    assert right.status_code == 400


def test_people_without_the_roles_are_not_asked(client, steward_a, researcher):
    for user in (steward_a, researcher):
        _with_password(user)
        _log_in(client, user)
        assert client.get("/dashboard/").status_code == 200
        client.post("/accounts/logout/")


def test_session_api_calls_need_the_second_factor_but_token_calls_do_not(client, api, dac_a):
    _with_password(dac_a)
    _device(dac_a)
    _log_in(client, dac_a)
    response = client.get("/api/access-requests/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "two_factor_required"
    _token, raw = ApiToken.issue(user=dac_a, name="script")
    api.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    assert api.get("/api/access-requests/").status_code == 200


def test_the_setting_switches_enforcement_off(client, dac_a, settings):
    settings.OTP_ENFORCED = False
    _with_password(dac_a)
    _device(dac_a)
    _log_in(client, dac_a)
    assert client.get("/governance/").status_code == 200


def test_the_demo_gives_admin_and_dac_users_the_documented_secret(capsys):
    call_command("seed_demo", "--quiet-logins")
    devices = TOTPDevice.objects.filter(confirmed=True, key=otp.DEMO_TOTP_KEY)
    usernames = set(devices.values_list("user__username", flat=True))
    assert "admin" in usernames and {"dac.de", "dac.fr", "dac.nl", "dac.se"} <= usernames
    call_command("demo_totp", "dac.de")
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed in {otp.current_code(otp.DEMO_TOTP_KEY, steps_ahead=d) for d in (-1, 0, 1)}


def test_an_idle_session_is_logged_out(client, steward_a, settings, monkeypatch):
    settings.SESSION_IDLE_TIMEOUT = 600
    client.force_login(steward_a)
    assert client.get("/dashboard/").status_code == 200
    later = time.time() + 601
    monkeypatch.setattr(time, "time", lambda: later)
    response = client.get("/dashboard/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_an_active_session_stays(client, steward_a, settings, monkeypatch):
    settings.SESSION_IDLE_TIMEOUT = 600
    client.force_login(steward_a)
    start = time.time()
    for minutes in (0, 5, 9, 14, 19):
        now = start + minutes * 60
        monkeypatch.setattr(time, "time", lambda now=now: now)
        assert client.get("/dashboard/").status_code == 200


def test_htmx_fragments_navigate_to_the_verify_page_instead_of_swapping_it_in(client, dac_a):
    _with_password(dac_a)
    _device(dac_a)
    _log_in(client, dac_a)
    badge = client.get(
        "/notifications/count/",
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/dashboard/",
    )
    assert badge.status_code == 204 and badge["HX-Redirect"] == "/accounts/2fa/verify/"
    on_verify_page = client.get(
        "/notifications/count/",
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/accounts/2fa/verify/",
    )
    assert on_verify_page.status_code == 204 and "HX-Redirect" not in on_verify_page
