"""Pages of federated learning: start a job, follow it (htmx), abort, release gate, model registry."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.htmx import render_page
from accounts.view_actions import perform, refused

from .. import selectors as federation_selectors
from ..analysis_types import FEDERATED_LEARNING
from . import nvflare_available, selectors
from . import services as fl
from .forms import DeclineForm, FlJobForm, ReleaseForm


def _fl_datasets(user):
    return federation_selectors.analysable_datasets(user=user, access_mode=FEDERATED_LEARNING)


@login_required
def home(request):
    return render(
        request,
        "federation/fl/home.html",
        {
            "jobs": list(selectors.fl_job_list(user=request.user)[:100]),
            "to_release": list(selectors.release_queue(user=request.user)),
            "nvflare": nvflare_available(),
        },
    )


@login_required
def create(request):
    form = FlJobForm(request.POST or None, datasets=_fl_datasets(request.user))
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                fl_job = fl.fl_create(
                    researcher=request.user,
                    datasets=list(form.cleaned_data["datasets"]),
                    params=form.params(),
                    title=form.cleaned_data.get("title", ""),
                )
            except PermissionDenied as exc:
                form.add_error(None, str(exc))
                status = 403
            except ValidationError as exc:
                for field, errors in getattr(
                    exc, "message_dict", {"__all__": exc.messages}
                ).items():
                    for error in errors:
                        form.add_error(
                            None, error if field in ("params", "__all__") else f"{field}: {error}"
                        )
            else:
                messages.success(request, "The training job was sent to FLARE.")
                return redirect("federation:fl_job", pk=fl_job.pk)
    return render(
        request,
        "federation/fl/form.html",
        {
            "form": form,
            "nvflare": nvflare_available(),
            "schema": json.dumps(fl.FL_KIND.params_schema(), indent=1),
        },
        status=status,
    )


def _rows(fl_job) -> dict:
    report = fl_job.progress or {}
    rounds = report.get("rounds") or []
    site_names = list(fl_job.sites)
    table = []
    for r in rounds:
        table.append(
            {
                "round": r.get("round"),
                "pooled": r.get("pooled") or {},
                "sites": [(r.get("sites") or {}).get(s, {}) for s in site_names],
            }
        )
    latest = rounds[-1]["sites"] if rounds else {}
    return {
        "site_names": site_names,
        "round_rows": table,
        "latest": [(s, latest.get(s, {})) for s in site_names],
        "final": report.get("final"),
        "current_round": report.get("current_round") or 0,
        "num_rounds": report.get("num_rounds") or fl_job.analysis.params.get("rounds"),
    }


@login_required
def detail(request, pk: int):
    fl_job = selectors.fl_job_get(user=request.user, pk=pk)
    context = {
        "fl_job": fl_job,
        "analysis": fl_job.analysis,
        "polling": fl_job.is_open,
        "can_abort": fl_job.is_open and fl_job.analysis.researcher_id == request.user.pk,
        "can_release": fl_job.status == "awaiting_release" and fl.can_release(request.user, fl_job),
        "release_form": ReleaseForm(initial={"name": fl_job.analysis.title}),
        "decline_form": DeclineForm(),
        "params_json": json.dumps(fl_job.analysis.params, indent=2),
        **_rows(fl_job),
    }
    return render_page(
        request, "federation/fl/detail.html", context, partial="federation/fl/_body.html"
    )


@login_required
@require_POST
def abort(request, pk: int):
    fl_job = selectors.fl_job_get(user=request.user, pk=pk, action="abort")
    here = reverse("federation:fl_job", args=[pk])
    return perform(
        request,
        lambda: fl.fl_abort(actor=request.user, fl_job=fl_job),
        success_url=here,
        success_message="The training job was aborted.",
        failure_url=here,
        catch=(ValidationError,),
    )


@login_required
@require_POST
def release(request, pk: int):
    fl_job = selectors.fl_job_get(user=request.user, pk=pk, action="release")
    form = ReleaseForm(request.POST)
    form.is_valid()
    return perform(
        request,
        lambda: fl.fl_release(
            actor=request.user, fl_job=fl_job, name=form.cleaned_data.get("name", "")
        ),
        success_url=lambda model: reverse("federation:model", args=[model.pk]),
        success_message=lambda model: f"Released into the registry as {model}.",
        failure_url=reverse("federation:fl_job", args=[pk]),
    )


@login_required
@require_POST
def decline(request, pk: int):
    fl_job = selectors.fl_job_get(user=request.user, pk=pk, action="release")
    form = DeclineForm(request.POST)
    form.is_valid()
    here = reverse("federation:fl_job", args=[pk])
    return perform(
        request,
        lambda: fl.fl_decline(
            actor=request.user, fl_job=fl_job, reason=form.cleaned_data.get("reason", "")
        ),
        success_url=here,
        success_message="The release was declined; the model was discarded.",
        failure_url=here,
    )


@login_required
def model_list(request):
    models = list(selectors.model_list(user=request.user).order_by("name", "-version"))
    return render(request, "federation/fl/model_list.html", {"models": models})


@login_required
def model_detail(request, pk: int):
    model = selectors.model_get(user=request.user, pk=pk)
    versions = list(
        selectors.model_list(user=request.user).filter(name=model.name).order_by("-version")
    )
    return render(
        request,
        "federation/fl/model_detail.html",
        {
            "model": model,
            "versions": versions,
            "can_download": fl.can_download(request.user, model),
        },
    )


@login_required
def model_download(request, pk: int):
    model = selectors.model_get(user=request.user, pk=pk)
    try:
        payload = fl.model_download(actor=request.user, model=model)
    except PermissionDenied as exc:  # a download, not a redirect: say why on the refusal page
        return refused(
            request, status=403, messages=[str(exc)], back=reverse("federation:model", args=[pk])
        )
    response = HttpResponse(json.dumps(payload, indent=2), content_type="application/json")
    response["Content-Disposition"] = (
        f'attachment; filename="model-{model.pk}-v{model.version}.json"'
    )
    return response


@login_required
def model_card(request, pk: int):
    model = selectors.model_get(user=request.user, pk=pk)
    response = HttpResponse(model.model_card, content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="model-{model.pk}-v{model.version}-card.md"'
    )
    return response
