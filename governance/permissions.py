"""The governance app's one access choke point.

``restrict(queryset, user, action)`` for agreement templates, agreements, access requests (with their
decisions and attachments), basket items and entitlements; objects a user may not see answer 404.
``allows(obj, user, action)`` asks the same rule about one loaded object; the services use it for
"may this person do this transition" and answer 403 with a message, because the person can already
see the object. The few ``can_*`` left are about creating something (no object yet) or about one
conversation thread of a request.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from accounts import permissions as base
from accounts.models import Role

from .models import (
    AccessRequest,
    Agreement,
    AgreementTemplate,
    Attachment,
    BasketItem,
    Decision,
    Entitlement,
)

AGREEMENT_MANAGERS = (Role.ORG_ADMIN, Role.SIGNATORY, Role.DAC_MEMBER)


# --- Agreements -------------------------------------------------------------------------------
def _agreement_view(qs: QuerySet, user) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    org_ids = base.member_org_ids(user)
    return qs.filter(Q(parties__organisation_id__in=org_ids) | Q(created_by=user)).distinct()


def _agreement_manage(qs: QuerySet, user) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    org_ids = base.org_ids_with_role(user, *AGREEMENT_MANAGERS)
    return qs.filter(Q(parties__organisation_id__in=org_ids) | Q(created_by=user)).distinct()


def _logged_in(qs: QuerySet, user) -> QuerySet:
    return qs if getattr(user, "is_authenticated", False) else qs.none()


def _nothing(qs: QuerySet, user) -> QuerySet:
    return qs.none()


def can_create_agreement(user, organisation_ids) -> bool:
    if base.is_platform_admin(user):
        return True
    return bool(set(organisation_ids) & base.org_ids_with_role(user, *AGREEMENT_MANAGERS))


def signable_parties(user, agreement) -> list:
    """The parties of ``agreement`` this user may sign for (signatory there, not yet signed)."""
    org_ids = base.org_ids_with_role(user, Role.SIGNATORY)
    return [
        p
        for p in agreement.parties.all()
        if p.organisation_id in org_ids and not hasattr(p, "signature")
    ]


def can_manage_templates(user) -> bool:
    return base.is_platform_admin(user)


# --- Access requests --------------------------------------------------------------------------
def dac_org_ids(user) -> set[int]:
    return base.org_ids_with_role(user, Role.DAC_MEMBER)


def _request_view(qs: QuerySet, user) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    rule = Q(applicant=user) | Q(team_members=user)
    dac = dac_org_ids(user)
    if dac:
        # Drafts have no decisions yet, so custodians never see them.
        rule |= Q(decisions__custodian_id__in=dac)
    return qs.filter(pk__in=qs.model.objects.filter(rule).values("pk"))


def _request_edit(qs: QuerySet, user) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    return qs.filter(applicant=user)


def _decision_view(qs: QuerySet, user) -> QuerySet:
    return qs.filter(request__in=_request_view(AccessRequest.objects.all(), user).values("pk"))


def _decision_decide(qs: QuerySet, user) -> QuerySet:
    # Only the custodian's committee decides: platform admins do not (no bypass).
    return qs.filter(custodian_id__in=dac_org_ids(user))


def _attachment_view(qs: QuerySet, user) -> QuerySet:
    return qs.filter(request__in=_request_view(AccessRequest.objects.all(), user).values("pk"))


def _own_basket(qs: QuerySet, user) -> QuerySet:
    return qs.filter(user=user) if getattr(user, "is_authenticated", False) else qs.none()


def is_team(user, access_request) -> bool:
    if access_request.applicant_id == getattr(user, "pk", None):
        return True
    return access_request.team_members.filter(pk=user.pk).exists()


class ConflictOfInterest(PermissionDenied):
    """A committee member may not decide on a request they have a stake in (answered 403)."""

    code = "conflict_of_interest"


def decision_conflict(access_request, user, custodian_id: int | None = None) -> str | None:
    """Why ``user`` may not decide on ``access_request``, or None: the one conflict-of-interest rule.

    A committee member is conflicted when they are the applicant, on the request's team, or a
    member of the applicant's organisation. The last does not apply when the applicant's
    organisation is the deciding custodian itself: its committee members all belong to it, and an
    organisation's own committee decides on its researchers' requests for its own data.
    """
    user_id = getattr(user, "pk", None)
    if user_id is None:
        return None
    if access_request.applicant_id == user_id:
        return "Conflict of interest: you are the applicant of this request."
    if access_request.team_members.filter(pk=user_id).exists():
        return "Conflict of interest: you are a member of this request's team."
    org_id = access_request.organisation_id
    if org_id != custodian_id and org_id in base.member_org_ids(user):
        return (
            "Conflict of interest: you belong to the applicant's organisation "
            f"({access_request.organisation}); another committee member must decide."
        )
    return None


def require_no_conflict(access_request, user, custodian_id: int | None = None) -> None:
    reason = decision_conflict(access_request, user, custodian_id)
    if reason:
        raise ConflictOfInterest(reason)


def visible_thread_custodian_ids(user, access_request, custodian_ids) -> set[int]:
    """Threads a user reads: the team and platform admins all of them, a DAC only its own."""
    if base.is_platform_admin(user) or is_team(user, access_request):
        return set(custodian_ids)
    return set(custodian_ids) & dac_org_ids(user)


def can_comment(user, access_request, custodian_id: int) -> bool:
    return is_team(user, access_request) or custodian_id in dac_org_ids(user)


# --- Entitlements -----------------------------------------------------------------------------
def _entitlement_view(qs: QuerySet, user) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    rule = Q(holder=user)
    dac = dac_org_ids(user)
    if dac:
        rule |= _custodian_rule(dac)
    return qs.filter(rule)


def _custodian_rule(dac: set[int]) -> Q:
    return Q(dataset__data_access_committee_id__in=dac) | Q(
        dataset__data_access_committee__isnull=True, dataset__publisher_id__in=dac
    )


def _entitlement_revoke(qs: QuerySet, user) -> QuerySet:
    dac = dac_org_ids(user)
    return qs.filter(_custodian_rule(dac)) if dac else qs.none()


# --- The one entry ----------------------------------------------------------------------------
restrict = base.ModelRestrictor(
    {
        # Templates are read by everyone signed in; publishing one is for platform admins (bypass).
        AgreementTemplate: base.Restrictor({"view": _logged_in, "manage": _nothing}),
        Agreement: base.Restrictor({"view": _agreement_view, "manage": _agreement_manage}),
        AccessRequest: base.Restrictor(
            {"view": _request_view, "edit": _request_edit}, admin_bypass_excluded={"edit"}
        ),
        Decision: base.Restrictor(
            {"view": _decision_view, "decide": _decision_decide}, admin_bypass_excluded={"decide"}
        ),
        Attachment: base.Restrictor({"view": _attachment_view}),
        # A basket is its owner's alone, platform admins included.
        BasketItem: base.Restrictor({"view": _own_basket}, admin_bypass_excluded={"view"}),
        Entitlement: base.Restrictor({"view": _entitlement_view, "revoke": _entitlement_revoke}),
    }
)
allows = restrict.allows
