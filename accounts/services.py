"""Writes about people and organisations. Each writes its audit event in the same transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from . import audit, permissions
from .models import ApiToken, Invitation, Membership, MembershipRole, Organisation, Role

if TYPE_CHECKING:
    from datetime import datetime

User = get_user_model()


def _check_roles(roles: list[str]) -> list[str]:
    unknown = sorted(set(roles) - set(Role.values))
    if unknown:
        raise ValidationError({"roles": [f"Unknown role: {', '.join(unknown)}."]})
    return sorted(set(roles))


def _require_org_admin(actor, organisation: Organisation) -> None:
    if not (
        permissions.is_platform_admin(actor)
        or permissions.has_role(actor, organisation, Role.ORG_ADMIN)
    ):
        raise PermissionDenied("Only an administrator of this organisation can do that.")


@transaction.atomic
def membership_set_roles(
    *, actor: User, organisation: Organisation, user: User, roles: list[str]
) -> Membership:
    """Create or update a membership with exactly ``roles`` (an empty list removes the membership)."""
    _require_org_admin(actor, organisation)
    roles = _check_roles(roles)
    membership = Membership.objects.filter(user=user, organisation=organisation).first()
    before = membership.role_names if membership else []
    if not roles:
        if membership:
            if (
                user == actor
                and Role.ORG_ADMIN in before
                and not permissions.is_platform_admin(actor)
            ):
                raise ValidationError(
                    {"roles": ["You cannot remove your own administrator membership."]}
                )
            membership.delete()
        audit.record(
            "membership.removed",
            actor=actor,
            organisation=organisation,
            object_type="auth.user",
            object_id=str(user.pk),
            payload={"user": user.get_username(), "roles_before": before},
        )
        permissions.forget_roles(user)
        return None
    if membership is None:
        membership = Membership.objects.create(user=user, organisation=organisation)
    if (
        user == actor
        and Role.ORG_ADMIN in before
        and Role.ORG_ADMIN not in roles
        and not permissions.is_platform_admin(actor)
    ):
        raise ValidationError({"roles": ["You cannot remove your own administrator role."]})
    membership.roles.exclude(name__in=roles).delete()
    for name in roles:
        MembershipRole.objects.get_or_create(membership=membership, name=name)
    audit.record(
        "membership.roles_changed",
        actor=actor,
        obj=membership,
        organisation=organisation,
        payload={"user": user.get_username(), "before": before, "after": roles},
    )
    permissions.forget_roles(user)
    return membership


@transaction.atomic
def invitation_send(
    *, actor: User, organisation: Organisation, email: str, roles: list[str]
) -> Invitation:
    _require_org_admin(actor, organisation)
    roles = _check_roles(roles)
    if not roles:
        raise ValidationError({"roles": ["Choose at least one role."]})
    raw, token_hash = Invitation.new_token()
    invitation = Invitation.objects.create(
        organisation=organisation,
        email=email.strip().lower(),
        roles=roles,
        token_hash=token_hash,
        invited_by=actor,
        expires_at=Invitation.default_expiry(),
    )
    link = settings.PORTAL_BASE_URL.rstrip("/") + reverse("accounts:invitation_accept", args=[raw])
    context = {
        "organisation": organisation,
        "inviter": actor,
        "roles": [Role(r).label for r in roles],
        "link": link,
        "expires_at": invitation.expires_at,
    }
    audit.record(
        "invitation.sent",
        actor=actor,
        obj=invitation,
        organisation=organisation,
        payload={"email": invitation.email, "roles": roles},
    )
    transaction.on_commit(
        lambda: send_mail(
            f"Invitation to {organisation.name} on the OPTIMA Portal",
            render_to_string("accounts/email/invitation.txt", context),
            None,
            [invitation.email],
            html_message=render_to_string("accounts/email/invitation.html", context),
        )
    )
    return invitation


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_open:
        raise ValidationError("This invitation has expired or was already used.")
    membership, _ = Membership.objects.get_or_create(
        user=user, organisation=invitation.organisation
    )
    for name in invitation.roles:
        MembershipRole.objects.get_or_create(membership=membership, name=name)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit.record(
        "invitation.accepted",
        actor=user,
        obj=invitation,
        organisation=invitation.organisation,
        payload={"roles": invitation.roles},
    )
    permissions.forget_roles(user)
    return membership


@transaction.atomic
def api_token_create(
    *, user: User, name: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ["Give the token a name, e.g. 'analysis notebook'."]})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": ["The expiry must be in the future."]})
    token, raw = ApiToken.issue(user=user, name=name[:100], expires_at=expires_at)
    audit.record(
        "api_token.created",
        actor=user,
        obj=token,
        payload={"name": token.name, "prefix": token.prefix},
    )
    return token, raw


@transaction.atomic
def api_token_revoke(*, user: User, token: ApiToken) -> ApiToken:
    if token.user_id != user.pk:
        raise PermissionDenied("Not your token.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record(
            "api_token.revoked",
            actor=user,
            obj=token,
            payload={"name": token.name, "prefix": token.prefix},
        )
    return token
