"""Writes about agreement templates and agreements. Every transition is audited and notified."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone

from accounts import audit
from accounts.models import Organisation, Role
from catalogue.models import Dataset

from .. import datasets as ds
from .. import documents, permissions
from ..models import (
    Agreement,
    AgreementKind,
    AgreementParty,
    AgreementStatus,
    AgreementTemplate,
    PartyRole,
    Signature,
)
from ..notifications import notify

if TYPE_CHECKING:
    from collections.abc import Iterable

    from django.contrib.auth.models import User


def _url(agreement: Agreement) -> str:
    return reverse("governance:agreement_detail", args=[agreement.pk])


def _audit(action: str, *, actor, agreement: Agreement, **payload) -> None:
    first_party = agreement.parties.select_related("organisation").first()
    audit.record(
        action,
        actor=actor,
        obj=agreement,
        organisation=first_party.organisation if first_party else None,
        payload={"reference": agreement.reference, "status": agreement.status, **payload},
    )


# --- Templates --------------------------------------------------------------------------------
@transaction.atomic
def agreement_template_publish(
    *, actor: User, kind: str, title: str, body: str, notes: str = ""
) -> AgreementTemplate:
    """Publish the next version of a template kind; earlier versions and what was sent stay as they are."""
    if not permissions.can_manage_templates(actor):
        raise PermissionDenied("Only platform administrators manage agreement templates.")
    if kind not in AgreementKind.values:
        raise ValidationError({"kind": [f"Unknown agreement kind {kind!r}."]})
    # Two admins publishing at once collide on the (kind, version) constraint; nothing is lost.
    latest = AgreementTemplate.objects.filter(kind=kind).aggregate(v=Max("version"))["v"] or 0
    template = AgreementTemplate(
        kind=kind, version=latest + 1, title=title, body=body, notes=notes, created_by=actor
    )
    template.full_clean()
    template.save()
    audit.record(
        "agreement_template.published",
        actor=actor,
        obj=template,
        payload={"kind": kind, "version": template.version},
    )
    return template


def latest_template(kind: str) -> AgreementTemplate | None:
    return AgreementTemplate.objects.filter(kind=kind).order_by("-version").first()


# --- Drafting ---------------------------------------------------------------------------------
def _clean_parties(parties) -> list[tuple[Organisation, str]]:
    cleaned, seen = [], set()
    for organisation, role in parties:
        if role not in PartyRole.values:
            raise ValidationError({"parties": [f"Unknown party role {role!r}."]})
        if organisation.pk in seen:
            raise ValidationError({"parties": [f"{organisation} is named twice."]})
        seen.add(organisation.pk)
        cleaned.append((organisation, role))
    if len(cleaned) < 2:
        raise ValidationError({"parties": ["An agreement needs at least two parties."]})
    return cleaned


def _check_dates(effective_date: date, expiry_date: date) -> None:
    if expiry_date <= effective_date:
        raise ValidationError({"expiry_date": ["The expiry date must follow the effective date."]})


def _check_parties(actor, parties) -> list[tuple[Organisation, str]]:
    """What creation checks and every change of parties checks again: well-formed parties, and the
    actor manages agreements for one of them (a creator cannot hand a draft to other organisations)."""
    parties = _clean_parties(parties)
    if not permissions.can_create_agreement(actor, [o.pk for o, _ in parties]):
        raise PermissionDenied(
            "You can draft an agreement only for an organisation where you are an organisation "
            "admin, signatory or DAC member."
        )
    return parties


def _covered_datasets(
    *, actor, agreement: Agreement | None, chosen, party_org_ids: set[int]
) -> list | None:
    """The datasets the agreement will cover, checked; None when coverage does not change.

    ``chosen`` is what the actor asks for (None: keep the current datasets). A dataset the actor
    cannot see in the catalogue cannot be added ("no such dataset", as if it did not exist) and is
    not removed by them either: it stays covered, untitled for them. Newly covered datasets must be
    published in the catalogue, and every covered dataset must be published by a party."""
    current = list(agreement.datasets.select_related("current_version")) if agreement else []
    visible_ids = set(
        ds.visible_to(actor, ids=[d.pk for d in current]).values_list("pk", flat=True)
    )
    if chosen is None:
        final, added = current, []
    else:
        chosen = list(chosen)
        seeable = set(ds.visible_to(actor, ids=[d.pk for d in chosen]).values_list("pk", flat=True))
        unseen = sorted(d.pk for d in chosen if d.pk not in seeable)
        if unseen:
            raise ValidationError(
                {"datasets": [f"No such dataset: {', '.join(map(str, unseen))}."]}
            )
        current_ids = {d.pk for d in current}
        added = [d for d in chosen if d.pk not in current_ids]
        hidden = [d for d in current if d.pk not in visible_ids]
        final = list({d.pk: d for d in [*chosen, *hidden]}.values())
        visible_ids |= seeable
    listed = set(ds.published().filter(pk__in=[d.pk for d in added]).values_list("pk", flat=True))
    errors = [
        f"{ds.title(d)} is not published in the catalogue; only published datasets can be covered."
        for d in added
        if d.pk not in listed
    ]
    for d in final:
        if d.publisher_id not in party_org_ids:
            name = ds.title(d) if d.pk in visible_ids else "A covered dataset you cannot see"
            errors.append(f"{name} is not published by a party of this agreement.")
    if errors:
        raise ValidationError({"datasets": errors})
    return None if chosen is None and agreement is not None else final


@transaction.atomic
def agreement_create(
    *,
    actor: User,
    template: AgreementTemplate,
    title: str,
    parties: Iterable[tuple[Organisation, str]],
    effective_date: date,
    expiry_date: date,
    purposes: str = "",
    datasets: Iterable[Dataset] = (),
) -> Agreement:
    parties = _check_parties(actor, parties)
    _check_dates(effective_date, expiry_date)
    covered = _covered_datasets(
        actor=actor, agreement=None, chosen=datasets or [], party_org_ids={o.pk for o, _ in parties}
    )
    agreement = Agreement.objects.create(
        template=template,
        kind=template.kind,
        title=title,
        purposes=purposes,
        effective_date=effective_date,
        expiry_date=expiry_date,
        created_by=actor,
    )
    agreement.lineage = agreement
    agreement.save(update_fields=["lineage"])
    AgreementParty.objects.bulk_create(
        [AgreementParty(agreement=agreement, organisation=o, role=r) for o, r in parties]
    )
    agreement.datasets.set(covered)
    _audit(
        "agreement.created",
        actor=actor,
        agreement=agreement,
        parties=[[o.slug, r] for o, r in parties],
        template=[template.kind, template.version],
    )
    return agreement


def _require_manager(actor, agreement: Agreement) -> None:
    if not permissions.allows(agreement, actor, "manage"):
        raise PermissionDenied("Only the parties' administrators, signatories or DAC may do that.")


def _require_status(agreement: Agreement, *allowed: str, message: str) -> None:
    if agreement.status not in allowed:
        raise ValidationError({"status": [message]})


@transaction.atomic
def agreement_update(
    *,
    actor: User,
    agreement: Agreement,
    title: str | None = None,
    purposes: str | None = None,
    effective_date: date | None = None,
    expiry_date: date | None = None,
    parties: Iterable[tuple[Organisation, str]] | None = None,
    datasets: Iterable[Dataset] | None = None,
    template: AgreementTemplate | None = None,
) -> Agreement:
    """Edit a draft. After sending, every change needs a new version (and new signatures).

    Every edit checks again what creation checks, on the agreement as it will be: its parties (and
    that the actor manages agreements for one of them), its dates and its covered datasets."""
    agreement = Agreement.objects.select_for_update().get(pk=agreement.pk)
    _require_manager(actor, agreement)
    _require_status(
        agreement,
        AgreementStatus.DRAFT,
        message="This agreement was sent for signature: changes need a new version.",
    )
    if parties is None:
        current = agreement.parties.select_related("organisation")
        new_parties = _check_parties(actor, [(p.organisation, p.role) for p in current])
    else:
        new_parties = _check_parties(actor, parties)
    covered = _covered_datasets(
        actor=actor,
        agreement=agreement,
        chosen=datasets,
        party_org_ids={o.pk for o, _ in new_parties},
    )
    changed = {}
    for field, value in (
        ("title", title),
        ("purposes", purposes),
        ("effective_date", effective_date),
        ("expiry_date", expiry_date),
    ):
        if value is not None and getattr(agreement, field) != value:
            setattr(agreement, field, value)
            changed[field] = str(value)
    if template is not None and template.pk != agreement.template_id:
        if template.kind != agreement.kind:
            raise ValidationError({"template": ["The template must be of the same kind."]})
        agreement.template = template
        changed["template"] = template.version
    _check_dates(agreement.effective_date, agreement.expiry_date)
    agreement.save()
    if parties is not None:
        agreement.parties.all().delete()
        AgreementParty.objects.bulk_create(
            [AgreementParty(agreement=agreement, organisation=o, role=r) for o, r in new_parties]
        )
        changed["parties"] = [[o.slug, r] for o, r in new_parties]
    if covered is not None:
        agreement.datasets.set(covered)
        changed["datasets"] = sorted(d.pk for d in covered)
    _audit("agreement.updated", actor=actor, agreement=agreement, changed=changed)
    return agreement


@transaction.atomic
def agreement_send(*, actor: User, agreement: Agreement) -> Agreement:
    """Freeze the text, render the PDF once and store its SHA-256; the signatories are told."""
    agreement = Agreement.objects.select_for_update().get(pk=agreement.pk)
    _require_manager(actor, agreement)
    _require_status(
        agreement, AgreementStatus.DRAFT, message="Only a draft can be sent for signature."
    )
    parties = list(agreement.parties.select_related("organisation"))
    if len(parties) < 2:
        raise ValidationError({"parties": ["An agreement needs at least two parties."]})
    without = [
        p.organisation.name
        for p in parties
        if not p.organisation.memberships.filter(roles__name=Role.SIGNATORY).exists()
    ]
    if without:
        raise ValidationError(
            {"parties": ["No signatory is registered for: " + ", ".join(without) + "."]}
        )
    party_org_ids = {p.organisation_id for p in parties}
    if agreement.datasets.exclude(publisher_id__in=party_org_ids).exists():
        raise ValidationError(
            {"datasets": ["The agreement covers datasets no party publishes; edit the draft."]}
        )
    agreement.rendered_markdown = documents.render_markdown(agreement)
    pdf = documents.render_agreement_pdf(agreement)
    agreement.document_sha256 = documents.sha256(pdf)
    upload = documents.as_file(pdf, agreement, "for-signature")
    agreement.document.save(upload.name, upload, save=False)
    agreement.status = AgreementStatus.OUT_FOR_SIGNATURE
    agreement.sent_at = timezone.now()
    agreement.save()
    _audit(
        "agreement.sent",
        actor=actor,
        agreement=agreement,
        document_sha256=agreement.document_sha256,
    )
    # A new version sent for signature replaces an earlier one still waiting for signatures.
    previous = agreement.previous_version
    if previous is not None and previous.status == AgreementStatus.OUT_FOR_SIGNATURE:
        _supersede(actor=actor, old=previous, new=agreement)
    notify("agreement.sent", actor=actor, agreement=agreement, url=_url(agreement))
    return agreement


def _normalise_name(name: str) -> str:
    return " ".join(name.split()).casefold()


@transaction.atomic
def agreement_sign(
    *,
    actor: User,
    agreement: Agreement,
    party: AgreementParty,
    full_name: str,
    confirm: bool,
    ip_address: str | None = None,
) -> Signature:
    """A party's signatory signs by typing their full name and confirming."""
    agreement = Agreement.objects.select_for_update().get(pk=agreement.pk)
    if party.agreement_id != agreement.pk:
        raise ValidationError({"party": ["This party is not part of the agreement."]})
    from accounts import permissions as base

    if not base.has_role(actor, party.organisation_id, Role.SIGNATORY):
        raise PermissionDenied(f"Only a signatory of {party.organisation} can sign for it.")
    _require_status(
        agreement,
        AgreementStatus.OUT_FOR_SIGNATURE,
        message="Only an agreement out for signature can be signed.",
    )
    if Signature.objects.filter(party=party).exists():
        raise ValidationError({"party": [f"{party.organisation} has already signed."]})
    errors = {}
    expected = actor.get_full_name().strip()
    if not full_name.strip():
        errors["full_name"] = ["Type your full name to sign."]
    elif expected and _normalise_name(full_name) != _normalise_name(expected):
        errors["full_name"] = [
            f"This does not match the name registered for you: type “{expected}” "
            "(capitals and extra spaces do not matter)."
        ]
    if not confirm:
        errors["confirm"] = ["Confirm that you sign on behalf of your organisation."]
    if errors:
        raise ValidationError(errors)
    signature = Signature.objects.create(
        agreement=agreement,
        party=party,
        user=actor,
        full_name=" ".join(full_name.split()),
        ip_address=ip_address or None,
        document_sha256=agreement.document_sha256,
    )
    _audit(
        "agreement.signed",
        actor=actor,
        agreement=agreement,
        party=party.organisation.slug,
        full_name=signature.full_name,
        ip_address=ip_address,
        document_sha256=agreement.document_sha256,
    )
    notify(
        "agreement.signed",
        actor=actor,
        agreement=agreement,
        organisation=party.organisation.name,
        url=_url(agreement),
    )
    if not agreement.parties.filter(signature__isnull=True).exists():
        _activate(actor=actor, agreement=agreement)
    return signature


def _activate(*, actor, agreement: Agreement) -> None:
    signatures = list(
        agreement.signatures.select_related("party__organisation", "user").order_by("signed_at")
    )
    pdf = documents.render_agreement_pdf(agreement, signatures=signatures)
    agreement.signed_document_sha256 = documents.sha256(pdf)
    upload = documents.as_file(pdf, agreement, "signed")
    agreement.signed_document.save(upload.name, upload, save=False)
    agreement.status = AgreementStatus.ACTIVE
    agreement.activated_at = timezone.now()
    agreement.save()
    _audit(
        "agreement.activated",
        actor=actor,
        agreement=agreement,
        signed_document_sha256=agreement.signed_document_sha256,
    )
    notify("agreement.activated", actor=actor, agreement=agreement, url=_url(agreement))
    previous = agreement.previous_version
    if previous is not None and previous.status == AgreementStatus.ACTIVE:
        _supersede(actor=actor, old=previous, new=agreement)


def _supersede(*, actor, old: Agreement, new: Agreement) -> None:
    old.status = AgreementStatus.SUPERSEDED
    old.superseded_by = new
    old.ended_at = timezone.now()
    old.save(update_fields=["status", "superseded_by", "ended_at"])
    _audit("agreement.superseded", actor=actor, agreement=old, superseded_by=new.reference)
    notify("agreement.superseded", actor=actor, agreement=old, url=_url(old))
    _agreement_ended(actor=actor, agreement=old, replacement=new)


@transaction.atomic
def agreement_new_version(*, actor: User, agreement: Agreement) -> Agreement:
    """Start the next version of a sent agreement as a draft; it must be sent and signed again."""
    agreement = Agreement.objects.select_for_update().get(pk=agreement.pk)
    _require_manager(actor, agreement)
    _require_status(
        agreement,
        AgreementStatus.OUT_FOR_SIGNATURE,
        AgreementStatus.ACTIVE,
        message="Only an agreement out for signature or active can get a new version; edit a draft directly.",
    )
    if Agreement.objects.filter(previous_version=agreement).exists():
        raise ValidationError({"status": ["A newer version of this agreement already exists."]})
    # A new version is a creation: the same check of the parties and the actor's role in one.
    _check_parties(actor, [(p.organisation, p.role) for p in agreement.parties.all()])
    new = Agreement.objects.create(
        template=agreement.template,
        kind=agreement.kind,
        title=agreement.title,
        purposes=agreement.purposes,
        effective_date=agreement.effective_date,
        expiry_date=agreement.expiry_date,
        lineage_id=agreement.lineage_id or agreement.pk,
        version=agreement.version + 1,
        previous_version=agreement,
        created_by=actor,
    )
    AgreementParty.objects.bulk_create(
        [
            AgreementParty(agreement=new, organisation_id=p.organisation_id, role=p.role)
            for p in agreement.parties.all()
        ]
    )
    new.datasets.set(agreement.datasets.all())
    _audit("agreement.version_created", actor=actor, agreement=new, previous=agreement.reference)
    return new


@transaction.atomic
def agreement_terminate(*, actor: User, agreement: Agreement, reason: str) -> Agreement:
    agreement = Agreement.objects.select_for_update().get(pk=agreement.pk)
    _require_manager(actor, agreement)
    _require_status(
        agreement,
        AgreementStatus.OUT_FOR_SIGNATURE,
        AgreementStatus.ACTIVE,
        message="Only an agreement out for signature or active can be terminated.",
    )
    if not reason.strip():
        raise ValidationError({"reason": ["Give the reason for terminating the agreement."]})
    agreement.status = AgreementStatus.TERMINATED
    agreement.termination_reason = reason.strip()
    agreement.ended_at = timezone.now()
    agreement.save(update_fields=["status", "termination_reason", "ended_at"])
    _audit("agreement.terminated", actor=actor, agreement=agreement, reason=reason.strip())
    notify(
        "agreement.terminated",
        actor=actor,
        agreement=agreement,
        body=f"Reason: {reason.strip()}",
        url=_url(agreement),
    )
    _agreement_ended(actor=actor, agreement=agreement)
    return agreement


@transaction.atomic
def agreement_expire(*, agreement: Agreement, today: date | None = None) -> bool:
    """Move an active agreement past its expiry date to expired (system action, idempotent)."""
    today = today or timezone.localdate()
    agreement = Agreement.objects.select_for_update().get(pk=agreement.pk)
    if agreement.status != AgreementStatus.ACTIVE or agreement.expiry_date > today:
        return False
    agreement.status = AgreementStatus.EXPIRED
    agreement.ended_at = timezone.now()
    agreement.save(update_fields=["status", "ended_at"])
    _audit("agreement.expired", actor=None, agreement=agreement)
    notify("agreement.expired", agreement=agreement, url=_url(agreement))
    _agreement_ended(actor=None, agreement=agreement)
    return True


def _agreement_ended(*, actor, agreement: Agreement, replacement: Agreement | None = None) -> None:
    """Entitlements resting on an ended agreement are suspended (or moved to its replacement)."""
    try:
        from .entitlements import entitlements_on_agreement_ended
    except ImportError:  # pragma: no cover - entitlements not installed
        return
    entitlements_on_agreement_ended(actor=actor, agreement=agreement, replacement=replacement)
