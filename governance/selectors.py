"""Reads of the governance app, including the two the federation app calls before any analysis."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING

from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from catalogue import selectors as catalogue_selectors
from catalogue.models import Dataset

from . import permissions
from .models import (
    ACCESS_GATING_KINDS,
    PERMISSION_FOR_MODE,
    AccessRequest,
    Agreement,
    AgreementStatus,
    Decision,
    DecisionStatus,
    Entitlement,
    EntitlementStatus,
    RequestStatus,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

    from .models import RequestedDataset


# --- Entitlements: the contract with the federation app ---------------------------------------
def _usable_entitlements(*, user, access_mode: str) -> QuerySet[Entitlement]:
    """Active, in force now, resting on the dataset's current terms of use, and backed by the
    guardian object permission for the mode."""
    now = timezone.now()
    if not getattr(user, "is_authenticated", False) or access_mode not in PERMISSION_FOR_MODE:
        return Entitlement.objects.none()
    # The entitlement row says when and on which terms; the django-guardian object permission it
    # keeps in step is what the catalogue's choke point reads. Both must hold (fail closed).
    permitted = catalogue_selectors.dataset_list_for_user(user=user, action=access_mode)
    return Entitlement.objects.filter(
        holder=user,
        access_mode=access_mode,
        status=EntitlementStatus.ACTIVE,
        starts_at__lte=now,
        ends_at__gt=now,
        dataset__in=permitted.values("pk"),
    ).filter(
        Q(dataset__current_version__terms_of_use__isnull=True)
        | Q(terms_id=F("dataset__current_version__terms_of_use_id"))
    )


def entitled_dataset_ids(*, user: User | AnonymousUser, access_mode: str) -> QuerySet:
    """Ids of the datasets the user may use in ``access_mode`` right now (a subquery)."""
    return _usable_entitlements(user=user, access_mode=access_mode).values("dataset_id")


def entitled_datasets(*, user: User | AnonymousUser, access_mode: str) -> QuerySet[Dataset]:
    """Datasets the user may use in ``access_mode`` right now (and may see in the catalogue)."""
    return catalogue_selectors.dataset_list_for_user(
        user=user, ids=entitled_dataset_ids(user=user, access_mode=access_mode)
    )


def missing_entitlements(
    *, user: User | AnonymousUser, datasets: Iterable[Dataset], access_mode: str
) -> list[Dataset]:
    """The datasets among ``datasets`` the user may NOT use in ``access_mode`` (empty = allowed)."""
    datasets = list(datasets)
    allowed = set(
        _usable_entitlements(user=user, access_mode=access_mode)
        .filter(dataset_id__in=[d.pk for d in datasets])
        .values_list("dataset_id", flat=True)
    )
    return [d for d in datasets if d.pk not in allowed]


def entitlement_projects(
    *, user: User | AnonymousUser, datasets: Iterable[Dataset], access_mode: str
) -> list[str]:
    """The projects behind the user's usable entitlements for ``datasets``: the reference of each
    entitling access request's first request (a renewal continues its project). The federation
    app sends them with each run so a node compares releases within a project."""
    request_ids = (
        _usable_entitlements(user=user, access_mode=access_mode)
        .filter(dataset_id__in=[d.pk for d in datasets])
        .order_by()
        .values_list("request_id", flat=True)
        .distinct()
    )
    roots: set[int] = set()
    for request in AccessRequest.objects.filter(pk__in=request_ids).only("pk", "renewal_of_id"):
        seen = {request.pk}
        while request.renewal_of_id and request.renewal_of_id not in seen:
            seen.add(request.renewal_of_id)
            request = AccessRequest.objects.only("pk", "renewal_of_id").get(
                pk=request.renewal_of_id
            )
        roots.add(request.pk)
    return [AccessRequest(pk=pk).reference for pk in sorted(roots)]


def entitlement_list(
    *, user: User | AnonymousUser, filters: dict | None = None
) -> QuerySet[Entitlement]:
    qs = permissions.restrict(
        Entitlement.objects.select_related(
            "dataset", "dataset__current_version", "holder", "request", "agreement"
        ),
        user,
        "view",
    )
    filters = filters or {}
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    if filters.get("mine"):
        qs = qs.filter(holder=user)
    return qs.order_by("ends_at", "pk")


# --- Agreements -------------------------------------------------------------------------------
def covering_agreement(
    *, item: RequestedDataset, organisation_id: int, on: date | None = None
) -> Agreement | None:
    """The active agreement that makes access to ``item.dataset`` lawful for the organisation."""
    on = on or timezone.localdate()
    dataset = item.dataset
    candidates = (
        Agreement.objects.filter(
            status=AgreementStatus.ACTIVE,
            kind__in=ACCESS_GATING_KINDS,
            effective_date__lte=on,
            expiry_date__gt=on,
            parties__organisation_id=dataset.publisher_id,
        )
        .filter(parties__organisation_id=organisation_id)
        .annotate(n_datasets=Count("datasets", distinct=True))
        .order_by("-expiry_date", "-pk")
    )
    for agreement in candidates:
        if agreement.n_datasets == 0 or agreement.datasets.filter(pk=dataset.pk).exists():
            return agreement
    return None


def agreement_list(
    *, user: User | AnonymousUser, filters: dict | None = None
) -> QuerySet[Agreement]:
    qs = permissions.restrict(
        Agreement.objects.select_related("template").prefetch_related("parties__organisation"),
        user,
        "view",
    )
    filters = filters or {}
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    if filters.get("kind"):
        qs = qs.filter(kind=filters["kind"])
    return qs


def agreements_to_sign(*, user: User | AnonymousUser) -> QuerySet[Agreement]:
    from accounts import permissions as base
    from accounts.models import Role

    org_ids = base.org_ids_with_role(user, Role.SIGNATORY)
    return (
        Agreement.objects.filter(
            status=AgreementStatus.OUT_FOR_SIGNATURE,
            parties__organisation_id__in=org_ids,
            parties__signature__isnull=True,
        )
        .distinct()
        .order_by("sent_at")
    )


# --- Requests ---------------------------------------------------------------------------------
def access_request_list(
    *, user: User | AnonymousUser, filters: dict | None = None
) -> QuerySet[AccessRequest]:
    qs = permissions.restrict(
        AccessRequest.objects.select_related("applicant", "organisation"), user, "view"
    )
    filters = filters or {}
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    if filters.get("mine"):
        qs = qs.filter(Q(applicant=user) | Q(team_members=user)).distinct()
    return qs.order_by("-created_at", "-pk")


def decisions_waiting(*, user: User | AnonymousUser) -> QuerySet[Decision]:
    dac = permissions.dac_org_ids(user)
    return (
        Decision.objects.filter(
            custodian_id__in=dac,
            status__in=(DecisionStatus.PENDING, DecisionStatus.UNDER_REVIEW),
            request__status__in=(
                RequestStatus.SUBMITTED,
                RequestStatus.UNDER_REVIEW,
                RequestStatus.CHANGES_REQUESTED,
                RequestStatus.RESUBMITTED,
            ),
        )
        .select_related("request", "custodian", "request__organisation")
        .order_by("waiting_since", "pk")
    )
