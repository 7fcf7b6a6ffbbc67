"""Recovery codes for TOTP: ten single-use codes, shown once, stored as salted HMAC-SHA256.

A DAC member who loses the phone types one of them on the verify page in place of the
authenticator's code (``accounts.otp.verify``). Codes are created (and old ones invalidated) from
``/accounts/2fa/recovery-codes/`` or ``POST /api/2fa/recovery-codes/``, only by a person who has
a confirmed authenticator and has verified it in this session: a stolen API token or a session
that only passed the password step cannot mint codes that skip the second factor.
"""

from __future__ import annotations

import secrets

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from . import audit, otp
from .hashing import normalise_recovery_code, recovery_code_digest
from .models import RecoveryCode, RecoveryCodeDevice

COUNT = 10
# Crockford-like alphabet without 0/o, 1/l/i: codes are read from paper.
ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
LENGTH = 10  # ~49 bits each; typed as two groups of five
DEVICE_NAME = "recovery codes"
NOT_VERIFIED = (
    "Verify your authenticator app in this session first: recovery codes are created only by "
    "someone who holds the current second factor."
)


def _new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def may_manage(user) -> bool:
    """A confirmed authenticator, verified in this session (recovery codes back up TOTP)."""
    return (
        otp.confirmed_devices(user).exists() and hasattr(user, "is_verified") and user.is_verified()
    )


def remaining(user) -> int:
    return otp.recovery_codes_remaining(user)


@transaction.atomic
def recovery_codes_regenerate(*, user) -> list[str]:
    """Replace the person's recovery codes with ``COUNT`` new ones; the plain codes are returned
    once and never stored."""
    device, _ = RecoveryCodeDevice.objects.get_or_create(
        user=user, defaults={"name": DEVICE_NAME, "confirmed": True}
    )
    replaced = device.codes.count()
    device.codes.all().delete()
    codes = [_new_code() for _ in range(COUNT)]
    rows = []
    for code in codes:
        salt = secrets.token_hex(16)
        rows.append(
            RecoveryCode(
                device=device,
                salt=salt,
                digest=recovery_code_digest(salt, normalise_recovery_code(code)),
            )
        )
    RecoveryCode.objects.bulk_create(rows)
    device.throttle_reset(commit=True)
    audit.record(
        "account.recovery_codes_generated",
        actor=user,
        obj=user,
        payload={"count": COUNT, "replaced": replaced},
    )
    return codes


@login_required
@require_http_methods(["GET", "POST"])
def recovery_codes_page(request):
    if not otp.confirmed_devices(request.user).exists():
        messages.info(request, "Set up an authenticator app first; recovery codes back it up.")
        return redirect("accounts:otp_enrol")
    if not request.user.is_verified():
        return redirect("/accounts/2fa/verify/?next=/accounts/2fa/recovery-codes/")
    codes = None
    if request.method == "POST":
        codes = recovery_codes_regenerate(user=request.user)
    return render(
        request,
        "accounts/recovery_codes.html",
        {"codes": codes, "remaining": remaining(request.user), "count": COUNT},
    )


_StatusSerializer = inline_serializer(
    "RecoveryCodeStatus", {"remaining": serializers.IntegerField()}
)
_CodesSerializer = inline_serializer(
    "RecoveryCodes",
    {
        "codes": serializers.ListField(child=serializers.CharField()),
        "remaining": serializers.IntegerField(),
    },
)


@extend_schema(
    methods=["GET"], responses=_StatusSerializer, summary="How many recovery codes are unused"
)
@extend_schema(
    methods=["POST"],
    request=None,
    responses={201: _CodesSerializer},
    summary="Replace the recovery codes (shown once)",
)
@api_view(["GET", "POST"])
@permission_classes([IsAuthenticated])
def recovery_codes_api(request):
    """Session only (no API tokens), and only after the authenticator was verified."""
    user = request.user
    if request.auth is not None or not may_manage(user):
        raise PermissionDenied(NOT_VERIFIED, code="two_factor_required")
    if request.method == "POST":
        codes = recovery_codes_regenerate(user=user)
        return Response({"codes": codes, "remaining": len(codes)}, status=201)
    return Response({"remaining": remaining(user)})
