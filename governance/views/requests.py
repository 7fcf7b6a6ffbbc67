from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Organisation
from accounts.permissions import get_for_user_or_404, object_for_user_or_404
from accounts.selectors import audit_events_for_object
from accounts.view_actions import error_messages, perform, refused

from .. import datasets as ds
from .. import permissions, selectors, services
from ..forms import AttachmentForm, CommentForm, ReasonForm, RequestForm, RequestStartForm
from ..models import (
    OPEN_STATUSES,
    AccessRequest,
    AgreementKind,
    Attachment,
    BasketItem,
    Decision,
    DecisionStatus,
    RequestStatus,
)
from .common import add_errors, posted


def _get(request, pk: int, action: str = "view") -> AccessRequest:
    return get_for_user_or_404(
        permissions.restrict(
            AccessRequest.objects.select_related("applicant", "organisation"),
            request.user,
            action,
        ),
        pk=pk,
    )


def _detail(pk: int) -> str:
    return reverse("governance:request_detail", args=[pk])


# --- Basket -----------------------------------------------------------------------------------
@login_required
def basket(request):
    items = (
        permissions.restrict(BasketItem.objects.all(), request.user)
        .select_related("dataset__current_version", "dataset__publisher")
        .order_by("added_at")
    )
    return render(
        request,
        "governance/basket.html",
        {"rows": [(item, ds.title(item.dataset)) for item in items], "form": RequestStartForm()},
    )


@login_required
@require_http_methods(["GET", "POST"])
def basket_add(request):
    """POST adds a published dataset (field ``dataset``); GET ``?dataset=<id>`` (the catalogue's
    "Request access" link) asks for confirmation first, so no state changes on a GET."""
    if request.method == "GET":
        dataset_id = request.GET.get("dataset", "")
        dataset = get_object_or_404(
            ds.published().select_related("current_version", "publisher"),
            pk=int(dataset_id) if dataset_id.isdigit() else 0,
        )
        return render(
            request,
            "governance/basket_add.html",
            {
                "dataset": dataset,
                "title": ds.title(dataset),
                "modes": [ds.ACCESS_MODE_LABELS.get(m, m) for m in ds.offered_modes(dataset)],
                "in_basket": BasketItem.objects.filter(user=request.user, dataset=dataset).exists(),
            },
        )
    dataset_id = request.POST.get("dataset", "")
    dataset = get_object_or_404(ds.published(), pk=int(dataset_id) if dataset_id.isdigit() else 0)
    next_url = request.POST.get("next") or ""
    response = perform(
        request,
        lambda: services.basket_add(user=request.user, dataset=dataset),
        success_url=next_url
        if next_url.startswith("/") and not next_url.startswith("//")
        else reverse("governance:basket"),
        success_message=f"“{ds.title(dataset)}” is in your basket.",
    )
    if getattr(request, "htmx", False) and response.status_code == 302:
        count = BasketItem.objects.filter(user=request.user).count()
        return render(
            request, "governance/partials/basket_added.html", {"dataset": dataset, "count": count}
        )
    return response


@login_required
@require_POST
def basket_remove(request):
    dataset_id = request.POST.get("dataset", "")
    # Only the user's own basket is looked at: 404 for anything not in it, whether it exists or not.
    item = object_for_user_or_404(
        permissions.restrict,
        BasketItem.objects.select_related("dataset"),
        request.user,
        dataset_id=int(dataset_id) if dataset_id.isdigit() and len(dataset_id) < 19 else 0,
    )
    services.basket_remove(user=request.user, dataset=item.dataset)
    return redirect("governance:basket")


# --- Requests ---------------------------------------------------------------------------------
@login_required
def request_list(request):
    qs = selectors.access_request_list(user=request.user, filters=request.GET).prefetch_related(
        "decisions__custodian"
    )
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "governance/request_list.html",
        {"page": page, "statuses": RequestStatus.choices, "current": request.GET.get("status", "")},
    )


@login_required
@require_POST
def request_create(request):
    form = RequestStartForm(request.POST)
    if not form.is_valid():
        return refused(
            request,
            status=400,
            messages=["Give the project a title."],
            back=reverse("governance:basket"),
        )
    return perform(
        request,
        lambda: services.access_request_create(
            actor=request.user, project_title=form.cleaned_data["project_title"], from_basket=True
        ),
        success_url=lambda created: reverse("governance:request_edit", args=[created.pk]),
        success_message=lambda created: (
            f"Draft {created.reference} created. Complete it and submit it."
        ),
        back=reverse("governance:basket"),
    )


@login_required
@require_http_methods(["GET", "POST"])
def request_edit(request, pk: int):
    access_request = _get(request, pk, "edit")
    if not access_request.is_editable:
        return refused(
            request,
            status=400,
            messages=[f"A {access_request.get_status_display().lower()} request cannot be edited."],
            back=_detail(pk),
        )
    form = RequestForm(
        request.POST or None, initial=_initial(access_request), access_request=access_request
    )
    if request.method == "GET" and request.GET.get("check"):
        # The saved values, checked as a submission would be: each problem next to its field.
        form = RequestForm(
            {n: v for n in form.fields if (v := form[n].value()) not in (None, "")},
            access_request=access_request,
        )
        if form.is_valid():
            add_errors(form, ValidationError(services.submission_errors(access_request)))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.access_request_update(
                actor=request.user,
                access_request=access_request,
                items=form.item_changes(),
                team_members=list(data["team_members"]),
                **{k: data[k] for k in services.requests.REQUEST_FIELDS},
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            if "submit" not in request.POST:
                messages.success(request, "Saved.")
                return redirect("governance:request_edit", pk=pk)
            try:
                _submit_or_resubmit(request.user, access_request)
            except ValidationError as exc:
                # Saved, not submitted: what is missing is shown next to its field, input kept.
                messages.success(request, "Saved, but not submitted yet.")
                add_errors(form, exc)
            else:
                messages.success(
                    request, "Submitted. Each custodian's data access committee is told."
                )
                return redirect(_detail(pk))
    return _edit_page(request, access_request, form)


def _edit_page(request, access_request, form):
    access_request.refresh_from_db()
    return render(
        request,
        "governance/request_edit.html",
        {
            "access_request": access_request,
            "form": form,
            "attachment_form": AttachmentForm(),
            "attachments": access_request.attachments.all(),
            "missing": services.submission_errors(access_request),
        },
        status=400 if request.method == "POST" and form.errors else 200,
    )


def _initial(access_request) -> dict:
    return {
        "project_title": access_request.project_title,
        "research_question": access_request.research_question,
        "lay_summary": access_request.lay_summary,
        "purpose": access_request.purpose,
        "requested_end_date": access_request.requested_end_date,
        "ethics_reference": access_request.ethics_reference,
        "team_members": list(access_request.team_members.values_list("pk", flat=True)),
    }


def _submit_or_resubmit(user, access_request):
    access_request.refresh_from_db()
    if access_request.status == RequestStatus.CHANGES_REQUESTED:
        return services.access_request_resubmit(actor=user, access_request=access_request)
    return services.access_request_submit(actor=user, access_request=access_request)


@login_required
def request_detail(request, pk: int):
    return _detail_page(request, _get(request, pk))


def _detail_page(
    request, access_request, *, status: int = 200, errors: list[str] = (), typed: dict | None = None
):
    """The request page; a refused decision is shown on it (with ``status``) next to its panel,
    ``typed`` ({custodian id: {"reason", "errors"}}) keeping what the deciding member wrote."""
    typed = typed or {}
    user = request.user
    decisions = list(access_request.decisions.select_related("custodian", "decided_by"))
    custodian_ids = [d.custodian_id for d in decisions]
    visible = permissions.visible_thread_custodian_ids(user, access_request, custodian_ids)
    comments = {}
    for c in access_request.comments.filter(custodian_id__in=visible).select_related("author"):
        comments.setdefault(c.custodian_id, []).append(c)
    deciding_ids = permissions.restrict.allowed_pks(access_request.decisions.all(), user, "decide")
    panels = []
    for d in decisions:
        deciding = d.pk in deciding_ids
        waiting = d.status in (
            DecisionStatus.PENDING,
            DecisionStatus.UNDER_REVIEW,
        ) and access_request.status not in (
            RequestStatus.WITHDRAWN,
            RequestStatus.APPROVED,
            RequestStatus.REJECTED,
        )
        conflict = (
            permissions.decision_conflict(access_request, user, d.custodian_id)
            if deciding and waiting
            else None
        )
        panels.append(
            {
                "decision": d,
                "conflict": conflict,
                "can_decide": deciding and waiting and not conflict,
                "gaps": services.agreement_gaps(d) if deciding else [],
                "thread_visible": d.custodian_id in visible,
                "comments": comments.get(d.custodian_id, []),
                "reason": typed.get(d.custodian_id, {}).get("reason", ""),
                "reason_errors": typed.get(d.custodian_id, {}).get("errors", []),
                "agreement_url": reverse("governance:agreement_create")
                + f"?kind={AgreementKind.DATA_ACCESS_USE}&organisation={d.custodian_id}"
                f"&partner={access_request.organisation_id}",
            }
        )
    items = list(
        access_request.items.select_related(
            "dataset__current_version", "dataset__publisher", "custodian", "terms"
        )
    )
    is_team = permissions.is_team(user, access_request)
    return render(
        request,
        "governance/request_detail.html",
        {
            "access_request": access_request,
            "items": [
                (i, ds.title(i.dataset), ds.ACCESS_MODE_LABELS.get(i.access_mode)) for i in items
            ],
            "panels": panels,
            "is_applicant": access_request.applicant_id == user.pk,
            "can_withdraw": access_request.status in (RequestStatus.DRAFT, *OPEN_STATUSES),
            "is_team": is_team,
            "team": list(access_request.team_members.all()),
            "attachments": access_request.attachments.all(),
            "events": audit_events_for_object(user=user, obj=access_request),
            "comment_form": CommentForm(),
            "reason_form": ReasonForm(),
            "entitlements": access_request.entitlements.select_related(
                "holder", "dataset__current_version"
            ),
            "errors": list(errors),
        },
        status=status,
    )


@login_required
@require_POST
def request_submit(request, pk: int):
    access_request = _get(request, pk)
    try:
        return perform(
            request,
            lambda: _submit_or_resubmit(request.user, access_request),
            success_url=_detail(pk),
            success_message="Submitted. Each custodian's data access committee is told.",
            back=_detail(pk),
            reraise=(ValidationError,),
        )
    except ValidationError as exc:
        if not access_request.is_editable:
            return refused(request, status=400, messages=error_messages(exc), back=_detail(pk))
        # An incomplete request: its form, with each missing piece next to its field.
        messages.error(request, "Not submitted yet: complete what is marked below.")
        return redirect(reverse("governance:request_edit", args=[pk]) + "?check=1")


@login_required
@require_POST
def request_withdraw(request, pk: int):
    access_request = _get(request, pk)
    data, invalid = posted(request, ReasonForm, back=_detail(pk))
    if invalid:
        return invalid
    return perform(
        request,
        lambda: services.access_request_withdraw(
            actor=request.user, access_request=access_request, reason=data["reason"]
        ),
        success_url=_detail(pk),
        success_message="The request is withdrawn.",
        back=_detail(pk),
    )


DECISION_ACTIONS = {
    "start-review": (services.decision_start_review, False, "Review started."),
    "approve": (services.decision_approve, True, "Approved; the entitlements are granted."),
    "reject": (services.decision_reject, True, "Rejected; the researcher sees your reason."),
    "request-changes": (
        services.decision_request_changes,
        True,
        "Changes requested; the researcher sees your reason.",
    ),
}


@login_required
@require_POST
def decision_action(request, pk: int, custodian_id: int, action: str):
    access_request = _get(request, pk)
    decision = object_for_user_or_404(
        permissions.restrict,
        Decision,
        request.user,
        request=access_request,
        custodian_id=custodian_id,
    )
    if action not in DECISION_ACTIONS:
        return refused(request, status=400, messages=["Unknown action."], back=_detail(pk))
    fn, takes_reason, message = DECISION_ACTIONS[action]
    form = ReasonForm(request.POST)
    typed = {decision.custodian_id: {"reason": request.POST.get("reason", "")}}
    if not form.is_valid():
        typed[decision.custodian_id]["errors"] = form.errors["reason"]
        return _detail_page(request, access_request, status=400, typed=typed)
    kwargs = {"reason": form.cleaned_data["reason"]} if takes_reason else {}

    def act():
        fn(actor=request.user, decision=decision, **kwargs)

    try:
        return perform(
            request,
            act,
            success_url=_detail(pk),
            success_message=message,
            back=_detail(pk),
            reraise=(permissions.ConflictOfInterest, ValidationError),
        )
    except permissions.ConflictOfInterest as exc:
        # Refused on the decision page itself, where the conflict is shown and the form disabled.
        return _detail_page(request, access_request, status=403, errors=[str(exc)])
    except ValidationError as exc:
        # e.g. changes requested without a reason: the message under the reason, text kept.
        typed[decision.custodian_id]["errors"] = error_messages(exc)
        return _detail_page(request, access_request, status=400, typed=typed)


@login_required
@require_POST
def comment_create(request, pk: int, custodian_id: int):
    access_request = _get(request, pk)
    custodian = get_object_or_404(Organisation, pk=custodian_id)
    data, invalid = posted(request, CommentForm, back=_detail(pk))
    if invalid:
        return invalid
    return perform(
        request,
        lambda: services.comment_post(
            actor=request.user,
            access_request=access_request,
            custodian=custodian,
            body=data["body"],
        ),
        success_url=_detail(pk) + f"#thread-{custodian_id}",
        success_message="Comment posted.",
        back=_detail(pk),
    )


@login_required
@require_POST
def attachment_upload(request, pk: int):
    access_request = _get(request, pk)
    form = AttachmentForm(request.POST, request.FILES)
    back = reverse("governance:request_edit", args=[pk])
    if not form.is_valid():
        return refused(
            request,
            status=400,
            messages=[f"{k}: {' '.join(v)}" for k, v in form.errors.items()],
            back=back,
        )
    return perform(
        request,
        lambda: services.attachment_add(
            actor=request.user,
            access_request=access_request,
            kind=form.cleaned_data["kind"],
            upload=form.cleaned_data["file"],
        ),
        success_url=back,
        success_message="File uploaded.",
        back=back,
    )


@login_required
def attachment_download(request, pk: int):
    attachment = object_for_user_or_404(permissions.restrict, Attachment, request.user, pk=pk)
    response = FileResponse(
        attachment.file.open("rb"),
        content_type=attachment.content_type,
        as_attachment=True,
        filename=attachment.original_name,
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response
