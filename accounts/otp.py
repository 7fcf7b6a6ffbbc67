"""Two-factor authentication (TOTP, django-otp) for platform admins and DAC members.

- Who: staff users (platform admins) and anyone holding one of ``settings.OTP_REQUIRED_ROLES``
  (default: DAC member) in any organisation, when ``settings.OTP_ENFORCED`` is on (default on;
  tests switch it off in ``tests/conftest.py`` except the 2FA tests).
- How: after the password step, ``accounts.middleware.TwoFactorMiddleware`` sends such a person to
  ``/accounts/2fa/verify/`` (or ``/accounts/2fa/enrol/`` when they have no confirmed device yet)
  for every page until a code from their authenticator app is accepted for this session.
- API requests authenticated with a personal API token are not asked for a code, but a token of
  such a person acts only once they have a confirmed device (``accounts.authentication``), and only
  while their roles stay within those held when it was issued (see docs/security.md).
- Demo: ``manage.py seed_demo`` gives ``admin`` and every ``dac.*`` user a device with the fixed
  secret ``DEMO_TOTP_KEY``; ``manage.py demo_totp USERNAME`` prints the current code.
"""

from __future__ import annotations

import base64
import io
from urllib.parse import quote, urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from . import audit
from . import permissions as base

# RFC 6238's test secret ("12345678901234567890"), hex-encoded: demo data only, never production.
DEMO_TOTP_KEY = "3132333435363738393031323334353637383930"
DEMO_TOTP_BASE32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
DEMO_DEVICE_NAME = "demo authenticator"
ISSUER = "OPTIMA Portal"


def enforced() -> bool:
    return bool(getattr(settings, "OTP_ENFORCED", True))


def required_for(user) -> bool:
    """Does this person need a second factor?"""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_staff:
        return True
    roles = getattr(settings, "OTP_REQUIRED_ROLES", ("dac_member",))
    return bool(roles) and base.has_any_role(user, *roles)


def second_factor_required(user) -> bool:
    """Must this person prove a second factor (enforcement on, and staff or a listed role)?

    The one predicate behind the session middleware and API token authentication.
    """
    return enforced() and required_for(user)


def confirmed_devices(user):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.filter(user=user, confirmed=True)


def current_code(key_hex: str, *, steps_ahead: int = 0) -> str:
    """The TOTP code for a hex key now (or ``steps_ahead`` 30-second steps later)."""
    from django_otp.oath import TOTP

    totp = TOTP(bytes.fromhex(key_hex), step=30, digits=6)
    totp.drift = steps_ahead
    return f"{totp.token():06d}"


def otpauth_uri(user, key_hex: str) -> str:
    secret = base64.b32encode(bytes.fromhex(key_hex)).decode().rstrip("=")
    label = quote(f"{ISSUER}:{user.get_username()}")
    query = urlencode({"secret": secret, "issuer": ISSUER, "digits": 6, "period": 30})
    return f"otpauth://totp/{label}?{query}"


def qr_data_uri(text: str) -> str:
    """A QR code as an SVG ``data:`` URI (the CSP allows ``img-src data:``, no inline markup)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def seed_demo_devices(stdout=None) -> int:
    """Give ``admin`` and every ``dac.*`` demo user a confirmed device with the demo secret."""
    from django.contrib.auth import get_user_model
    from django_otp.plugins.otp_totp.models import TOTPDevice

    users = get_user_model().objects.filter(username="admin") | get_user_model().objects.filter(
        username__startswith="dac."
    )
    count = 0
    for user in users:
        TOTPDevice.objects.update_or_create(
            user=user,
            name=DEMO_DEVICE_NAME,
            defaults={"key": DEMO_TOTP_KEY, "confirmed": True, "step": 30, "digits": 6},
        )
        count += 1
    if stdout:
        stdout.write(
            f"Two-factor demo devices: {count} (admin, dac.*); secret {DEMO_TOTP_BASE32}; "
            "current code: manage.py demo_totp USERNAME"
        )
    return count


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code from your authenticator app",
        min_length=6,
        max_length=6,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9]{6}"}
        ),
    )

    def clean_code(self) -> str:
        code = self.cleaned_data["code"].strip()
        if not code.isdigit():
            raise forms.ValidationError("Enter the 6 digits shown by your authenticator app.")
        return code


def recovery_codes_remaining(user) -> int:
    from .models import RecoveryCode

    return RecoveryCode.objects.filter(device__user=user, used_at__isnull=True).count()


@transaction.atomic
def recovery_code_use(*, user, code: str):
    """The recovery-code device whose unused code this is (now spent), or None; audited."""
    from .models import RecoveryCodeDevice

    device = RecoveryCodeDevice.objects.select_for_update().filter(user=user).first()
    if device is None or not device.verify_token(code):
        return None
    audit.record(
        "account.recovery_code_used",
        actor=user,
        obj=user,
        payload={"remaining": recovery_codes_remaining(user)},
    )
    return device


class RecoveryCodeForm(forms.Form):
    recovery_code = forms.CharField(
        label="Recovery code",
        max_length=20,
        help_text="One of the codes you kept when you set up two-factor authentication.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return settings.LOGIN_REDIRECT_URL


@login_required
@require_http_methods(["GET", "POST"])
def verify(request):
    """The second step of logging in: a code from the person's confirmed device."""
    from django_otp import login as otp_login

    if request.user.is_verified():
        return redirect(_next_url(request))
    if not confirmed_devices(request.user).exists():
        return redirect(f"/accounts/2fa/enrol/?next={quote(_next_url(request))}")
    using_recovery = "recovery_code" in request.POST
    form = CodeForm(None if using_recovery else (request.POST or None))
    recovery_form = RecoveryCodeForm(request.POST if using_recovery else None)
    status = 200
    if request.method == "POST" and using_recovery:
        if recovery_form.is_valid():
            device = recovery_code_use(
                user=request.user, code=recovery_form.cleaned_data["recovery_code"]
            )
            if device is not None:
                otp_login(request, device)
                return redirect(_next_url(request))
            recovery_form.add_error(
                "recovery_code", "This recovery code is not valid or was already used."
            )
        status = 400
    elif request.method == "POST":
        if form.is_valid():
            # Only authenticator apps: a recovery code has its own field (and its own throttle).
            device = next(
                (
                    d
                    for d in confirmed_devices(request.user)
                    if d.verify_token(form.cleaned_data["code"])
                ),
                None,
            )
            if device is not None:
                otp_login(request, device)
                audit.record("account.2fa_verified", actor=request.user, obj=request.user)
                return redirect(_next_url(request))
            form.add_error(
                "code", "This code is not valid (or was already used). Try the next one."
            )
        status = 400
    return render(
        request,
        "accounts/otp_verify.html",
        {"form": form, "recovery_form": recovery_form, "next": _next_url(request)},
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def enrol(request):
    """Set up an authenticator app: show the secret (and its QR code), confirm with one code."""
    from django_otp import login as otp_login
    from django_otp.plugins.otp_totp.models import TOTPDevice

    if confirmed_devices(request.user).exists() and not request.user.is_verified():
        return redirect(f"/accounts/2fa/verify/?next={quote(_next_url(request))}")
    device, _ = TOTPDevice.objects.get_or_create(
        user=request.user, confirmed=False, defaults={"name": "authenticator app"}
    )
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid() and device.verify_token(form.cleaned_data["code"]):
            with transaction.atomic():
                # A new app replaces the old one (a lost phone must stop working); only a session
                # verified with a second factor (an old code, a recovery code) reaches this point.
                replaced = confirmed_devices(request.user).exclude(pk=device.pk).delete()[0]
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                audit.record(
                    "account.2fa_enrolled",
                    actor=request.user,
                    obj=request.user,
                    payload={"replaced": replaced} if replaced else None,
                )
            otp_login(request, device)
            messages.info(
                request,
                "Two-factor authentication is on. Create recovery codes (Account, Recovery codes) "
                "in case you lose your phone.",
            )
            return redirect(_next_url(request))
        if form.is_valid():
            form.add_error(
                "code", "This code does not match the secret. Check the clock of your phone."
            )
        status = 400
    uri = otpauth_uri(request.user, device.key)
    secret = base64.b32encode(bytes.fromhex(device.key)).decode().rstrip("=")
    return render(
        request,
        "accounts/otp_enrol.html",
        {
            "form": form,
            "secret": secret,
            "uri": uri,
            "qr": qr_data_uri(uri),
            "next": _next_url(request),
        },
        status=status,
    )
