"""The DAC decisions on an access request: start review, approve, reject, ask for changes.

Each custodian decides for its own datasets; the request's overall status follows the decisions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from .. import datasets as ds
from .. import permissions
from ..models import (
    OPEN_STATUSES,
    WAITING_DECISIONS,
    AccessRequest,
    Decision,
    DecisionStatus,
)
from ..notifications import notify
from ..selectors import covering_agreement
from .entitlements import entitlements_grant_for_decision
from .requests import _audit, _lock, _refresh_status, _refuse, request_url

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def _lock_decision(actor, decision: Decision) -> tuple[Decision, AccessRequest]:
    access_request = _lock(decision.request)
    decision = Decision.objects.select_for_update().select_related("custodian").get(pk=decision.pk)
    if not permissions.allows(decision, actor, "decide"):
        raise PermissionDenied(
            f"Only members of the data access committee of {decision.custodian} decide here."
        )
    permissions.require_no_conflict(access_request, actor, decision.custodian_id)
    if access_request.status not in OPEN_STATUSES:
        _refuse(
            "status",
            f"The request is {access_request.get_status_display().lower()}: no decision can be made.",
        )
    if decision.status not in WAITING_DECISIONS:
        _refuse(
            "status",
            f"{decision.custodian} has already decided ({decision.get_status_display().lower()}).",
        )
    return decision, access_request


def _decided(event: str, *, actor, decision: Decision, access_request: AccessRequest, **payload):
    _refresh_status(access_request)
    _audit(
        f"access_request.decision_{event}",
        actor=actor,
        access_request=access_request,
        organisation=decision.custodian,
        custodian=decision.custodian.slug,
        decision=decision.status,
        reason=decision.reason,
        **payload,
    )
    notify(
        f"decision.{event}",
        actor=actor,
        access_request=access_request,
        custodian=decision.custodian,
        body=decision.reason,
        url=request_url(access_request),
    )


@transaction.atomic
def decision_start_review(*, actor: User, decision: Decision) -> Decision:
    decision, access_request = _lock_decision(actor, decision)
    if decision.status != DecisionStatus.PENDING:
        _refuse("status", "The review has already started.")
    decision.status = DecisionStatus.UNDER_REVIEW
    decision.save(update_fields=["status"])
    _decided("review_started", actor=actor, decision=decision, access_request=access_request)
    return decision


def agreement_gaps(decision: Decision) -> list[str]:
    """Why approval is blocked: datasets with no active agreement covering custodian and researcher."""
    gaps = []
    for item in decision.request.items.filter(custodian=decision.custodian).select_related(
        "dataset__publisher", "dataset__current_version"
    ):
        if covering_agreement(item=item, organisation_id=decision.request.organisation_id) is None:
            gaps.append(
                f"No active Data Access and Use Agreement or Collaboration Agreement covers "
                f"{item.dataset.publisher} and {decision.request.organisation} for {ds.title(item.dataset)}."
            )
    return gaps


@transaction.atomic
def decision_approve(*, actor: User, decision: Decision, reason: str = "") -> Decision:
    decision, access_request = _lock_decision(actor, decision)
    gaps = agreement_gaps(decision)
    if gaps:
        raise ValidationError({"agreement": gaps})
    decision.status = DecisionStatus.APPROVED
    decision.reason = reason.strip()
    decision.decided_by = actor
    decision.decided_at = timezone.now()
    decision.save()
    granted = entitlements_grant_for_decision(actor=actor, decision=decision)
    _decided(
        "approved",
        actor=actor,
        decision=decision,
        access_request=access_request,
        entitlements=[e.pk for e in granted],
    )
    return decision


def _close_with_reason(event: str, status: str, *, actor, decision: Decision, reason: str):
    decision, access_request = _lock_decision(actor, decision)
    if not reason.strip():
        _refuse("reason", "Give the reason; the researcher sees it.")
    decision.status = status
    decision.reason = reason.strip()
    decision.decided_by = actor
    decision.decided_at = timezone.now()
    decision.save()
    _decided(event, actor=actor, decision=decision, access_request=access_request)
    return decision


@transaction.atomic
def decision_reject(*, actor: User, decision: Decision, reason: str) -> Decision:
    return _close_with_reason(
        "rejected", DecisionStatus.REJECTED, actor=actor, decision=decision, reason=reason
    )


@transaction.atomic
def decision_request_changes(*, actor: User, decision: Decision, reason: str) -> Decision:
    return _close_with_reason(
        "changes_requested",
        DecisionStatus.CHANGES_REQUESTED,
        actor=actor,
        decision=decision,
        reason=reason,
    )
