"""Thin HTML views of the centralised route: the steward's datasets, one dataset's uploads and
versions (with the chunked upload form, static/central/upload.js), one upload's progress and report."""

from __future__ import annotations

import csv
import io
import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.htmx import render_page
from accounts.view_actions import perform
from catalogue import selectors as catalogue_selectors
from catalogue.models import AccessMode, Dataset
from optima_node.policy import Policy

from . import permissions, selectors, services, warehouse
from .models import ACTIVE_STATUSES, UploadStatus

REPORT_COLUMNS = [
    "severity",
    "check",
    "table",
    "field",
    "failed",
    "rows",
    "description",
    "examples",
]


@login_required
def index(request):
    datasets = selectors.central_datasets(user=request.user)
    served = {
        v.dataset_id: v for v in selectors.version_list(user=request.user).filter(status="served")
    }
    rows = [(d, served.get(d.pk)) for d in datasets]
    policies = [
        d
        for d in permissions.restrict(Dataset.objects.order_by("title"), request.user, "set_policy")
        if AccessMode.CENTRAL_COPY in (d.access_modes or [])
    ]
    return render(request, "central/index.html", {"rows": rows, "policies": policies})


@login_required
def dataset(request, pk: int):
    ds = catalogue_selectors.dataset_get_for_user(user=request.user, pk=pk, action="steward")
    versions = list(selectors.version_list(user=request.user, dataset=ds))
    retirable = permissions.restrict.allowed_pks(
        selectors.version_list(user=request.user, dataset=ds), request.user, "retire"
    )
    context = {
        "dataset": ds,
        "offered": AccessMode.CENTRAL_COPY in (ds.access_modes or []),
        "uploads": selectors.upload_list(user=request.user, dataset=ds)[:20],
        "versions": [(v, v.pk in retirable) for v in versions],
        "chunk_bytes": settings.CENTRAL_CHUNK_MAX_BYTES,
        "policy_editable": permissions.allows(ds, request.user, "set_policy"),
    }
    return render(request, "central/dataset.html", context)


@login_required
def upload(request, pk: int):
    item = selectors.upload_get_for_user(user=request.user, pk=pk)
    context = {"upload": item, "active": item.status in (*ACTIVE_STATUSES, UploadStatus.RECEIVING)}
    return render_page(
        request, "central/upload.html", context, partial="central/partials/upload_status.html"
    )


@login_required
def report_json(request, pk: int):
    item = selectors.upload_get_for_user(user=request.user, pk=pk)
    response = HttpResponse(
        json.dumps(item.report, indent=2), content_type="application/json; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="central-check-{item.pk}.json"'
    return response


@login_required
def report_csv(request, pk: int):
    item = selectors.upload_get_for_user(user=request.user, pk=pk)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(REPORT_COLUMNS)
    for check in item.report.get("checks", []):
        row = {**check, "examples": "; ".join(check.get("examples", []))}
        writer.writerow([row.get(c, "") for c in REPORT_COLUMNS])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="central-check-{item.pk}.csv"'
    return response


@login_required
@require_POST
def retire(request, pk: int):
    version = selectors.version_get_for_user(user=request.user, pk=pk, action="retire")
    back = reverse("central:dataset", args=[version.dataset_id])
    return perform(
        request,
        lambda: services.version_retire(user=request.user, version=version),
        success_url=back,
        success_message=f"Version {version.number} was retired and its data dropped.",
        back=back,
    )


def _operator_or_404(request) -> None:
    if not permissions.may_operate(request.user):
        raise Http404("No such page.")


def _node_page(request, *, new_token: str = ""):
    context = {
        "node": selectors.central_node(),
        "new_token": new_token,
        "portal_url": settings.PORTAL_BASE_URL,
        "served": selectors.served_versions().count(),
        "postgresql": warehouse.is_postgresql(),
    }
    response = render(request, "central/node.html", context)
    if new_token:
        response["Cache-Control"] = "no-store"  # the credential is in this page only
    return response


@login_required
def node(request):
    """The operator's page of the central node: enrol it, rotate or revoke its credential."""
    _operator_or_404(request)
    return _node_page(request)


@login_required
@require_POST
def node_enrol(request):
    _operator_or_404(request)
    _, token = services.central_node_enrol(actor=request.user)
    return _node_page(request, new_token=token)  # shown in this response only


@login_required
@require_POST
def node_revoke(request):
    _operator_or_404(request)
    back = reverse("central:node")
    return perform(
        request,
        lambda: services.central_node_revoke(actor=request.user),
        success_url=back,
        success_message="The central node's credential was revoked.",
        back=back,
    )


@login_required
def policy(request, pk: int):
    """The data provider's site admin sets the disclosure policy of its central copy."""
    ds = selectors.dataset_for_policy(user=request.user, pk=pk)
    text = Policy.model_validate(selectors.policy_of(ds)).to_toml()
    errors: list[str] = []
    if request.method == "POST":
        text = request.POST.get("policy", "")
        try:
            services.central_policy_set(user=request.user, dataset=ds, text=text)
        except ValidationError as exc:
            errors = exc.messages
        else:
            messages.success(
                request, "The policy was saved; the central node applies it within a minute."
            )
            return redirect("central:policy", pk=ds.pk)
    return render(
        request,
        "central/policy.html",
        {"dataset": ds, "text": text, "errors": errors},
        status=400 if errors else 200,
    )
