from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.permissions import get_for_user_or_404
from accounts.view_actions import perform

from .. import datasets as ds
from .. import permissions, selectors, services
from ..forms import ReasonForm
from ..models import Entitlement, EntitlementStatus
from .common import posted


def _get(request, pk: int, action: str = "view") -> Entitlement:
    return get_for_user_or_404(
        permissions.restrict(
            Entitlement.objects.select_related("dataset__current_version", "holder", "request"),
            request.user,
            action,
        ),
        pk=pk,
    )


@login_required
def entitlement_list(request):
    rows = list(selectors.entitlement_list(user=request.user, filters=request.GET)[:500])
    revocable = permissions.restrict.allowed_pks(
        Entitlement.objects.filter(pk__in=[e.pk for e in rows]), request.user, "revoke"
    )
    rows = [
        {
            "e": e,
            "title": ds.title(e.dataset),
            "needs_terms": e.status == EntitlementStatus.SUSPENDED
            and e.suspension_reason == "terms_changed",
            "can_revoke": e.status in (EntitlementStatus.ACTIVE, EntitlementStatus.SUSPENDED)
            and e.pk in revocable,
        }
        for e in rows
    ]
    return render(
        request,
        "governance/entitlement_list.html",
        {"rows": rows, "statuses": EntitlementStatus.choices},
    )


def _back() -> str:
    return reverse("governance:entitlements")


@login_required
@require_POST
def entitlement_revoke(request, pk: int):
    entitlement = _get(request, pk)
    data, invalid = posted(request, ReasonForm, back=_back())
    if invalid:
        return invalid
    return perform(
        request,
        lambda: services.entitlement_revoke(
            actor=request.user, entitlement=entitlement, reason=data["reason"]
        ),
        success_url=_back(),
        success_message="Entitlement revoked.",
        back=_back(),
    )


@login_required
@require_POST
def entitlement_accept_terms(request, pk: int):
    entitlement = _get(request, pk)
    return perform(
        request,
        lambda: services.entitlement_accept_terms(actor=request.user, entitlement=entitlement),
        success_url=_back(),
        success_message="Terms accepted.",
        back=_back(),
    )


@login_required
@require_http_methods(["GET", "POST"])
def entitlement_renew(request, pk: int):
    entitlement = _get(request, pk)
    if request.method == "GET":
        return render(
            request,
            "governance/entitlement_renew.html",
            {"e": entitlement, "title": ds.title(entitlement.dataset)},
        )
    return perform(
        request,
        lambda: services.entitlement_renew(actor=request.user, entitlement=entitlement),
        success_url=lambda renewal: reverse("governance:request_edit", args=[renewal.pk]),
        success_message=lambda renewal: (
            f"Renewal draft {renewal.reference} created from the original request."
        ),
        back=_back(),
    )
