"""Writes about entitlements and the guardian permissions that follow them.

The guardian permission for (holder, dataset, mode) exists exactly while an active entitlement for
it exists: every change of status ends in ``_sync_permission``.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from accounts import audit

from .. import datasets as ds
from .. import permissions
from ..models import (
    PERMISSION_FOR_MODE,
    AccessRequest,
    Agreement,
    Decision,
    Entitlement,
    EntitlementStatus,
    SuspensionReason,
)
from ..notifications import notify
from ..selectors import covering_agreement

if TYPE_CHECKING:
    from datetime import date

    from django.contrib.auth.models import User

    from catalogue.models import Dataset


def end_of_day(day: date, tz_name: str) -> datetime:
    """The last moment of ``day`` in the custodian's time zone."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=ZoneInfo(tz_name or "UTC"))


def _sync_permission(holder, dataset, access_mode: str) -> None:
    permission = PERMISSION_FOR_MODE[access_mode]
    active = Entitlement.objects.filter(
        holder=holder, dataset=dataset, access_mode=access_mode, status=EntitlementStatus.ACTIVE
    ).exists()
    if active:
        assign_perm(permission, holder, dataset)
    else:
        remove_perm(permission, holder, dataset)


def _url() -> str:
    return reverse("governance:entitlements")


def _audit(action: str, *, actor, entitlement: Entitlement, **payload) -> None:
    audit.record(
        action,
        actor=actor,
        obj=entitlement,
        organisation=entitlement.dataset.publisher,
        payload={
            "holder": entitlement.holder.get_username(),
            "dataset": entitlement.dataset_id,
            "access_mode": entitlement.access_mode,
            "status": entitlement.status,
            **payload,
        },
    )


def entitlements_grant_for_decision(*, actor: User, decision: Decision) -> list[Entitlement]:
    """One entitlement per approved dataset and team member (called inside the approval)."""
    access_request = decision.request
    holders = [access_request.applicant, *access_request.team_members.order_by("pk")]
    granted = []
    items = access_request.items.filter(custodian=decision.custodian).select_related(
        "dataset__publisher", "dataset__current_version"
    )
    for item in items:
        agreement = covering_agreement(item=item, organisation_id=access_request.organisation_id)
        ends_at = end_of_day(access_request.requested_end_date, item.dataset.publisher.time_zone)
        for holder in holders:
            entitlement = Entitlement.objects.create(
                holder=holder,
                dataset=item.dataset,
                access_mode=item.access_mode,
                starts_at=timezone.now(),
                ends_at=ends_at,
                request=access_request,
                agreement=agreement,
                terms=item.terms,
            )
            _sync_permission(holder, item.dataset, item.access_mode)
            _audit(
                "entitlement.granted",
                actor=actor,
                entitlement=entitlement,
                ends_at=ends_at.isoformat(),
                agreement=agreement.reference if agreement else "",
                request=access_request.reference,
            )
            notify("entitlement.granted", actor=actor, entitlement=entitlement, url=_url())
            granted.append(entitlement)
    return granted


def _end(entitlement: Entitlement, status: str, *, actor, event: str, **payload) -> None:
    entitlement.status = status
    entitlement.ended_at = timezone.now()
    entitlement.save()
    _sync_permission(entitlement.holder, entitlement.dataset, entitlement.access_mode)
    _audit(f"entitlement.{event}", actor=actor, entitlement=entitlement, **payload)


@transaction.atomic
def entitlement_revoke(*, actor: User, entitlement: Entitlement, reason: str) -> Entitlement:
    entitlement = Entitlement.objects.select_for_update().get(pk=entitlement.pk)
    if not permissions.allows(entitlement, actor, "revoke"):
        raise PermissionDenied("Only the custodian's data access committee revokes access.")
    if entitlement.status in (EntitlementStatus.REVOKED, EntitlementStatus.EXPIRED):
        raise ValidationError({"status": [f"This entitlement is already {entitlement.status}."]})
    if not reason.strip():
        raise ValidationError({"reason": ["Give the reason; the holder sees it."]})
    entitlement.revoked_reason = reason.strip()
    entitlement.revoked_by = actor
    _end(entitlement, EntitlementStatus.REVOKED, actor=actor, event="revoked", reason=reason)
    notify("entitlement.revoked", actor=actor, entitlement=entitlement, body=reason, url=_url())
    return entitlement


def entitlements_revoke_for_request(
    *, actor: User, access_request: AccessRequest, reason: str
) -> int:
    count = 0
    for entitlement in access_request.entitlements.filter(
        status__in=(EntitlementStatus.ACTIVE, EntitlementStatus.SUSPENDED)
    ).select_related("dataset__publisher", "holder"):
        entitlement.revoked_reason = reason
        entitlement.revoked_by = actor
        _end(entitlement, EntitlementStatus.REVOKED, actor=actor, event="revoked", reason=reason)
        notify("entitlement.revoked", actor=actor, entitlement=entitlement, body=reason, url=_url())
        count += 1
    return count


@transaction.atomic
def entitlement_expire(*, entitlement: Entitlement, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    entitlement = Entitlement.objects.select_for_update().get(pk=entitlement.pk)
    if entitlement.status not in (EntitlementStatus.ACTIVE, EntitlementStatus.SUSPENDED):
        return False
    if entitlement.ends_at > now:
        return False
    _end(entitlement, EntitlementStatus.EXPIRED, actor=None, event="expired")
    notify("entitlement.expired", entitlement=entitlement, url=_url())
    return True


def _suspend(entitlement: Entitlement, reason: str, *, actor, detail: str = "") -> None:
    entitlement.status = EntitlementStatus.SUSPENDED
    entitlement.suspension_reason = reason
    entitlement.save(update_fields=["status", "suspension_reason"])
    _sync_permission(entitlement.holder, entitlement.dataset, entitlement.access_mode)
    _audit("entitlement.suspended", actor=actor, entitlement=entitlement, reason=reason)
    notify(
        "entitlement.suspended",
        actor=actor,
        entitlement=entitlement,
        body=detail or SuspensionReason(reason).label,
        url=_url(),
    )


def _reinstate(entitlement: Entitlement, *, actor, **payload) -> None:
    entitlement.status = EntitlementStatus.ACTIVE
    entitlement.suspension_reason = ""
    entitlement.save(update_fields=["status", "suspension_reason", "terms"])
    _sync_permission(entitlement.holder, entitlement.dataset, entitlement.access_mode)
    # The holder reinstates by accepting the terms themselves, so nobody else needs telling.
    _audit("entitlement.reinstated", actor=actor, entitlement=entitlement, **payload)


def entitlements_on_agreement_ended(
    *, actor: User, agreement: Agreement, replacement: Agreement | None = None
) -> int:
    """Suspend entitlements resting on an ended agreement; a signed new version carries them on."""
    affected = 0
    qs = agreement.entitlements.filter(status=EntitlementStatus.ACTIVE).select_related(
        "dataset__publisher", "holder"
    )
    for entitlement in qs:
        if replacement is not None and replacement.status == "active":
            entitlement.agreement = replacement
            entitlement.save(update_fields=["agreement"])
            _audit(
                "entitlement.agreement_replaced",
                actor=actor,
                entitlement=entitlement,
                agreement=replacement.reference,
            )
            continue
        _suspend(
            entitlement,
            SuspensionReason.AGREEMENT_ENDED,
            actor=actor,
            detail=f"Agreement {agreement.reference} is {agreement.get_status_display().lower()}.",
        )
        affected += 1
    return affected


@transaction.atomic
def entitlements_check_terms(*, dataset: Dataset | None = None) -> int:
    """Suspend active entitlements whose dataset's current terms of use were not accepted."""
    qs = Entitlement.objects.filter(status=EntitlementStatus.ACTIVE).select_related(
        "dataset__current_version", "dataset__publisher", "holder"
    )
    if dataset is not None:
        qs = qs.filter(dataset=dataset)
    count = 0
    for entitlement in qs:
        terms = ds.current_terms(entitlement.dataset)
        if terms is not None and entitlement.terms_id != terms.pk:
            _suspend(
                entitlement,
                SuspensionReason.TERMS_CHANGED,
                actor=None,
                detail=f"Accept version {terms.version} of the terms of use to use the dataset again.",
            )
            count += 1
    return count


@transaction.atomic
def entitlement_accept_terms(*, actor: User, entitlement: Entitlement) -> Entitlement:
    entitlement = (
        Entitlement.objects.select_for_update(of=("self",))
        .select_related("dataset__current_version", "dataset__publisher", "holder")
        .get(pk=entitlement.pk)
    )
    if entitlement.holder_id != actor.pk:
        raise PermissionDenied("Only the holder accepts the terms of use.")
    terms = ds.current_terms(entitlement.dataset)
    if entitlement.status not in (EntitlementStatus.ACTIVE, EntitlementStatus.SUSPENDED):
        raise ValidationError({"status": [f"This entitlement is {entitlement.status}."]})
    entitlement.terms = terms
    if (
        entitlement.status == EntitlementStatus.SUSPENDED
        and entitlement.suspension_reason == SuspensionReason.TERMS_CHANGED
    ):
        _reinstate(entitlement, actor=actor, terms_version=terms.version if terms else None)
    else:
        entitlement.save(update_fields=["terms"])
        _audit(
            "entitlement.terms_accepted",
            actor=actor,
            entitlement=entitlement,
            terms_version=terms.version if terms else None,
        )
    return entitlement
