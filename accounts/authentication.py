from __future__ import annotations

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from . import otp
from .models import ApiToken

TWO_FACTOR_MESSAGE = (
    "Your role requires two-factor authentication: set up an authenticator app at "
    "/accounts/2fa/enrol/ before using an API token."
)
SCOPE_MESSAGE = (
    "This token was issued before your roles were extended (or before token scopes were "
    "recorded) and does not carry them: create a new token at /accounts/tokens/ and revoke this one."
)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Token <token>`` with a personal API token.

    A token is refused (403) when its owner must use a second factor but has no confirmed device
    (the predicate of the session middleware, ``otp.second_factor_required``), and when the
    owner's roles grew beyond those held when it was issued (``ApiToken.scope``).
    """

    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid token header: use 'Authorization: Token <token>'."
            )
        try:
            raw = header[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid token header.") from exc
        token = ApiToken.authenticate(raw)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        user = token.user
        if otp.second_factor_required(user) and not otp.confirmed_devices(user).exists():
            raise exceptions.PermissionDenied(TWO_FACTOR_MESSAGE, code="two_factor_required")
        if not token.covers(ApiToken.scope_of(user)):
            raise exceptions.PermissionDenied(SCOPE_MESSAGE, code="token_scope_outdated")
        # Touch last-use at most once a minute to keep token use cheap.
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return user, token

    def authenticate_header(self, request) -> str:
        return self.keyword


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Personal API token: `Token <token>`",
        }
