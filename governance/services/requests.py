"""Writes about baskets, access requests (drafting, submission, withdrawal, renewal), comments and
attachments. The per-custodian decisions are in ``decisions.py``."""

from __future__ import annotations

import hashlib
import mimetypes
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts import audit, limits
from accounts import permissions as base
from accounts.models import Membership, Organisation, Role

from .. import datasets as ds
from .. import permissions
from ..models import (
    FINAL_DECISIONS,
    OPEN_STATUSES,
    AccessRequest,
    Attachment,
    AttachmentKind,
    BasketItem,
    Comment,
    Decision,
    DecisionStatus,
    Entitlement,
    Purpose,
    RequestedDataset,
    RequestStatus,
)
from ..notifications import notify
from .entitlements import entitlements_revoke_for_request

if TYPE_CHECKING:
    from collections.abc import Iterable

    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import UploadedFile

    from catalogue.models import Dataset

ALLOWED_UPLOAD_TYPES = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".txt": "text/plain",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".odt": "application/vnd.oasis.opendocument.text",
}
# The first bytes of each allowed type, so a renamed executable is refused.
_MAGIC = {
    "application/pdf": (b"%PDF",),
    "image/png": (b"\x89PNG",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (b"PK\x03\x04",),
    "application/vnd.oasis.opendocument.text": (b"PK\x03\x04",),
}


def request_url(access_request: AccessRequest) -> str:
    return reverse("governance:request_detail", args=[access_request.pk])


def _audit(action: str, *, actor, access_request: AccessRequest, organisation=None, **payload):
    audit.record(
        action,
        actor=actor,
        obj=access_request,
        organisation=organisation or access_request.organisation,
        payload={"reference": access_request.reference, "status": access_request.status, **payload},
    )


def _lock(access_request: AccessRequest) -> AccessRequest:
    return AccessRequest.objects.select_for_update().get(pk=access_request.pk)


def _refuse(field: str, message: str):
    raise ValidationError({field: [message]})


# --- Basket -----------------------------------------------------------------------------------
def researcher_org_ids(user: User) -> set[int]:
    return base.org_ids_with_role(user, Role.RESEARCHER)


@transaction.atomic
def basket_add(*, user: User, dataset: Dataset) -> BasketItem:
    if not researcher_org_ids(user):
        raise PermissionDenied("Only researchers collect datasets for an access request.")
    if not ds.published().filter(pk=dataset.pk).exists():
        _refuse("dataset", "Only published datasets can be requested.")
    item, _ = BasketItem.objects.get_or_create(user=user, dataset=dataset)
    return item


def basket_remove(*, user: User, dataset: Dataset) -> None:
    BasketItem.objects.filter(user=user, dataset=dataset).delete()


# --- Drafting ---------------------------------------------------------------------------------
def _choose_organisation(actor, organisation: Organisation | None) -> Organisation:
    org_ids = researcher_org_ids(actor)
    if organisation is not None:
        if organisation.pk not in org_ids:
            raise PermissionDenied(f"You are not a researcher of {organisation}.")
        return organisation
    if not org_ids:
        raise PermissionDenied("Only researchers can open an access request.")
    return Organisation.objects.filter(pk__in=org_ids).order_by("name").first()


def _default_mode(dataset) -> str:
    modes = ds.offered_modes(dataset)
    return "federated_analytics" if "federated_analytics" in modes else (modes[0] if modes else "")


def _set_team(access_request: AccessRequest, team_members) -> None:
    team = [u for u in team_members if u.pk != access_request.applicant_id]
    allowed = set(
        Membership.objects.filter(
            organisation=access_request.organisation, user__in=team
        ).values_list("user_id", flat=True)
    )
    outside = [u.get_username() for u in team if u.pk not in allowed]
    if outside:
        _refuse(
            "team_members",
            f"Team members must belong to {access_request.organisation}: not {', '.join(outside)}.",
        )
    access_request.team_members.set(team)


def _add_item(access_request: AccessRequest, dataset, mode: str | None, accept_terms: bool):
    if not ds.published().filter(pk=dataset.pk).exists():
        _refuse("datasets", f"Dataset {dataset.pk} is not published.")
    mode = mode or _default_mode(dataset)
    _check_mode(dataset, mode)
    terms = ds.current_terms(dataset)
    return RequestedDataset.objects.create(
        request=access_request,
        dataset=dataset,
        custodian_id=ds.custodian_id(dataset),
        access_mode=mode,
        terms=terms if accept_terms else None,
        terms_accepted_at=timezone.now() if accept_terms and terms else None,
    )


def _check_mode(dataset, mode: str) -> None:
    offered = ds.offered_modes(dataset)
    if mode not in offered:
        labels = ", ".join(ds.ACCESS_MODE_LABELS.get(m, m) for m in offered) or "none"
        _refuse(
            "datasets",
            f"{ds.title(dataset)} does not offer {ds.ACCESS_MODE_LABELS.get(mode, mode or 'no mode')}; it offers: {labels}.",
        )


REQUEST_FIELDS = (
    "project_title",
    "research_question",
    "lay_summary",
    "purpose",
    "requested_end_date",
    "ethics_reference",
)


def _set_fields(access_request: AccessRequest, fields: dict) -> dict:
    changed = {}
    for name, value in fields.items():
        if name not in REQUEST_FIELDS:
            raise TypeError(f"unknown field {name}")
        if value is None:
            continue
        if name == "purpose" and value and value not in Purpose.values:
            _refuse("purpose", "Choose a purpose from the list.")
        if getattr(access_request, name) != value:
            setattr(access_request, name, value)
            changed[name] = str(value)
    return changed


@transaction.atomic
def access_request_create(
    *,
    actor: User,
    project_title: str,
    organisation: Organisation | None = None,
    datasets: Iterable[tuple[Dataset, str | None, bool]] = (),
    from_basket: bool = False,
    team_members: Iterable[User] = (),
    renewal_of: AccessRequest | None = None,
    **fields: Any,
) -> AccessRequest:
    """A draft request; ``datasets`` is a list of (dataset, access mode or None, accept terms)."""
    organisation = _choose_organisation(actor, organisation)
    if not project_title.strip():
        _refuse("project_title", "Give the project a title.")
    access_request = AccessRequest(
        applicant=actor,
        organisation=organisation,
        project_title=project_title.strip(),
        renewal_of=renewal_of,
    )
    _set_fields(access_request, fields)
    access_request.save()
    items = list(datasets)
    if from_basket:
        chosen = {d.pk for d, _, _ in items}
        basket = BasketItem.objects.filter(user=actor).select_related("dataset")
        items += [(b.dataset, None, False) for b in basket if b.dataset_id not in chosen]
    for dataset, mode, accept in items:
        _add_item(access_request, dataset, mode, accept)
    _set_team(access_request, list(team_members))
    if from_basket:
        BasketItem.objects.filter(user=actor).delete()
    _audit(
        "access_request.created",
        actor=actor,
        access_request=access_request,
        datasets=[i.dataset_id for i in access_request.items.all()],
    )
    return access_request


def _require_applicant(actor, access_request: AccessRequest) -> None:
    if access_request.applicant_id != actor.pk:
        raise PermissionDenied("Only the applicant can do that.")


@transaction.atomic
def access_request_update(
    *,
    actor: User,
    access_request: AccessRequest,
    items: dict | None = None,
    add_datasets: Iterable[Dataset] = (),
    remove_datasets: Iterable[Dataset] = (),
    team_members: Iterable[User] | None = None,
    **fields: Any,
) -> AccessRequest:
    """Edit a draft (or a request whose custodians asked for changes).

    ``items`` maps a dataset id to ``{"access_mode": ..., "accept_terms": bool}``. Datasets can be
    added or removed only while drafting, because each custodian's decision is about its datasets.
    """
    access_request = _lock(access_request)
    _require_applicant(actor, access_request)
    if not access_request.is_editable:
        _refuse(
            "status", f"A {access_request.get_status_display().lower()} request cannot be edited."
        )
    changed = _set_fields(access_request, fields)
    if "project_title" in changed and not access_request.project_title.strip():
        _refuse("project_title", "Give the project a title.")
    access_request.save()
    drafting = access_request.status == RequestStatus.DRAFT
    if (add_datasets or remove_datasets) and not drafting:
        _refuse("datasets", "Datasets can only be added or removed while the request is a draft.")
    present = set(access_request.items.values_list("dataset_id", flat=True))
    for dataset in add_datasets:
        if dataset.pk not in present:
            _add_item(access_request, dataset, None, False)
            changed.setdefault("added", []).append(dataset.pk)
    if remove_datasets:
        ids = [d.pk for d in remove_datasets]
        access_request.items.filter(dataset_id__in=ids).delete()
        changed["removed"] = ids
    for item in access_request.items.select_related("dataset", "dataset__current_version"):
        wanted = (items or {}).get(item.dataset_id) or (items or {}).get(str(item.dataset_id))
        if not wanted:
            continue
        mode = wanted.get("access_mode") or item.access_mode
        if mode != item.access_mode:
            _check_mode(item.dataset, mode)
            item.access_mode = mode
        if "accept_terms" in wanted:
            terms = ds.current_terms(item.dataset)
            if wanted["accept_terms"]:
                item.terms, item.terms_accepted_at = terms, timezone.now() if terms else None
            else:
                item.terms, item.terms_accepted_at = None, None
        item.save()
        changed.setdefault("items", []).append(item.dataset_id)
    if team_members is not None:
        _set_team(access_request, list(team_members))
        changed["team_members"] = sorted(u.get_username() for u in team_members)
    _audit("access_request.updated", actor=actor, access_request=access_request, changed=changed)
    return access_request


def submission_errors(access_request: AccessRequest) -> dict[str, list[str]]:
    """Everything that stops a request from being submitted, by field."""
    errors: dict[str, list[str]] = {}
    for name, label in (
        ("project_title", "a project title"),
        ("research_question", "the research question"),
        ("lay_summary", "a lay summary"),
        ("purpose", "the purpose"),
        ("ethics_reference", "the ethics approval reference"),
    ):
        if not str(getattr(access_request, name) or "").strip():
            errors[name] = [f"Give {label}."]
    end = access_request.requested_end_date
    if end is None:
        errors["requested_end_date"] = ["Give the date until which you need access."]
    elif end <= timezone.localdate():
        errors["requested_end_date"] = ["The requested end date must be in the future."]
    elif end > limits.requested_end_date_max():
        errors["requested_end_date"] = [
            f"Access can be requested for at most {limits.REQUESTED_END_YEARS} years."
        ]
    if not access_request.attachments.filter(kind=AttachmentKind.ETHICS_APPROVAL).exists():
        errors["ethics_file"] = ["Upload the ethics approval document."]
    items = list(access_request.items.select_related("dataset", "dataset__current_version"))
    if not items:
        errors["datasets"] = ["Add at least one dataset."]
    public = set(
        ds.published().filter(pk__in=[i.dataset_id for i in items]).values_list("pk", flat=True)
    )
    for item in items:
        name = ds.title(item.dataset)
        if item.dataset_id not in public:
            errors.setdefault("datasets", []).append(f"{name} is no longer published.")
            continue
        if item.access_mode not in ds.offered_modes(item.dataset):
            errors.setdefault("datasets", []).append(f"{name}: choose an access mode it offers.")
        terms = ds.current_terms(item.dataset)
        if terms is not None and item.terms_id != terms.pk:
            errors.setdefault("terms", []).append(
                f"Accept the current terms of use (version {terms.version}) of {name}."
            )
    return errors


@transaction.atomic
def access_request_submit(*, actor: User, access_request: AccessRequest) -> AccessRequest:
    access_request = _lock(access_request)
    _require_applicant(actor, access_request)
    if access_request.status != RequestStatus.DRAFT:
        _refuse("status", "Only a draft can be submitted.")
    errors = submission_errors(access_request)
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    access_request.status = RequestStatus.SUBMITTED
    access_request.submitted_at = now
    access_request.first_submitted_at = access_request.first_submitted_at or now
    access_request.save()
    for custodian_id in sorted(set(access_request.items.values_list("custodian_id", flat=True))):
        Decision.objects.update_or_create(
            request=access_request,
            custodian_id=custodian_id,
            defaults={"status": DecisionStatus.PENDING, "waiting_since": now},
        )
    _audit(
        "access_request.submitted",
        actor=actor,
        access_request=access_request,
        custodians=sorted(access_request.decisions.values_list("custodian__slug", flat=True)),
    )
    notify(
        "request.submitted",
        actor=actor,
        access_request=access_request,
        url=request_url(access_request),
    )
    return access_request


@transaction.atomic
def access_request_resubmit(*, actor: User, access_request: AccessRequest) -> AccessRequest:
    access_request = _lock(access_request)
    _require_applicant(actor, access_request)
    if access_request.status != RequestStatus.CHANGES_REQUESTED:
        _refuse("status", "Only a request with changes requested can be resubmitted.")
    errors = submission_errors(access_request)
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    access_request.decisions.filter(status=DecisionStatus.CHANGES_REQUESTED).update(
        status=DecisionStatus.PENDING, waiting_since=now, last_reminded_at=None
    )
    access_request.status = RequestStatus.RESUBMITTED
    access_request.submitted_at = now
    access_request.save()
    _refresh_status(access_request)
    _audit("access_request.resubmitted", actor=actor, access_request=access_request)
    notify(
        "request.resubmitted",
        actor=actor,
        access_request=access_request,
        url=request_url(access_request),
    )
    return access_request


@transaction.atomic
def access_request_withdraw(
    *, actor: User, access_request: AccessRequest, reason: str = ""
) -> AccessRequest:
    access_request = _lock(access_request)
    _require_applicant(actor, access_request)
    if access_request.status not in (RequestStatus.DRAFT, *OPEN_STATUSES):
        _refuse(
            "status",
            f"A {access_request.get_status_display().lower()} request cannot be withdrawn.",
        )
    was_draft = access_request.status == RequestStatus.DRAFT
    access_request.status = RequestStatus.WITHDRAWN
    access_request.closed_at = timezone.now()
    access_request.save()
    entitlements_revoke_for_request(
        actor=actor, access_request=access_request, reason="The request was withdrawn."
    )
    _audit("access_request.withdrawn", actor=actor, access_request=access_request, reason=reason)
    if not was_draft:
        notify(
            "request.withdrawn",
            actor=actor,
            access_request=access_request,
            body=reason,
            url=request_url(access_request),
        )
    return access_request


# --- Overall status, derived from the decisions -----------------------------------------------
def derive_status(current: str, decision_statuses: list[str]) -> str:
    """The request's state from its custodians' decisions (draft and withdrawn are not derived)."""
    if current in (RequestStatus.DRAFT, RequestStatus.WITHDRAWN) or not decision_statuses:
        return current
    if DecisionStatus.CHANGES_REQUESTED in decision_statuses:
        return RequestStatus.CHANGES_REQUESTED
    if all(s in FINAL_DECISIONS for s in decision_statuses):
        return (
            RequestStatus.APPROVED
            if DecisionStatus.APPROVED in decision_statuses
            else RequestStatus.REJECTED
        )
    if any(s != DecisionStatus.PENDING for s in decision_statuses):
        return RequestStatus.UNDER_REVIEW
    return (
        current
        if current in (RequestStatus.SUBMITTED, RequestStatus.RESUBMITTED)
        else RequestStatus.SUBMITTED
    )


def _refresh_status(access_request: AccessRequest) -> None:
    statuses = list(access_request.decisions.values_list("status", flat=True))
    new = derive_status(access_request.status, statuses)
    if new != access_request.status:
        access_request.status = new
        if new in (RequestStatus.APPROVED, RequestStatus.REJECTED):
            access_request.closed_at = timezone.now()
        access_request.save(update_fields=["status", "closed_at", "updated_at"])


# --- Conversation and files -------------------------------------------------------------------
@transaction.atomic
def comment_post(
    *, actor: User, access_request: AccessRequest, custodian: Organisation, body: str
) -> Comment:
    if not permissions.can_comment(actor, access_request, custodian.pk):
        raise PermissionDenied("Only the researcher's team and this custodian's DAC write here.")
    if not access_request.decisions.filter(custodian=custodian).exists():
        _refuse("custodian", f"{custodian} has no part in this request.")
    if not body.strip():
        _refuse("body", "Write a comment.")
    comment = Comment.objects.create(
        request=access_request, custodian=custodian, author=actor, body=body.strip()
    )
    _audit(
        "access_request.commented",
        actor=actor,
        access_request=access_request,
        organisation=custodian,
        custodian=custodian.slug,
        comment=comment.pk,
    )
    notify(
        "comment.posted",
        actor=actor,
        access_request=access_request,
        custodian=custodian,
        body=comment.body[:500],
        url=request_url(access_request) + f"#thread-{custodian.pk}",
    )
    return comment


def _check_upload(upload) -> tuple[str, str]:
    name = Path(upload.name or "").name
    # No control or bidirectional-override characters: "c\u202efdp.exe" would display as "cexe.pdf".
    name = "".join(ch for ch in unicodedata.normalize("NFKC", name) if ch.isprintable())
    suffix = Path(name).suffix.lower()
    if suffix not in ALLOWED_UPLOAD_TYPES:
        _refuse("file", "Allowed file types: " + ", ".join(sorted(ALLOWED_UPLOAD_TYPES)) + ".")
    if upload.size > settings.UPLOAD_MAX_BYTES:
        _refuse("file", f"The file is larger than {settings.UPLOAD_MAX_BYTES // (1024 * 1024)} MB.")
    if upload.size == 0:
        _refuse("file", "The file is empty.")
    content_type = ALLOWED_UPLOAD_TYPES[suffix]
    upload.seek(0)
    head = upload.read(8)
    upload.seek(0)
    magic = _MAGIC.get(content_type)
    if magic and not head.startswith(magic):
        _refuse("file", f"The file does not look like a {suffix} file.")
    return name, content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"


@transaction.atomic
def attachment_add(
    *, actor: User, access_request: AccessRequest, kind: str, upload: UploadedFile
) -> Attachment:
    access_request = _lock(access_request)
    if not permissions.is_team(actor, access_request):
        raise PermissionDenied("Only the researcher's team adds files.")
    if not access_request.is_editable:
        _refuse(
            "status", "Files can be added while the request is a draft or changes are requested."
        )
    if kind not in AttachmentKind.values:
        _refuse("kind", "Choose the kind of file.")
    name, content_type = _check_upload(upload)
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    attachment = Attachment(
        request=access_request,
        kind=kind,
        original_name=name[:255],
        content_type=content_type,
        size=upload.size,
        sha256=digest.hexdigest(),
        uploaded_by=actor,
    )
    attachment.file.save(
        f"request-{access_request.pk}{Path(name).suffix.lower()}", upload, save=False
    )
    attachment.save()
    _audit(
        "access_request.attachment_added",
        actor=actor,
        access_request=access_request,
        attachment=attachment.pk,
        kind=kind,
        sha256=attachment.sha256,
    )
    return attachment


# --- Renewal ----------------------------------------------------------------------------------
@transaction.atomic
def entitlement_renew(*, actor: User, entitlement: Entitlement) -> AccessRequest:
    """A new draft request prefilled from the one the entitlement came from."""
    original = entitlement.request
    if entitlement.holder_id != actor.pk:
        raise PermissionDenied("Only the holder asks for a renewal.")
    items = [
        (i.dataset, i.access_mode, False)
        for i in original.items.select_related("dataset__current_version")
        if ds.published().filter(pk=i.dataset_id).exists()
    ]
    user_model = get_user_model()
    team = list(
        user_model.objects.filter(
            pk__in=[original.applicant_id, *original.team_members.values_list("pk", flat=True)]
        ).exclude(pk=actor.pk)
    )
    return access_request_create(
        actor=actor,
        project_title=original.project_title,
        organisation=original.organisation,
        datasets=items,
        team_members=team,
        renewal_of=original,
        research_question=original.research_question,
        lay_summary=original.lay_summary,
        purpose=original.purpose,
        ethics_reference=original.ethics_reference,
    )
