"""Submitting and editing feedback items."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts import audit
from accounts import permissions as base
from accounts.models import Organisation, Role

from .. import links, permissions, versions
from ..models import Category, FeedbackItem, Persona
from .comments import _attachment_create
from .workflow import _check_version, _lock

if TYPE_CHECKING:
    from collections.abc import Iterable

    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import UploadedFile
    from django.db.models import Model, QuerySet


def default_persona(user: User) -> str:
    roles = set().union(*base.roles_by_org(user).values()) if base.roles_by_org(user) else set()
    if Role.CLINICIAN in roles:
        return Persona.CLINICIAN
    if Role.DATA_STEWARD in roles or Role.DAC_MEMBER in roles:
        return Persona.DATA_STEWARD
    if Role.SITE_ADMIN in roles:
        return Persona.IT
    if Role.RESEARCHER in roles:
        return Persona.DATA_SCIENTIST
    return Persona.CLINICIAN


EDITABLE_FIELDS = (
    "title",
    "description",
    "steps_to_reproduce",
    "severity",
    "persona",
    "shared",
    "contact_consent",
)


def sites_for(user: User) -> QuerySet[Organisation]:
    """The test sites ``user`` may report for: their own, or any test site for the platform team."""
    qs = Organisation.objects.filter(is_test_site=True)
    if permissions.is_platform_team(user):
        return qs
    return qs.filter(pk__in=permissions.test_site_ids(user))


def _resolve_site(user, site) -> Organisation:
    allowed = permissions.test_site_ids(user)
    if site is None:
        if len(allowed) == 1:
            return Organisation.objects.get(pk=next(iter(allowed)))
        if not allowed and not permissions.is_platform_team(user):
            raise PermissionDenied("Only people at an implementation test site can give feedback.")
        raise ValidationError({"site": ["Choose the test site this feedback comes from."]})
    site_id = site if isinstance(site, int) else site.pk
    if site_id in allowed or (
        permissions.is_platform_team(user)
        and Organisation.objects.filter(pk=site_id, is_test_site=True).exists()
    ):
        return site if isinstance(site, Organisation) else Organisation.objects.get(pk=site_id)
    raise ValidationError({"site": ["You cannot give feedback for this site."]})


def clean_page_path(path: str) -> str:
    path = (path or "").strip()
    if not path.startswith("/") or path.startswith("//"):
        return ""
    return "".join(ch for ch in path if ch.isprintable())[:500]


@transaction.atomic
def feedback_submit(
    *,
    user: User,
    title: str,
    description: str,
    category: str,
    component: str,
    persona: str = "",
    site: Organisation | int | None = None,
    severity: str = "",
    steps_to_reproduce: str = "",
    component_version: str = "",
    page_path: str = "",
    contact_consent: bool = False,
    shared: bool = False,
    link: Model | None = None,
    attachments: Iterable[UploadedFile] = (),
    cds_snapshot: dict | None = None,
) -> FeedbackItem:
    site = _resolve_site(user, site)
    if category != Category.BUG:
        severity = ""
    elif not severity:
        raise ValidationError({"severity": ["Give the severity of the bug."]})
    version = _check_version(component_version, "component_version") or (
        versions.component_version(component, site)
    )
    item = FeedbackItem(
        site=site,
        author=user,
        persona=persona or default_persona(user),
        category=category,
        component=component,
        component_version=version,
        severity=severity,
        title=(title or "").strip(),
        description=(description or "").strip(),
        steps_to_reproduce=(steps_to_reproduce or "").strip(),
        page_path=clean_page_path(page_path),
        contact_consent=bool(contact_consent),
        shared=bool(shared),
        **links.link_fields(link),
    )
    if cds_snapshot:
        item.cds_snapshot = cds_snapshot
        item.cds_pathway_id = str(cds_snapshot.get("pathway_id") or "")[:100]
        item.cds_rule_id = str(cds_snapshot.get("rule_id") or "")[:200]
    item.full_clean()
    item.save()
    audit.record(
        "feedback.submitted",
        actor=user,
        obj=item,
        organisation=site,
        payload={
            "category": item.category,
            "component": item.component,
            "component_version": item.component_version,
            "severity": item.severity,
            "persona": item.persona,
            "shared": item.shared,
            "page": item.page_path,
            "link": f"{item.link_type.app_label}.{item.link_type.model}:{item.link_id}"
            if item.link_type_id
            else "",
        },
    )
    for upload in attachments or ():
        _attachment_create(user=user, item=item, upload=upload)
    return item


@transaction.atomic
def feedback_update(*, user: User, item: FeedbackItem, **fields: Any) -> FeedbackItem:
    """The author (or the platform team) edits the text, sharing and contact consent."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({sorted(unknown)[0]: ["This field cannot be changed."]})
    if not permissions.allows(item, user, "edit"):
        raise PermissionDenied("Only the author or the platform team can edit this item.")
    fresh = _lock(item)
    changed = []
    for field, value in fields.items():
        if isinstance(value, str):
            value = value.strip()
        if getattr(fresh, field) != value:
            setattr(fresh, field, value)
            changed.append(field)
    if fresh.category != Category.BUG:
        fresh.severity = ""
    if not changed:
        return item
    fresh.full_clean(exclude=["site", "author"])
    fresh.save()
    if "shared" in changed:
        audit.record(
            "feedback.shared" if fresh.shared else "feedback.unshared",
            actor=user,
            obj=fresh,
            organisation=fresh.site,
        )
    other = [f for f in changed if f != "shared"]
    if other:
        audit.record(
            "feedback.updated",
            actor=user,
            obj=fresh,
            organisation=fresh.site,
            payload={"fields": other},
        )
    item.__dict__.update(fresh.__dict__)
    return item
