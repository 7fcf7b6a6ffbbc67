"""Federated login with OpenID Connect (authorization code flow with PKCE, through Authlib).

- Providers come from the environment (``settings.OIDC_PROVIDERS``, README "Configuration");
  each is discovered from ``<issuer>/.well-known/openid-configuration``. Authlib checks
  the ID token: signature against the provider's JWKS, ``iss`` equal to the discovered issuer,
  ``aud`` our client id, ``exp``/``iat``, the ``nonce`` of this session; ``state`` and the PKCE
  ``code_verifier`` are kept in the session.
- An account is found by (issuer, ``sub``) only (``FederatedIdentity``), never by e-mail. A first
  login creates an account with no roles and no usable password; open invitations addressed to the
  e-mail the provider *verified* (``email_verified`` true) are accepted, which is how roles arrive.
  A logged-in person links a provider to their account from the account page.
- An ID token whose ``acr``/``amr`` asserts multi-factor authentication
  (``OIDC_MFA_ACR_VALUES``/``OIDC_MFA_AMR_VALUES``) verifies the session's second factor (the
  identity is a django-otp device); otherwise the portal's TOTP applies as after a password.
- Optional per-provider claim map (off by default): a claim value names an organisation the
  person is made a member of, with no role; roles stay the organisation admins' decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from . import audit, permissions
from .models import FederatedIdentity, Invitation, Membership, Organisation

User = get_user_model()
SESSION_PROVIDER = "oidc_provider"
SESSION_ID_TOKEN = "oidc_id_token"
SESSION_NEXT = "oidc_next"
SESSION_LINK = "oidc_link_user"

_clients: dict[tuple, Any] = {}


@dataclass(frozen=True)
class Provider:
    key: str
    issuer: str
    client_id: str
    client_secret: str
    name: str
    scope: str
    claim_map: dict

    @property
    def metadata_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def providers() -> list[Provider]:
    return [
        Provider(key=key, **config)
        for key, config in getattr(settings, "OIDC_PROVIDERS", {}).items()
    ]


def provider(key: str) -> Provider | None:
    return next((p for p in providers() if p.key == key), None)


def client(p: Provider):
    """The Authlib client of a provider (metadata and keys cached per process)."""
    from authlib.integrations.django_client import OAuth

    cache_key = (p.key, p.issuer, p.client_id, p.client_secret, p.scope)
    if cache_key not in _clients:
        registry = OAuth()
        registry.register(
            p.key,
            client_id=p.client_id,
            client_secret=p.client_secret or None,
            server_metadata_url=p.metadata_url,
            client_kwargs={
                "scope": p.scope,
                "code_challenge_method": "S256",
                "timeout": settings.OIDC_TIMEOUT_SECONDS,
            },
        )
        _clients[cache_key] = registry.create_client(p.key)
    return _clients[cache_key]


def end_session_endpoint(p: Provider) -> str | None:
    return client(p).load_server_metadata().get("end_session_endpoint")


def asserts_mfa(claims: dict) -> bool:
    acr = claims.get("acr")
    amr = claims.get("amr") or []
    if isinstance(amr, str):
        amr = [amr]
    return acr in settings.OIDC_MFA_ACR_VALUES or bool(set(amr) & set(settings.OIDC_MFA_AMR_VALUES))


def verified_email(claims: dict) -> str:
    """The e-mail, only when the provider says it verified it (``email_verified`` true)."""
    email = (claims.get("email") or "").strip().lower()
    return email if email and claims.get("email_verified") is True else ""


class Refused(Exception):
    """A login the portal will not complete; ``reason`` goes to the audit trail."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Outcome:
    user: Any
    identity: FederatedIdentity
    created: bool
    linked: bool
    mfa: bool
    invitations: list[Invitation]


def refuse(*, p: Provider, reason: str, claims: dict | None = None, actor=None) -> None:
    """Record a refused federated login (bad token, provider error, disabled account...)."""
    claims = claims or {}
    audit.record(
        "account.oidc_refused",
        actor=actor,
        payload={
            "provider": p.key,
            "issuer": str(claims.get("iss", p.issuer)),
            "subject": str(claims.get("sub", "")),
            "reason": reason,
        },
    )


def _unique_username(claims: dict, p: Provider) -> str:
    base = claims.get("preferred_username") or (claims.get("email") or "").split("@")[0]
    base = slugify(base).replace("-", ".")[:100] or p.key
    candidate, n = base, 1
    while User.objects.filter(username=candidate).exists():
        n += 1
        candidate = f"{base}.{n}"
    return candidate


def _create_user(claims: dict, p: Provider):
    user = User(
        username=_unique_username(claims, p),
        email=verified_email(claims),
        first_name=str(claims.get("given_name", ""))[:150],
        last_name=str(claims.get("family_name", ""))[:150],
    )
    user.set_unusable_password()
    user.save()
    return user


def _apply_claim_map(*, user, claims: dict, p: Provider) -> list[str]:
    """``{"claim": "eduperson_entitlement", "organisations": {"<value>": "<org slug>"}}``."""
    claim = p.claim_map.get("claim")
    mapping = p.claim_map.get("organisations") or {}
    if not claim or not mapping:
        return []
    values = claims.get(claim) or []
    if isinstance(values, str):
        values = [values]
    joined = []
    for value in values:
        slug = mapping.get(value)
        organisation = Organisation.objects.filter(slug=slug).first() if slug else None
        if organisation is None:
            continue
        _, created = Membership.objects.get_or_create(user=user, organisation=organisation)
        if created:
            audit.record(
                "membership.claim_mapped",
                actor=user,
                obj=user,
                organisation=organisation,
                payload={"provider": p.key, "claim": claim, "value": value},
            )
            joined.append(organisation.slug)
    return joined


@transaction.atomic
def federated_login(*, p: Provider, claims: dict, link_to=None) -> Outcome:
    """Find or create the account of a validated ID token; ``link_to`` links a logged-in person.

    Raises ``Refused`` (nothing changed) for an identity linked elsewhere or a disabled account.
    """
    from .services import invitation_accept

    issuer, subject = str(claims["iss"]), str(claims["sub"])
    identity = (
        FederatedIdentity.objects.select_for_update()
        .select_related("user")
        .filter(issuer=issuer, subject=subject)
        .first()
    )
    created = linked = False
    if identity is not None:
        if link_to is not None and identity.user_id != link_to.pk:
            raise Refused(
                "linked_to_another_account",
                f"This {p.name} account is already linked to another portal account.",
            )
        user = identity.user
    else:
        if link_to is not None:
            user, linked = link_to, True
        else:
            user, created = _create_user(claims, p), True
        identity = FederatedIdentity.objects.create(
            user=user, name=p.name[:64], provider=p.key, issuer=issuer, subject=subject
        )
    if not user.is_active:
        raise Refused("account_disabled", "This portal account is disabled.")
    identity.email = verified_email(claims)
    identity.last_login_at = timezone.now()
    identity.save(update_fields=["email", "last_login_at"])

    email = verified_email(claims)
    invitations = []
    if email:
        for invitation in Invitation.objects.filter(
            email__iexact=email, accepted_at__isnull=True, expires_at__gt=timezone.now()
        ).select_related("organisation"):
            invitation_accept(invitation=invitation, user=user)
            invitations.append(invitation)
    mapped = _apply_claim_map(user=user, claims=claims, p=p)
    mfa = asserts_mfa(claims)
    payload = {
        "provider": p.key,
        "issuer": issuer,
        "subject": subject,
        "mfa": mfa,
        "new_account": created,
        "invitations": [i.pk for i in invitations],
    }
    if mapped:
        payload["claim_mapped"] = mapped
    if linked:
        audit.record("account.oidc_linked", actor=user, obj=identity, payload=payload)
    audit.record("account.oidc_login", actor=user, obj=identity, payload=payload)
    permissions.forget_roles(user)
    return Outcome(user, identity, created, linked, mfa, invitations)
