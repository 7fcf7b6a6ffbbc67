"""Who is told at each transition: ONE declared table, and the code that honours it.

``TABLE`` maps every notifying transition to the audiences told about it. Services call
``notify(event, ...)`` inside their transaction; it resolves the audiences and hands the people to
``accounts.notifications.notify``, which writes the in-app notifications with the change and e-mails
them after commit. The person who caused the transition is not told about their own action.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model

from accounts import notifications
from accounts.models import Role

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from accounts.models import Notification, Organisation

    from .models import AccessRequest, Agreement, Entitlement


class Audience(StrEnum):
    PARTY_SIGNATORIES = "signatories of the parties"
    PARTY_ORG_ADMINS = "organisation admins of the parties"
    AGREEMENT_CREATOR = "the person who drafted the agreement"
    TEAM = "the applicant and the team"
    CUSTODIAN_DAC = "the DAC of the custodian concerned"
    ALL_CUSTODIAN_DACS = "the DACs of every custodian in the request"
    HOLDER = "the entitlement holder"
    ORG_SITE_ADMINS = "the site admins of the organisation concerned"
    ORG_STEWARDS = "the data stewards of the organisation concerned"


@dataclass(frozen=True)
class Rule:
    audiences: tuple[Audience, ...]
    title: str  # str.format with the context of notify()


A = Audience
TABLE: dict[str, Rule] = {
    # Agreements
    "agreement.sent": Rule(
        (A.PARTY_SIGNATORIES, A.PARTY_ORG_ADMINS), "Agreement {agreement} is out for signature"
    ),
    "agreement.signed": Rule(
        (A.AGREEMENT_CREATOR, A.PARTY_ORG_ADMINS), "{organisation} signed agreement {agreement}"
    ),
    "agreement.activated": Rule(
        (A.AGREEMENT_CREATOR, A.PARTY_SIGNATORIES, A.PARTY_ORG_ADMINS),
        "Agreement {agreement} is signed by every party and active",
    ),
    "agreement.terminated": Rule(
        (A.PARTY_SIGNATORIES, A.PARTY_ORG_ADMINS), "Agreement {agreement} was terminated"
    ),
    "agreement.superseded": Rule(
        (A.PARTY_SIGNATORIES, A.PARTY_ORG_ADMINS), "Agreement {agreement} was superseded"
    ),
    "agreement.expired": Rule(
        (A.PARTY_SIGNATORIES, A.PARTY_ORG_ADMINS), "Agreement {agreement} has expired"
    ),
    "agreement.expiry_reminder": Rule(
        (A.PARTY_SIGNATORIES, A.PARTY_ORG_ADMINS),
        "Agreement {agreement} expires in {days} days",
    ),
    # Access requests
    "request.submitted": Rule(
        (A.TEAM, A.ALL_CUSTODIAN_DACS), "Access request {request} was submitted"
    ),
    "request.resubmitted": Rule(
        (A.TEAM, A.ALL_CUSTODIAN_DACS), "Access request {request} was resubmitted"
    ),
    "request.withdrawn": Rule(
        (A.TEAM, A.ALL_CUSTODIAN_DACS), "Access request {request} was withdrawn"
    ),
    "request.reminder": Rule(
        (A.CUSTODIAN_DAC,), "Access request {request} has waited {days} days for your decision"
    ),
    "decision.review_started": Rule(
        (A.TEAM,), "{organisation} started reviewing access request {request}"
    ),
    "decision.approved": Rule((A.TEAM,), "{organisation} approved access request {request}"),
    "decision.rejected": Rule((A.TEAM,), "{organisation} rejected access request {request}"),
    "decision.changes_requested": Rule(
        (A.TEAM,), "{organisation} asks for changes to access request {request}"
    ),
    "comment.posted": Rule(
        (A.TEAM, A.CUSTODIAN_DAC), "New comment on access request {request} ({organisation})"
    ),
    # Entitlements
    "entitlement.granted": Rule((A.HOLDER,), "You may now use {dataset} ({mode})"),
    "entitlement.revoked": Rule((A.HOLDER,), "Your access to {dataset} ({mode}) was revoked"),
    "entitlement.expired": Rule((A.HOLDER,), "Your access to {dataset} ({mode}) has expired"),
    "entitlement.suspended": Rule((A.HOLDER,), "Your access to {dataset} ({mode}) is suspended"),
    "entitlement.expiry_reminder": Rule(
        (A.HOLDER,), "Your access to {dataset} ({mode}) ends in {days} days"
    ),
    # Nodes serving datasets (federation): the steward proposes, the node's site admin confirms.
    "node.dataset_proposed": Rule(
        (A.ORG_SITE_ADMINS,), "Confirm that node {node} serves the dataset {dataset}"
    ),
    "node.dataset_confirmed": Rule(
        (A.ORG_STEWARDS,), "Node {node} now serves the dataset {dataset}: it can be analysed"
    ),
    # Once per reported version, when the agent is more than one minor release behind.
    "node.agent_outdated": Rule(
        (A.ORG_SITE_ADMINS,), "Node {node} runs agent {version}: please upgrade to {release}"
    ),
}


def _users_with_role(org_ids: Iterable[int], role: str):
    return get_user_model().objects.filter(
        is_active=True,
        memberships__organisation_id__in=list(org_ids),
        memberships__roles__name=role,
    )


def resolve(audience: Audience, ctx: dict) -> set:
    """The users an audience names in the context of one transition."""
    agreement = ctx.get("agreement_obj")
    access_request = ctx.get("request_obj")
    if audience in (A.PARTY_SIGNATORIES, A.PARTY_ORG_ADMINS):
        role = Role.SIGNATORY if audience == A.PARTY_SIGNATORIES else Role.ORG_ADMIN
        org_ids = agreement.parties.values_list("organisation_id", flat=True)
        return set(_users_with_role(org_ids, role))
    if audience == A.AGREEMENT_CREATOR:
        return {agreement.created_by} if agreement.created_by_id else set()
    if audience == A.TEAM:
        return {access_request.applicant, *access_request.team_members.all()}
    if audience == A.CUSTODIAN_DAC:
        return set(_users_with_role([ctx["custodian_obj"].pk], Role.DAC_MEMBER))
    if audience == A.ALL_CUSTODIAN_DACS:
        org_ids = access_request.decisions.values_list("custodian_id", flat=True)
        return set(_users_with_role(org_ids, Role.DAC_MEMBER))
    if audience in (A.ORG_SITE_ADMINS, A.ORG_STEWARDS):
        role = Role.SITE_ADMIN if audience == A.ORG_SITE_ADMINS else Role.DATA_STEWARD
        return set(_users_with_role([ctx["custodian_obj"].pk], role))
    if audience == A.HOLDER:
        return {ctx["entitlement_obj"].holder}
    raise ValueError(audience)


def recipients(event: str, ctx: dict, *, actor: User | None = None) -> set:
    users: set = set()
    for audience in TABLE[event].audiences:
        users |= resolve(audience, ctx)
    return {u for u in users if u is not None and u.is_active and u != actor}


def notify(
    event: str,
    *,
    actor: User | None = None,
    url: str = "",
    agreement: Agreement | None = None,
    access_request: AccessRequest | None = None,
    custodian: Organisation | None = None,
    entitlement: Entitlement | None = None,
    body: str = "",
    **extra: Any,
) -> list[Notification]:
    """Tell the audiences of ``event`` (in-app now, by e-mail after commit)."""
    rule = TABLE[event]
    ctx = {
        "agreement_obj": agreement,
        "request_obj": access_request,
        "custodian_obj": custodian,
        "entitlement_obj": entitlement,
        "agreement": agreement.reference if agreement else "",
        "request": access_request.reference if access_request else "",
        "organisation": custodian.name if custodian else extra.pop("organisation", ""),
        "dataset": entitlement.dataset.title if entitlement else "",
        "mode": entitlement.get_access_mode_display() if entitlement else "",
        **extra,
    }
    title = rule.title.format(**ctx)
    return notifications.notify(
        recipients=recipients(event, ctx, actor=actor),
        verb=event,
        subject=title,
        body=body,
        url=url,
        organisation=custodian,
        obj=agreement or access_request or entitlement,
    )
