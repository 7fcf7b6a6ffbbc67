"""Pages for people: choose a pathway, evaluate with a live form, stored evaluations and PDFs,
agree/disagree, and the staff pages for pathway versions (list, diff, activate, retire)."""

from __future__ import annotations

import difflib
from typing import Any

import yaml
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts import limits
from accounts.htmx import render_page

from . import engine, pdf, selectors, services
from .models import Evaluation, EvaluationSource, Opinion, PathwayVersion
from .permissions import can_manage_pathways

# --- the clinician's form, generated from the pathway's inputs ----------------------------------


def _range_text(spec) -> str:
    if spec.minimum is None and spec.maximum is None:
        return ""
    low = "any" if spec.minimum is None else f"{spec.minimum:g}"
    high = "any" if spec.maximum is None else f"{spec.maximum:g}"
    return f"{low}–{high}{' ' + spec.unit if spec.unit else ''}"


def inputs_form_class(pathway: engine.Pathway) -> type[forms.Form]:
    """A form with one optional field per pathway input; the engine does the validation, so its
    messages (units, ranges, allowed values) are the ones people see."""
    fields: dict[str, forms.Field] = {}
    for name, spec in pathway.inputs.items():
        label = spec.label + (f" ({spec.unit})" if spec.unit else "")
        help_parts = [spec.help.strip()]
        if spec.type in ("number", "integer") and _range_text(spec):
            help_parts.append(f"Range {_range_text(spec)}.")
        if spec.required:
            help_parts.append("Needed for a result.")
        help_text = " ".join(p for p in help_parts if p)
        if spec.type == "enum":
            choices = [("", "— not given —")] + [
                (str(value), spec.value_labels.get(str(value), str(value)))
                for value in spec.values or ()
            ]
            field: forms.Field = forms.ChoiceField(choices=choices, required=False)
        elif spec.type in ("number", "integer"):
            step = "1" if spec.type == "integer" else "any"
            field = forms.CharField(
                required=False,
                max_length=limits.IDENTIFIER,  # the text of a number; the engine checks its range
                widget=forms.NumberInput(attrs={"step": step, "inputmode": "decimal"}),
            )
        else:
            field = forms.CharField(required=False, max_length=limits.IDENTIFIER)
        field.label = label
        field.help_text = help_text
        fields[name] = field
    return type("PathwayInputsForm", (forms.Form,), fields)


def _add_engine_errors(form: forms.Form, exc: ValidationError) -> None:
    for name, messages_ in exc.message_dict.items():
        target = name if name in form.fields else None
        if name != NON_FIELD_ERRORS and target is None:
            messages_ = [f"{name}: {m}" for m in messages_]
        for message in messages_:
            form.add_error(target, message)


# --- clinician pages -----------------------------------------------------------------------------


@login_required
@require_GET
def home(request):
    context = {
        "versions": selectors.pathway_version_list_active(user=request.user),
        "evaluations": selectors.evaluation_list_own(user=request.user, limit=10),
        "can_manage": can_manage_pathways(request.user),
    }
    return render(request, "cds/home.html", context)


@login_required
@require_GET
def pathway_page(request, slug: str):
    version = selectors.pathway_version_get_active(user=request.user, slug=slug)
    form = inputs_form_class(version.engine_pathway())()
    return render(request, "cds/pathway.html", {"version": version, "form": form})


def _given_inputs(form: forms.Form) -> dict[str, Any]:
    return {name: value for name, value in form.cleaned_data.items() if value not in ("", None)}


@login_required
@require_POST
def evaluate(request, slug: str):
    """The live preview (htmx on every change, or a plain POST): shows the advice, stores nothing.

    The clinician stores the case they see with "Save evaluation" (``evaluation_save``)."""
    version = selectors.pathway_version_get_active(user=request.user, slug=slug)
    form = inputs_form_class(version.engine_pathway())(request.POST)
    preview = None
    inputs: dict[str, Any] = {}
    if form.is_valid():
        inputs = _given_inputs(form)
        try:
            preview = services.evaluation_preview(pathway_version=version, inputs=inputs)
        except ValidationError as exc:
            _add_engine_errors(form, exc)
    context = {
        "version": version,
        "form": form,
        "result": preview.to_dict() if preview else None,
        "inputs": inputs,
    }
    return render_page(
        request,
        "cds/pathway.html",
        context,
        partial="cds/partials/result.html",
        status=200 if preview else 400,
    )


@login_required
@require_POST
def evaluation_save(request, slug: str):
    """Store the evaluation the clinician has in front of them, then open it."""
    version = selectors.pathway_version_get_active(user=request.user, slug=slug)
    form = inputs_form_class(version.engine_pathway())(request.POST)
    if form.is_valid():
        inputs = _given_inputs(form)
        try:
            evaluation = services.evaluation_create(
                user=request.user,
                pathway_version=version,
                inputs=inputs,
                source=EvaluationSource.UI,
            )
        except ValidationError as exc:
            _add_engine_errors(form, exc)
        else:
            messages.success(request, "Evaluation saved.")
            return redirect(evaluation)
    context = {"version": version, "form": form, "result": None, "inputs": {}}
    return render(request, "cds/pathway.html", context, status=400)


class OpinionForm(forms.Form):
    opinion = forms.ChoiceField(
        choices=Opinion.choices, widget=forms.RadioSelect, label="Do you agree with this advice?"
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label="Reason",
        help_text="Required when you disagree. Do not write patient identifiers.",
        **limits.chars(limits.TEXT_MEDIUM),
    )


def _evaluation_context(request, evaluation: Evaluation, **extra: Any) -> dict[str, Any]:
    version = evaluation.pathway_version
    current = (
        selectors.pathway_version_list_active(user=request.user)
        .filter(pathway_id=version.pathway_id)
        .first()
    )
    return {
        "evaluation": evaluation,
        "version": version,
        "result": evaluation.output,
        "current_version": current,
        "hook_feedback": evaluation.hook_feedback.all(),
        "patient_languages": pdf.PATIENT_LANGUAGES,
        "patient_language": pdf.patient_language_default(request.user),
        "opinion_form": extra.pop("opinion_form", None)
        or OpinionForm(
            initial={"opinion": evaluation.opinion, "reason": evaluation.opinion_reason}
        ),
        **extra,
    }


@login_required
@require_GET
def evaluation_page(request, pk):
    evaluation = selectors.evaluation_get_for_user(user=request.user, pk=pk)
    return render(request, "cds/evaluation.html", _evaluation_context(request, evaluation))


@login_required
@require_POST
def evaluation_opinion(request, pk):
    evaluation = selectors.evaluation_get_for_user(user=request.user, pk=pk, action="evaluate")
    form = OpinionForm(request.POST)
    if form.is_valid():
        try:
            message = services.evaluation_opinion_record(
                user=request.user,
                evaluation=evaluation,
                opinion=form.cleaned_data["opinion"],
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as exc:
            for name, messages_ in exc.message_dict.items():
                for m in messages_:
                    form.add_error(name if name in form.fields else None, m)
        else:
            messages.success(request, message)
            return redirect(evaluation)
    context = _evaluation_context(request, evaluation, opinion_form=form)
    return render(request, "cds/evaluation.html", context, status=400)


def _pdf_response(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
def evaluation_tumour_board_pdf(request, pk):
    evaluation = selectors.evaluation_get_for_user(user=request.user, pk=pk)
    content = pdf.tumour_board_pdf(evaluation, request=request)
    return _pdf_response(content, f"tumour-board-{evaluation.pathway_version.pathway.slug}.pdf")


@login_required
@require_GET
def evaluation_patient_pdf(request, pk):
    evaluation = selectors.evaluation_get_for_user(user=request.user, pk=pk)
    language = request.GET.get("lang") or pdf.patient_language_default(request.user)
    if language not in dict(pdf.PATIENT_LANGUAGES):
        context = _evaluation_context(
            request, evaluation, language_error="Choose one of the languages listed."
        )
        return render(request, "cds/evaluation.html", context, status=400)
    content = pdf.patient_pdf(evaluation, request=request, language=language)
    slug = evaluation.pathway_version.pathway.slug
    return _pdf_response(content, f"patient-information-{slug}-{language}.pdf")


# --- staff: pathway versions -----------------------------------------------------------------


def _require_manager(request) -> None:
    if not can_manage_pathways(request.user):
        raise Http404("No such page.")


@login_required
@require_GET
def manage(request):
    _require_manager(request)
    pathways = selectors.pathway_admin_list(user=request.user)
    return render(request, "cds/manage.html", {"pathways": pathways})


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths to leaves; list items with an ``id`` are keyed by it so reordering reads well."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat or {prefix: {}}
    if isinstance(value, list) and any(isinstance(item, dict | list) for item in value):
        flat = {}
        for index, item in enumerate(value):
            key = item["id"] if isinstance(item, dict) and "id" in item else index
            flat.update(_flatten(item, f"{prefix}[{key}]"))
        return flat or {prefix: []}
    return {prefix: value}


def version_diff(old: PathwayVersion, new: PathwayVersion) -> dict[str, Any]:
    """Field-level changes plus a unified diff of the canonical YAML of both documents."""
    a, b = _flatten(old.document), _flatten(new.document)
    changes = []
    for path in sorted(set(a) | set(b)):
        if path not in a:
            changes.append({"path": path, "kind": "added", "old": None, "new": b[path]})
        elif path not in b:
            changes.append({"path": path, "kind": "removed", "old": a[path], "new": None})
        elif a[path] != b[path]:
            changes.append({"path": path, "kind": "changed", "old": a[path], "new": b[path]})

    def dump(doc: dict) -> list[str]:
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
        return text.splitlines()

    lines = list(
        difflib.unified_diff(
            dump(old.document),
            dump(new.document),
            fromfile=f"{old.version} ({old.short_checksum})",
            tofile=f"{new.version} ({new.short_checksum})",
            lineterm="",
        )
    )
    unified = [
        {
            "text": line,
            "kind": "add"
            if line.startswith("+") and not line.startswith("+++")
            else "del"
            if line.startswith("-") and not line.startswith("---")
            else "hunk"
            if line.startswith("@@")
            else "",
        }
        for line in lines
    ]
    return {"changes": changes, "unified": unified}


@login_required
@require_GET
def manage_diff(request, slug: str):
    _require_manager(request)
    pathway = selectors.pathway_admin_get(user=request.user, slug=slug)
    versions = {str(v.pk): v for v in pathway.versions.all()}
    old, new = versions.get(request.GET.get("from", "")), versions.get(request.GET.get("to", ""))
    if old is None or new is None:
        messages.error(request, "Choose two versions of this pathway to compare.")
        return redirect("cds:manage")
    context = {"pathway": pathway, "old": old, "new": new, "versions": versions.values()}
    context.update(version_diff(old, new))
    return render(request, "cds/manage_diff.html", context)


def _change_status(request, pk: int, action) -> HttpResponse:
    _require_manager(request)
    version = selectors.pathway_version_admin_get(user=request.user, pk=pk)
    try:
        action(actor=request.user, version=version)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{version} is now {version.get_status_display().lower()}.")
    return redirect("cds:manage")


@login_required
@require_POST
def manage_activate(request, pk: int):
    return _change_status(request, pk, services.pathway_version_activate)


@login_required
@require_POST
def manage_retire(request, pk: int):
    return _change_status(request, pk, services.pathway_version_retire)
