"""Thin HTML views of the catalogue. Every read goes through ``catalogue.permissions``."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from accounts import extensions
from accounts.htmx import render_page

from . import (
    export,
    export_views,
    forms,
    metadata,
    permissions,
    profile_charts,
    profiles,
    selectors,
    services,
)
from .models import DatasetVersion, Status
from .validation import ViolationsFound


def _errors(exc: ValidationError) -> list[str]:
    return exc.messages


# --- search ---------------------------------------------------------------------------------------


def search(request):
    params = selectors.SearchParams.from_querydict(request.GET)
    result = selectors.dataset_search(user=request.user, params=params)
    context = {
        "result": result,
        "params": params,
        "facet_labels": selectors.facet_labels(),
        "sorts": selectors.SORTS,
        "page_sizes": selectors.PAGE_SIZES,
        "freshness_choices": profiles.FRESHNESS_CHOICES,
    }
    return render_page(
        request, "catalogue/search.html", context, partial="catalogue/partials/results.html"
    )


# --- dataset page ---------------------------------------------------------------------------------


def _version_numbers(dataset) -> list[DatasetVersion]:
    return list(
        dataset.versions.select_related("published_by")
        .order_by("-number")
        .only(
            "number", "published_at", "notes", "published_by__username", "dataset_id", "is_listed"
        )
    )


@vary_on_headers("Accept")
def detail(request, identifier: str):
    # Content negotiation: an RDF client asking for the dataset's IRI gets its HealthDCAT-AP.
    fmt = export.negotiate_rdf(request.headers.get("Accept", ""), html=True)
    if fmt is not None:
        return export_views.dataset_response(request, identifier, fmt)
    dataset = selectors.dataset_get_for_user(user=request.user, identifier=identifier)
    may_see_working_copy = permissions.allows(dataset, request.user, "working_copy")
    show_working = request.GET.get("view") == "draft" and may_see_working_copy
    if dataset.current_version_id and not show_working:
        data = dataset.current_version.metadata
        shown = f"Published version {dataset.current_version.number}"
    else:
        if not may_see_working_copy:
            raise Http404
        data = metadata.snapshot(selectors.dataset_with_relations(dataset))
        show_working = True
        shown = "Working copy"
    context = {
        "dataset": dataset,
        "data": data,
        "rows": metadata.rows(data),
        "shown": shown,
        "show_working": show_working,
        "may_see_working_copy": may_see_working_copy,
        "has_working_changes": dataset.status
        in (Status.DRAFT, Status.SUBMITTED, Status.CHANGES_REQUESTED),
        "completeness": metadata.completeness(data),
        "versions": _version_numbers(dataset),
        "can_edit": permissions.allows(dataset, request.user, "edit"),
        "can_review": permissions.can_review(request.user),
        "report": dataset.validation_report if may_see_working_copy else {},
        "changes_form": forms.RequestChangesForm(),
        "publish_form": forms.PublishForm(initial={"notes": dataset.version_notes}),
        "retire_form": forms.RetireForm(),
        # The node serving the dataset and whether the viewer can analyse it (federation's).
        "federation_section": section(request=request, dataset=dataset)
        if (section := extensions.provided(extensions.DATASET_PAGE_SECTION))
        else "",
        "back_url": _search_url_from(request),
        **_profile_context(dataset),
    }
    return render(request, "catalogue/detail.html", context)


def _search_url_from(request) -> str:
    """The catalogue search the reader came from, filters included (else the plain catalogue)."""
    search = reverse("catalogue:search")
    referer = urlsplit(request.headers.get("Referer", ""))
    if referer.netloc == request.get_host() and referer.path == search and referer.query:
        return f"{search}?{referer.query}"
    return search


def _profile_context(dataset) -> dict:
    """The attached database profile with its charts, and how fresh the data is."""
    today = timezone.localdate()
    attached = selectors.dataset_profile(dataset=dataset)
    context = {
        "profile": attached,
        "freshness": profiles.freshness(dataset, today),
        "interval_form": forms.UpdateIntervalForm(
            initial={"update_interval_days": dataset.update_interval_days}
        ),
    }
    if attached is not None:
        context.update(profile_charts.chart_context(attached.data, today))
    return context


@login_required
@require_POST
def update_interval(request, identifier: str):
    form = forms.UpdateIntervalForm(request.POST)
    if not form.is_valid():
        selectors.dataset_get_for_user(user=request.user, identifier=identifier, action="edit")
        for errors in form.errors.values():
            for msg in errors:
                messages.error(request, msg)
        return redirect("catalogue:detail", identifier=identifier)
    days = form.cleaned_data["update_interval_days"]
    response = _transition(
        request,
        identifier,
        "edit",
        lambda d: services.dataset_update_interval_set(user=request.user, dataset=d, days=days),
    )
    if response:
        return response
    messages.success(request, "The agreed update interval was saved.")
    return redirect("catalogue:detail", identifier=identifier)


# --- steward forms ----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def create(request):
    steward_orgs = permissions.steward_org_ids(request.user)
    if not steward_orgs:
        raise Http404
    form = forms.DatasetForm(request.POST or None, steward_orgs=steward_orgs)
    if request.method == "POST" and form.is_valid():
        try:
            dataset = services.dataset_create(
                user=request.user,
                publisher=form.cleaned_data["publisher"],
                **form.service_arguments(),
            )
        except PermissionDenied as exc:
            raise Http404 from exc
        except ValidationError as exc:
            _attach(form, exc)
        else:
            return _after_save(request, dataset)
    return render(
        request,
        "catalogue/form.html",
        {"form": form, "dataset": None, "summary": []},
        status=400 if form.errors else 200,
    )


def _attach(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _after_save(request, dataset):
    if request.POST.get("action") == "submit":
        try:
            services.dataset_submit(user=request.user, dataset=dataset)
        except ViolationsFound:
            messages.error(
                request, "The draft was saved but has problems to fix before it can be submitted."
            )
            return redirect(reverse("catalogue:edit", args=[dataset.identifier]) + "?checked=1")
        except ValidationError as exc:
            # e.g. nothing changed on a published dataset: there is no draft to submit.
            for msg in _errors(exc):
                messages.error(request, msg)
            return redirect("catalogue:detail", identifier=dataset.identifier)
        messages.success(request, "Submitted for review. A curator will look at it.")
        return redirect("catalogue:detail", identifier=dataset.identifier)
    messages.success(request, "Draft saved.")
    return redirect(reverse("catalogue:detail", args=[dataset.identifier]) + "?view=draft")


def _problems(report: dict) -> dict[str, list[dict]]:
    """Validation results by form field ("" for those about the whole dataset)."""
    by_field: dict[str, list[dict]] = {}
    for item in [*report.get("violations", []), *report.get("warnings", [])]:
        name = "node_ref" if item["field"] == "distributions" else item["field"]
        by_field.setdefault(name, []).append(item)
    return by_field


@login_required
@require_http_methods(["GET", "POST"])
def edit(request, identifier: str):
    dataset = selectors.dataset_get_for_user(
        user=request.user, identifier=identifier, action="edit"
    )
    dataset = selectors.dataset_with_relations(dataset)
    if not dataset.is_editable:
        messages.error(request, "A submitted dataset cannot be edited until the curator answers.")
        return redirect("catalogue:detail", identifier=identifier)
    if request.method == "POST":
        form = forms.DatasetForm(request.POST, instance=dataset)
        if form.is_valid():
            try:
                services.dataset_update(
                    user=request.user,
                    dataset=selectors.dataset_with_relations(dataset),
                    **form.service_arguments(),
                )
            except PermissionDenied as exc:
                raise Http404 from exc
            except ValidationError as exc:
                _attach(form, exc)
            else:
                return _after_save(request, dataset)
    else:
        form = forms.DatasetForm(instance=dataset)
    problems = _problems(dataset.validation_report or {})
    if request.method == "POST":
        # The stored report is about the saved values: a field changed since says nothing now.
        changed = set(form.changed_data)
        if changed & {"node_ref", "documentation_url"}:
            changed.add("node_ref")
        problems = {k: v for k, v in problems.items() if k not in changed}
    return render(
        request,
        "catalogue/form.html",
        {
            "form": form,
            "dataset": dataset,
            "report": dataset.validation_report,
            "problems": problems,
            "summary": _summary(form, problems),
        },
        status=400 if request.method == "POST" and form.errors else 200,
    )


def _summary(form, problems: dict[str, list[dict]]) -> list[tuple[str, str]]:
    """What stops submission, for the list at the top of the form: (field anchor, message)."""
    lines = []
    for name, items in problems.items():
        for item in (i for i in items if i["severity"] == "Violation"):
            if name not in form.fields:
                lines.append(("", item["message"]))
                continue
            field = form[name]
            anchor = field.auto_id + ("_0" if field.widget_type in forms.CHOICE_GROUPS else "")
            label = str(field.label)
            text = item["message"]
            lines.append((anchor, text if text.startswith(label) else f"{label}: {text}"))
    return lines


# --- lifecycle actions -------------------------------------------------------------------------------


def _transition(request, identifier: str, action: str, run):
    dataset = selectors.dataset_get_for_user(
        user=request.user, identifier=identifier, action=action
    )
    try:
        run(dataset)
    except ViolationsFound:
        messages.error(request, "The dataset has problems to fix before it can be submitted.")
        if permissions.allows(dataset, request.user, "edit"):
            return redirect(reverse("catalogue:edit", args=[identifier]) + "?checked=1")
        return redirect("catalogue:detail", identifier=identifier)
    except PermissionDenied as exc:
        raise Http404 from exc
    except ValidationError as exc:
        for msg in _errors(exc):
            messages.error(request, msg)
        return redirect("catalogue:detail", identifier=identifier)
    return None


@login_required
@require_POST
def submit(request, identifier: str):
    response = _transition(
        request,
        identifier,
        "edit",
        lambda d: services.dataset_submit(user=request.user, dataset=d),
    )
    if response:
        return response
    messages.success(request, "Submitted for review. A curator will look at it.")
    return redirect("catalogue:detail", identifier=identifier)


@login_required
@require_POST
def request_changes(request, identifier: str):
    # Access first: only reviewers learn anything about the form, everyone else gets a 404.
    selectors.dataset_get_for_user(user=request.user, identifier=identifier, action="review")
    form = forms.RequestChangesForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Tell the steward what to change.")
        return redirect("catalogue:detail", identifier=identifier)
    response = _transition(
        request,
        identifier,
        "review",
        lambda d: services.dataset_request_changes(
            user=request.user, dataset=d, comment=form.cleaned_data["comment"]
        ),
    )
    if response:
        return response
    messages.success(request, "Changes requested; the data stewards were notified.")
    return redirect("catalogue:review")


@login_required
@require_POST
def publish(request, identifier: str):
    form = forms.PublishForm(request.POST)
    form.is_valid()
    response = _transition(
        request,
        identifier,
        "review",
        lambda d: services.dataset_publish(
            user=request.user, dataset=d, notes=form.cleaned_data.get("notes", "")
        ),
    )
    if response:
        return response
    messages.success(request, "Published.")
    return redirect("catalogue:detail", identifier=identifier)


@login_required
@require_POST
def retire(request, identifier: str):
    form = forms.RetireForm(request.POST)
    form.is_valid()
    response = _transition(
        request,
        identifier,
        "review",
        lambda d: services.dataset_retire(
            user=request.user, dataset=d, reason=form.cleaned_data.get("reason", "")
        ),
    )
    if response:
        return response
    messages.success(request, "Retired: the dataset is no longer listed.")
    return redirect("catalogue:detail", identifier=identifier)


# --- versions ------------------------------------------------------------------------------------------


def _snapshot_for(dataset, key: str, user) -> tuple[str, dict]:
    if key == "draft":
        if not permissions.allows(dataset, user, "working_copy"):
            raise Http404
        return "Working copy", metadata.snapshot(selectors.dataset_with_relations(dataset))
    try:
        number = int(key)
    except (TypeError, ValueError) as exc:
        raise Http404 from exc
    version = dataset.versions.filter(number=number).only("metadata", "number").first()
    if version is None:
        raise Http404
    return f"Version {number}", version.metadata


def versions(request, identifier: str):
    dataset = selectors.dataset_get_for_user(user=request.user, identifier=identifier)
    history = _version_numbers(dataset)
    choices = [str(v.number) for v in history]
    if permissions.allows(dataset, request.user, "working_copy"):
        choices.insert(0, "draft")
    old_key = request.GET.get("from") or (choices[1] if len(choices) > 1 else "")
    new_key = request.GET.get("to") or (choices[0] if choices else "")
    changes, old_label, new_label = [], "", ""
    if old_key and new_key:
        old_label, old = _snapshot_for(dataset, old_key, request.user)
        new_label, new = _snapshot_for(dataset, new_key, request.user)
        changes = metadata.diff(old, new)
    return render(
        request,
        "catalogue/versions.html",
        {
            "dataset": dataset,
            "versions": history,
            "choices": choices,
            "old_key": old_key,
            "new_key": new_key,
            "old_label": old_label,
            "new_label": new_label,
            "changes": changes,
            "can_edit": permissions.allows(dataset, request.user, "edit"),
        },
    )


@login_required
@require_POST
def restore(request, identifier: str, number: int):
    dataset = selectors.dataset_get_for_user(
        user=request.user, identifier=identifier, action="edit"
    )
    version = dataset.versions.filter(number=number).first()
    if version is None:
        raise Http404
    try:
        services.dataset_restore_version(user=request.user, dataset=dataset, version=version)
    except ValidationError as exc:
        for msg in _errors(exc):
            messages.error(request, msg)
        return redirect("catalogue:versions", identifier=identifier)
    messages.success(request, f"Version {number} restored as a new draft.")
    return redirect(reverse("catalogue:detail", args=[identifier]) + "?view=draft")


# --- lists ---------------------------------------------------------------------------------------------


@login_required
def mine(request):
    if not permissions.steward_org_ids(request.user):
        raise Http404
    datasets = list(selectors.steward_datasets(user=request.user))
    rows = [(d, metadata.completeness(metadata.snapshot(d))) for d in datasets]
    return render(request, "catalogue/mine.html", {"rows": rows})


@login_required
def review(request):
    if not permissions.can_review(request.user):
        raise Http404
    return render(
        request, "catalogue/review.html", {"datasets": selectors.review_queue(user=request.user)}
    )
