from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.permissions import get_for_user_or_404
from accounts.view_actions import perform, refused

from .. import datasets as ds
from .. import permissions, services
from ..forms import PARTY_ROWS, AgreementForm, ReasonForm, SignForm, TemplateForm
from ..models import Agreement, AgreementKind, AgreementStatus, AgreementTemplate
from ..selectors import agreement_list
from .common import add_errors, client_ip, posted


def _get(request, pk: int, action: str = "view") -> Agreement:
    return get_for_user_or_404(
        permissions.restrict(Agreement.objects.all(), request.user, action), pk=pk
    )


@login_required
def agreement_list_view(request):
    agreements = agreement_list(user=request.user, filters=request.GET)
    return render(
        request,
        "governance/agreement_list.html",
        {
            "agreements": agreements[:200],
            "statuses": AgreementStatus.choices,
            "can_manage_templates": permissions.can_manage_templates(request.user),
        },
    )


def _initial_from_query(request) -> dict:
    initial = {}
    for n, key in ((1, "organisation"), (2, "partner")):
        if request.GET.get(key, "").isdigit():
            initial[f"party_{n}_organisation"] = int(request.GET[key])
    if initial:
        initial["party_1_role"] = "controller"
        initial["party_2_role"] = "data_user"
    kind = request.GET.get("kind")
    if kind:
        template = services.latest_template(kind)
        if template:
            initial["template"] = template.pk
            initial["title"] = template.title
    return initial


@login_required
@require_http_methods(["GET", "POST"])
def agreement_create(request):
    form = AgreementForm(request.POST or None, initial=_initial_from_query(request))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            agreement = services.agreement_create(
                actor=request.user,
                template=data["template"],
                title=data["title"],
                purposes=data["purposes"],
                effective_date=data["effective_date"],
                expiry_date=data["expiry_date"],
                parties=data["parties"],
            )
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(
                request,
                f"Draft {agreement.reference} created. Edit it to limit it to some datasets.",
            )
            return redirect("governance:agreement_detail", pk=agreement.pk)
    return render(
        request,
        "governance/agreement_form.html",
        {"form": form, "agreement": None, "party_rows": range(1, PARTY_ROWS + 1)},
        status=400 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def agreement_edit(request, pk: int):
    agreement = _get(request, pk, "manage")
    if not agreement.is_editable:
        return refused(
            request,
            status=400,
            messages=["This agreement was sent for signature: changes need a new version."],
            back=reverse("governance:agreement_detail", args=[pk]),
        )
    initial = {
        "template": agreement.template_id,
        "title": agreement.title,
        "purposes": agreement.purposes,
        "effective_date": agreement.effective_date,
        "expiry_date": agreement.expiry_date,
        "datasets": list(agreement.datasets.values_list("pk", flat=True)),
    }
    for n, party in enumerate(agreement.parties.all(), start=1):
        initial[f"party_{n}_organisation"] = party.organisation_id
        initial[f"party_{n}_role"] = party.role
    form = AgreementForm(
        request.POST or None,
        initial=initial,
        party_org_ids=list(agreement.parties.values_list("organisation_id", flat=True)),
        user=request.user,
    )
    form.fields["template"].queryset = AgreementTemplate.objects.filter(kind=agreement.kind)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.agreement_update(
                actor=request.user,
                agreement=agreement,
                template=data["template"],
                title=data["title"],
                purposes=data["purposes"],
                effective_date=data["effective_date"],
                expiry_date=data["expiry_date"],
                parties=data["parties"],
                datasets=list(data["datasets"]),
            )
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(request, "Draft saved.")
            return redirect("governance:agreement_detail", pk=agreement.pk)
    return render(
        request,
        "governance/agreement_form.html",
        {"form": form, "agreement": agreement, "party_rows": range(1, PARTY_ROWS + 1)},
        status=400 if form.errors else 200,
    )


@login_required
def agreement_detail(request, pk: int):
    return _detail_page(request, _get(request, pk))


def _sign_form(user, party, data=None) -> SignForm:
    # One form per party the reader may sign for: ids stay unique on the page.
    return SignForm(data, expected_name=user.get_full_name(), auto_id=f"id_p{party.pk}_%s")


def _detail_page(request, agreement, *, bound: SignForm | None = None, party=None, status=200):
    """The agreement page; a refused signature is shown on its own form, with what was typed."""
    parties = list(agreement.parties.select_related("organisation", "signature__user"))
    from accounts.selectors import audit_events_for_object

    covered = agreement.datasets.select_related("current_version")
    # Titles only of datasets the reader sees in the catalogue; the others are counted, not named.
    visible = list(ds.visible_to(request.user, ids=covered.values("pk")))
    signable = (
        permissions.signable_parties(request.user, agreement)
        if agreement.status == AgreementStatus.OUT_FOR_SIGNATURE
        else []
    )
    return render(
        request,
        "governance/agreement_detail.html",
        {
            "agreement": agreement,
            "parties": parties,
            "datasets": [ds.title(d) for d in visible],
            "hidden_datasets": covered.count() - len(visible),
            "can_manage": permissions.allows(agreement, request.user, "manage"),
            "signable": [
                (
                    p,
                    bound
                    if party is not None and p.pk == party.pk
                    else _sign_form(request.user, p),
                )
                for p in signable
            ],
            "reason_form": ReasonForm(),
            "events": audit_events_for_object(user=request.user, obj=agreement),
            "versions": Agreement.objects.filter(lineage_id=agreement.lineage_id).order_by(
                "version"
            ),
        },
        status=status,
    )


@login_required
def agreement_document(request, pk: int, which: str):
    if which not in ("document", "signed"):
        raise Http404
    agreement = _get(request, pk)
    field = agreement.signed_document if which == "signed" else agreement.document
    if not field:
        raise Http404("No document yet.")
    return FileResponse(
        field.open("rb"),
        content_type="application/pdf",
        as_attachment=False,
        filename=f"{agreement.reference.replace(' ', '-')}-{which}.pdf",
    )


def _back(pk):
    return reverse("governance:agreement_detail", args=[pk])


@login_required
@require_POST
def agreement_send(request, pk: int):
    agreement = _get(request, pk)
    return perform(
        request,
        lambda: services.agreement_send(actor=request.user, agreement=agreement),
        success_url=_back(pk),
        success_message="Sent for signature. The PDF and its SHA-256 are fixed now.",
        back=_back(pk),
    )


@login_required
@require_POST
def agreement_sign(request, pk: int):
    agreement = _get(request, pk)
    party_id = request.POST.get("party", "")
    party = agreement.parties.filter(pk=int(party_id) if party_id.isdigit() else 0).first()
    if party is None:
        return refused(
            request, status=400, messages=["Choose the party you sign for."], back=_back(pk)
        )
    form = _sign_form(request.user, party, request.POST)
    if form.is_valid():
        try:
            services.agreement_sign(
                actor=request.user,
                agreement=agreement,
                party=party,
                full_name=form.cleaned_data["full_name"],
                confirm=bool(form.cleaned_data.get("confirm")),
                ip_address=client_ip(request),
            )
        except PermissionDenied as exc:
            return refused(
                request, status=403, messages=[str(exc) or "You may not do this."], back=_back(pk)
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(request, f"You signed for {party.organisation}.")
            return redirect(_back(pk))
    # Stay on the agreement: the message next to the field, what was typed kept.
    return _detail_page(request, agreement, bound=form, party=party, status=400)


@login_required
@require_POST
def agreement_terminate(request, pk: int):
    agreement = _get(request, pk)
    data, invalid = posted(request, ReasonForm, back=_back(pk))
    if invalid:
        return invalid
    return perform(
        request,
        lambda: services.agreement_terminate(
            actor=request.user, agreement=agreement, reason=data["reason"]
        ),
        success_url=_back(pk),
        success_message="The agreement is terminated.",
        back=_back(pk),
    )


@login_required
@require_POST
def agreement_new_version(request, pk: int):
    agreement = _get(request, pk)
    return perform(
        request,
        lambda: services.agreement_new_version(actor=request.user, agreement=agreement),
        success_url=lambda new: reverse("governance:agreement_detail", args=[new.pk]),
        success_message=lambda new: (
            f"Draft {new.reference} created; edit it and send it for signature."
        ),
        back=_back(pk),
    )


@login_required
def template_list(request):
    if not permissions.can_manage_templates(request.user):
        raise Http404
    return render(
        request,
        "governance/template_list.html",
        {
            "templates": AgreementTemplate.objects.all(),
            "placeholders": selectors_placeholders(),
            "missing_kinds": sorted(
                set(AgreementKind.values)
                - set(AgreementTemplate.objects.values_list("kind", flat=True))
            ),
        },
    )


def selectors_placeholders():
    from ..models import PLACEHOLDERS

    return sorted(PLACEHOLDERS.items())


@login_required
@require_POST
def template_defaults(request):
    """Publish version 1 of every kind that has no template yet (a fresh installation)."""
    if not permissions.can_manage_templates(request.user):
        raise Http404
    from accounts import audit

    from ..default_templates import ensure_default_templates

    for template in ensure_default_templates(actor=request.user):
        audit.record(
            "agreement_template.published",
            actor=request.user,
            obj=template,
            payload={"kind": template.kind, "version": template.version},
        )
    return redirect("governance:templates")


@login_required
@require_http_methods(["GET", "POST"])
def template_create(request):
    if not permissions.can_manage_templates(request.user):
        raise Http404
    initial = {}
    base = AgreementTemplate.objects.filter(pk=request.GET.get("from") or 0).first()
    if base:
        initial = {"kind": base.kind, "title": base.title, "body": base.body}
    form = TemplateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            template = services.agreement_template_publish(actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(request, f"Published {template}.")
            return redirect("governance:templates")
    return render(
        request, "governance/template_form.html", {"form": form}, status=400 if form.errors else 200
    )
