"""Thin HTML views: analyses (create, follow, results, downloads), the node registry, the review queue."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.htmx import render_page
from accounts.models import Organisation, Role
from accounts.permissions import get_for_user_or_404, is_platform_admin, org_ids_with_role
from accounts.view_actions import error_messages, perform, refused
from catalogue import selectors as catalogue_selectors

from . import exports, permissions, selectors, services, versions
from .forms import AnalysisForm, DeclineForm, NodeDatasetsForm, NodeRegisterForm
from .models import AnalysisStatus, NodeStatus, RunStatus
from .permissions import sees_node_registry


def _form_errors(form, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form's fields (params on the JSON box or on top)."""
    if not hasattr(exc, "error_dict"):
        for error in exc.messages:
            form.add_error(None, error)
        return
    for field, errors in exc.message_dict.items():
        if field == "params":
            target = "params_json" if form.cleaned_data.get("params_json") else None
        else:
            target = field if field in form.fields else None
        for error in errors:
            form.add_error(target, error if target else f"{field}: {error}")


# --- analyses ----------------------------------------------------------------------------------


@login_required
def home(request):
    analyses = selectors.analysis_list(user=request.user).order_by("-created_at")[:100]
    stewarded = selectors.stewarded_served_datasets(user=request.user)
    return render(
        request,
        "federation/analysis_list.html",
        {"analyses": analyses, "stewarded": stewarded},
    )


@login_required
@require_POST
def dataset_refresh(request, pk: int):
    """A steward asks the nodes for a characterisation that refreshes the catalogue entry."""
    dataset = get_for_user_or_404(selectors.stewarded_served_datasets(user=request.user), pk=pk)
    return perform(
        request,
        lambda: services.dataset_metadata_refresh(steward=request.user, dataset=dataset),
        success_url=lambda analysis: reverse("federation:analysis", args=[analysis.pk]),
        success_message="The nodes were asked for a characterisation of the dataset.",
        failure_url=reverse("federation:home"),
    )


@login_required
@require_POST
def dataset_profile_request(request, pk: int):
    """A steward asks the nodes serving their dataset for the database profile."""
    dataset = get_for_user_or_404(selectors.stewarded_served_datasets(user=request.user), pk=pk)
    return perform(
        request,
        lambda: services.dataset_profile_request(steward=request.user, dataset=dataset),
        success_url=lambda analysis: reverse("federation:analysis", args=[analysis.pk]),
        success_message="The nodes were asked for the dataset's database profile.",
        failure_url=reverse("federation:home"),
    )


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) < 12 else 0


@login_required
@require_POST
def analysis_profile_attach(request, pk: int):
    """The steward attaches a released database profile to one of its datasets."""
    analysis = selectors.analysis_get_for_user(user=request.user, pk=pk)
    dataset = get_for_user_or_404(
        selectors.profile_attach_targets(user=request.user, analysis=analysis),
        pk=_int(request.POST.get("dataset")),
    )
    here = reverse("federation:analysis", args=[pk])
    return perform(
        request,
        lambda: services.dataset_profile_attach_from_analysis(
            steward=request.user, analysis=analysis, dataset=dataset
        ),
        success_url=reverse("catalogue:detail", args=[dataset.identifier]),
        success_message="The database profile was attached to the dataset.",
        failure_url=here,
    )


@login_required
def analysis_create(request):
    form = AnalysisForm(
        request.POST or None,
        request.FILES or None,
        datasets=selectors.analysable_datasets(user=request.user),
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                analysis = services.analysis_create(
                    researcher=request.user,
                    analysis_type=data["type"],
                    version=data["version"],
                    params=data["params"],
                    datasets=list(data["datasets"]),
                    min_nodes=data.get("min_nodes"),
                    title=data.get("title", ""),
                    run_deadline_hours=data.get("deadline_hours") or 24,
                )
            except PermissionDenied as exc:
                form.add_error(None, str(exc))
                status = 403
            except ValidationError as exc:
                _form_errors(form, exc)
            else:
                messages.success(request, "The analysis was sent to the nodes.")
                return redirect("federation:analysis", pk=analysis.pk)
    return render(
        request,
        "federation/analysis_form.html",
        {
            "form": form,
            "not_yet": selectors.entitled_but_not_analysable(user=request.user),
            "request_access_url": reverse("catalogue:search"),
        },
        status=status,
    )


def _analysis_context(analysis) -> dict:
    runs = list(analysis.runs.all())
    current = [r for r in runs if r.round == analysis.current_round]
    return {
        "analysis": analysis,
        "runs": current,
        "earlier_rounds": analysis.current_round - 1,
        "result": analysis.result,
        "polling": analysis.status == AnalysisStatus.RUNNING,
        **exports.plot_context(analysis),
    }


@login_required
def analysis_detail(request, pk: int):
    analysis = selectors.analysis_get_for_user(user=request.user, pk=pk)
    page = analysis.kind.page(analysis) if analysis.kind else None
    if page:
        return redirect(page)
    context = _analysis_context(analysis)
    context["profile_targets"] = selectors.profile_attach_targets(
        user=request.user, analysis=analysis
    )
    return render_page(
        request,
        "federation/analysis_detail.html",
        context,
        partial="federation/partials/analysis_body.html",
    )


@login_required
@require_POST
def analysis_cancel(request, pk: int):
    analysis = selectors.analysis_get_for_user(user=request.user, pk=pk, action="cancel")
    here = reverse("federation:analysis", args=[pk])
    return perform(
        request,
        lambda: services.analysis_cancel(actor=request.user, analysis=analysis),
        success_url=here,
        success_message="The analysis was cancelled.",
        failure_url=here,
        catch=(ValidationError,),
    )


def _finished_or_404(request, pk: int):
    analysis = selectors.analysis_get_for_user(user=request.user, pk=pk)
    if analysis.status != AnalysisStatus.COMPLETED or not analysis.result:
        raise Http404("No result yet.")
    return analysis


@login_required
def analysis_csv(request, pk: int):
    analysis = _finished_or_404(request, pk)
    response = HttpResponse(exports.to_csv(analysis), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="analysis-{pk}-{analysis.type}.csv"'
    return response


@login_required
def analysis_json(request, pk: int):
    analysis = _finished_or_404(request, pk)
    response = HttpResponse(exports.to_json(analysis), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="analysis-{pk}-{analysis.type}.json"'
    return response


@login_required
def analysis_pdf(request, pk: int):
    analysis = _finished_or_404(request, pk)
    pdf = exports.to_pdf(analysis, list(analysis.runs.all()))
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="analysis-{pk}-report.pdf"'
    return response


# --- node registry -----------------------------------------------------------------------------


def _registry_or_404(user) -> None:
    if not sees_node_registry(user):
        raise Http404("No such page.")


@login_required
def node_list(request):
    _registry_or_404(request.user)
    nodes = list(selectors.node_list(user=request.user))
    metrics = selectors.node_metrics(nodes)
    rows = [{"node": n, **metrics[n.pk]} for n in nodes]
    can_register = is_platform_admin(request.user) or bool(
        org_ids_with_role(request.user, Role.SITE_ADMIN)
    )
    return render(
        request,
        "federation/node_list.html",
        {
            "rows": rows,
            "can_register": can_register,
            "is_platform_admin": is_platform_admin(request.user),
            "agent_release": versions.AGENT_RELEASE,
        },
    )


def _register_orgs(user):
    if is_platform_admin(user):
        return Organisation.objects.all()
    return Organisation.objects.filter(pk__in=org_ids_with_role(user, Role.SITE_ADMIN))


@login_required
def node_register(request):
    organisations = _register_orgs(request.user)
    if not organisations.exists():
        raise Http404("No such page.")
    form = NodeRegisterForm(request.POST or None, organisations=organisations)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                node = services.node_register(
                    actor=request.user,
                    organisation=form.cleaned_data["organisation"],
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                )
            except ValidationError as exc:
                _form_errors(form, exc)
            else:
                messages.success(
                    request, "The node is registered; a platform administrator will approve it."
                )
                return redirect("federation:node", pk=node.pk)
    return render(request, "federation/node_register.html", {"form": form}, status=status)


def _node_context(request, node, **extra) -> dict:
    can_manage = permissions.allows(node, request.user, "manage")
    served = list(node.served_datasets.select_related("dataset", "proposed_by"))
    datasets_form = None
    if can_manage:
        datasets_form = NodeDatasetsForm(
            initial={"datasets": [s.dataset_id for s in served if s.status == "confirmed"]},
            datasets=catalogue_selectors.datasets_of_publisher(organisation=node.organisation),
        )
    recent = node.runs.select_related("analysis").order_by("-created_at")[:20]
    return {
        "node": node,
        "metrics": selectors.node_metrics([node])[node.pk],
        "served": served,
        "can_manage": can_manage,
        "can_approve": is_platform_admin(request.user) and node.status == NodeStatus.PENDING,
        "datasets_form": datasets_form,
        "recent_runs": recent,
        "agent_release": versions.AGENT_RELEASE,
        **extra,
    }


@login_required
def node_detail(request, pk: int):
    node = selectors.node_get_for_user(user=request.user, pk=pk)
    return render(request, "federation/node_detail.html", _node_context(request, node))


def _issue_token(request, pk: int, action: str, issue):
    """Approve or rotate: the new token is shown in this response only; it is stored hashed."""
    node = selectors.node_get_for_user(user=request.user, pk=pk, action=action)
    try:
        token = issue(actor=request.user, node=node)
    except ValidationError as exc:  # the page shows the token once: no redirect to answer with
        return refused(
            request,
            status=400,
            messages=error_messages(exc),
            back=reverse("federation:node", args=[pk]),
        )
    node.refresh_from_db()
    return render(
        request, "federation/node_detail.html", _node_context(request, node, new_token=token)
    )


@login_required
@require_POST
def node_approve(request, pk: int):
    return _issue_token(request, pk, "approve", services.node_approve)


@login_required
@require_POST
def node_rotate(request, pk: int):
    return _issue_token(request, pk, "manage", services.node_rotate_token)


@login_required
@require_POST
def node_confirm_identity(request, pk: int):
    node = selectors.node_get_for_user(user=request.user, pk=pk, action="manage")
    try:
        services.node_confirm_identity(actor=request.user, node=node)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "The new identity key is pinned; secure rounds may use it.")
    return redirect("federation:node", pk=pk)


@login_required
@require_POST
def node_revoke(request, pk: int):
    node = selectors.node_get_for_user(user=request.user, pk=pk, action="manage")
    here = reverse("federation:node", args=[pk])
    return perform(
        request,
        lambda: services.node_revoke(actor=request.user, node=node),
        success_url=here,
        success_message="The node is revoked; its agent will stop at its next request.",
        failure_url=here,
        catch=(ValidationError,),
    )


@login_required
@require_POST
def node_datasets(request, pk: int):
    node = selectors.node_get_for_user(user=request.user, pk=pk, action="manage")
    form = NodeDatasetsForm(
        request.POST,
        datasets=catalogue_selectors.datasets_of_publisher(organisation=node.organisation),
    )
    if not form.is_valid():
        return render(
            request,
            "federation/node_detail.html",
            _node_context(request, node) | {"datasets_form": form},
            status=400,
        )
    services.node_set_datasets(
        actor=request.user, node=node, datasets=form.cleaned_data["datasets"]
    )
    messages.success(request, "The datasets this node serves were saved.")
    return redirect("federation:node", pk=pk)


# --- site admins' review queue ------------------------------------------------------------------


@login_required
def review_queue(request):
    if not org_ids_with_role(request.user, Role.SITE_ADMIN):
        raise Http404("No such page.")
    runs = list(selectors.review_queue(user=request.user))
    return render(
        request,
        "federation/review_queue.html",
        {"runs": runs, "decline_form": DeclineForm(), "RunStatus": RunStatus},
    )


def _decide(request, pk: int, action, success_message: str):
    run = selectors.run_get_for_review(user=request.user, pk=pk)
    review = reverse("federation:review")
    return perform(
        request,
        lambda: action(run),
        success_url=review,
        success_message=success_message.format(run=run),
        failure_url=review,
        catch=(ValidationError,),
    )


@login_required
@require_POST
def run_approve(request, pk: int):
    return _decide(
        request,
        pk,
        lambda run: services.run_approve(actor=request.user, run=run),
        "Run {run.pk} approved; the node will execute it.",
    )


@login_required
@require_POST
def run_release(request, pk: int):
    return _decide(
        request,
        pk,
        lambda run: services.run_release(actor=request.user, run=run),
        "The numbers of run {run.pk} were released to the researcher.",
    )


@login_required
@require_POST
def run_decline(request, pk: int):
    form = DeclineForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""

    return _decide(
        request,
        pk,
        lambda run: services.run_decline(actor=request.user, run=run, reason=reason),
        "Run {run.pk} was declined.",
    )
