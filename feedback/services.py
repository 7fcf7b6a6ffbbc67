"""Writes: submitting feedback, the triage workflow, comments, votes, attachments, CDS disagreements.

Every function is keyword-only, runs in one transaction and writes its audit event there. Authors
are notified of status changes and replies through a Notification row that a Celery task sends
after the commit.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from accounts import audit
from accounts import permissions as base
from accounts.models import Organisation, OrganisationKind, Role

from . import links, permissions, uploads, versions
from .models import (
    CLOSED_STATUSES,
    Attachment,
    Category,
    Comment,
    Component,
    FeedbackItem,
    Label,
    Notification,
    Persona,
    Priority,
    Status,
    Vote,
)

User = get_user_model()
log = logging.getLogger(__name__)

VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,39}$")
EDITABLE_FIELDS = (
    "title",
    "description",
    "steps_to_reproduce",
    "severity",
    "persona",
    "shared",
    "contact_consent",
)


# --- Workflow -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    name: str
    past: str  # "An item that is “New” cannot be <past>."
    sources: tuple[str, ...]
    target: str
    rule: str  # the permissions action that allows it
    audit_action: str


_WORKING = (Status.TRIAGED, Status.IN_PROGRESS, Status.REOPENED)
TRANSITIONS = {
    t.name: t
    for t in (
        Transition(
            "triage",
            "triaged",
            (Status.NEW, Status.REOPENED, Status.TRIAGED),
            Status.TRIAGED,
            "triage",
            "feedback.triaged",
        ),
        Transition(
            "start",
            "started",
            (Status.TRIAGED, Status.REOPENED),
            Status.IN_PROGRESS,
            "triage",
            "feedback.started",
        ),
        Transition("resolve", "resolved", _WORKING, Status.RESOLVED, "triage", "feedback.resolved"),
        Transition(
            "wont_fix",
            "closed as won't fix",
            (Status.NEW, *_WORKING),
            Status.WONT_FIX,
            "triage",
            "feedback.closed_wont_fix",
        ),
        Transition(
            "duplicate",
            "marked as a duplicate",
            (Status.NEW, *_WORKING),
            Status.DUPLICATE,
            "triage",
            "feedback.marked_duplicate",
        ),
        Transition(
            "reopen", "reopened", CLOSED_STATUSES, Status.REOPENED, "reopen", "feedback.reopened"
        ),
    )
}

REFUSED_ROLE = {
    "triage": "Only the platform team can triage, start, resolve or close feedback.",
    "reopen": "Only the author or the platform team can reopen this item.",
}


def available_transitions(item: FeedbackItem, user) -> list[str]:
    """The transitions ``user`` may apply to ``item`` now (for buttons and the API)."""
    return [
        t.name
        for t in TRANSITIONS.values()
        if item.status in t.sources and permissions.allows(item, user, t.rule)
    ]


def _check_transition(item: FeedbackItem, user, name: str) -> Transition:
    transition = TRANSITIONS[name]
    if not permissions.allows(item, user, transition.rule):
        raise PermissionDenied(REFUSED_ROLE[transition.rule])
    if item.status not in transition.sources:
        current = Status(item.status).label
        hint = ""
        if item.status in CLOSED_STATUSES:
            hint = " Reopen it first."
        elif item.status == Status.NEW and name in ("start", "resolve"):
            hint = " Triage it first."
        raise ValidationError(
            {"status": [f"An item that is “{current}” cannot be {transition.past}.{hint}"]}
        )
    return transition


def _lock(item: FeedbackItem) -> FeedbackItem:
    """Re-read the row under a lock so two triagers cannot race one transition."""
    return FeedbackItem.objects.select_for_update().get(pk=item.pk)


def _apply(
    *, user, item: FeedbackItem, name: str, payload: dict, note: str = "", **changes
) -> FeedbackItem:
    fresh = _lock(item)
    transition = _check_transition(fresh, user, name)
    before = fresh.status
    now = timezone.now()
    for field, value in changes.items():
        setattr(fresh, field, value)
    fresh.status = transition.target
    if transition.target == Status.TRIAGED and fresh.triaged_at is None:
        fresh.triaged_at = now
    if transition.target in CLOSED_STATUSES:
        fresh.closed_at = now
        if fresh.triaged_at is None:
            fresh.triaged_at = now
    if transition.target == Status.REOPENED:
        fresh.closed_at = None
        fresh.reopened_count += 1
    fresh.full_clean(exclude=["site", "author"])
    fresh.save()
    audit.record(
        transition.audit_action,
        actor=user,
        obj=fresh,
        organisation=fresh.site,
        payload={"from": before, "to": fresh.status, **payload},
    )
    if before != fresh.status:
        _notify_status(item=fresh, actor=user, before=before, note=note)
    item.__dict__.update(fresh.__dict__)
    return item


def _check_version(value: str, field: str) -> str:
    value = (value or "").strip()
    if value and not VERSION_RE.match(value):
        raise ValidationError({field: ["Give a version such as 0.2.0 or 2026.11-rc1."]})
    return value


def _check_assignee(assignee) -> None:
    if assignee is None:
        return
    if not permissions.is_platform_team(assignee):
        raise ValidationError({"assignee": ["The assignee must be a member of the platform team."]})


def label_objects(names: list[str]) -> list[Label]:
    cleaned = []
    for raw in names or []:
        name = re.sub(r"\s+", "-", str(raw).strip().lower())[:40]
        if name and name not in cleaned:
            cleaned.append(name)
    for name in cleaned:
        if not re.match(r"^[a-z0-9][a-z0-9:._-]*$", name):
            raise ValidationError(
                {"labels": [f"“{name}”: labels use letters, digits, - . _ and : only."]}
            )
    existing = {label.name: label for label in Label.objects.filter(name__in=cleaned)}
    return [existing.get(name) or Label.objects.create(name=name) for name in cleaned]


@transaction.atomic
def feedback_triage(
    *,
    user,
    item: FeedbackItem,
    assignee=None,
    priority: str = Priority.NORMAL,
    labels: list[str] | None = None,
) -> FeedbackItem:
    """new / reopened → triaged (assignee, priority, labels); also re-triages a triaged item."""
    _check_transition(item, user, "triage")  # role and status before the details
    _check_assignee(assignee)
    if priority not in Priority.values:
        raise ValidationError({"priority": ["Choose a priority."]})
    label_list = label_objects(labels or [])
    item = _apply(
        user=user,
        item=item,
        name="triage",
        payload={
            "assignee": assignee.get_username() if assignee else None,
            "priority": priority,
            "labels": [label.name for label in label_list],
        },
        assignee=assignee,
        priority=priority,
    )
    item.labels.set(label_list)
    return item


@transaction.atomic
def feedback_start(*, user, item: FeedbackItem) -> FeedbackItem:
    """triaged / reopened → in progress; whoever starts it is the assignee if there was none."""
    assignee = item.assignee if item.assignee_id else user
    _check_assignee(assignee)
    return _apply(
        user=user,
        item=item,
        name="start",
        payload={"assignee": assignee.get_username()},
        assignee=assignee,
    )


@transaction.atomic
def feedback_resolve(
    *, user, item: FeedbackItem, resolution_note: str, fixed_in_version: str = ""
) -> FeedbackItem:
    _check_transition(item, user, "resolve")
    note = (resolution_note or "").strip()
    if not note:
        raise ValidationError({"resolution_note": ["Say how the item was resolved."]})
    version = _check_version(fixed_in_version, "fixed_in_version")
    return _apply(
        user=user,
        item=item,
        name="resolve",
        payload={"fixed_in_version": version},
        note=note,
        resolution_note=note,
        fixed_in_version=version,
    )


@transaction.atomic
def feedback_wont_fix(*, user, item: FeedbackItem, resolution_note: str) -> FeedbackItem:
    _check_transition(item, user, "wont_fix")
    note = (resolution_note or "").strip()
    if not note:
        raise ValidationError({"resolution_note": ["Say why this will not be fixed."]})
    return _apply(
        user=user, item=item, name="wont_fix", payload={}, note=note, resolution_note=note
    )


@transaction.atomic
def feedback_mark_duplicate(
    *, user, item: FeedbackItem, duplicate_of: FeedbackItem, resolution_note: str = ""
) -> FeedbackItem:
    _check_transition(item, user, "duplicate")
    if duplicate_of is None:
        raise ValidationError({"duplicate_of": ["Name the item this one duplicates."]})
    original = duplicate_of
    seen = {item.pk}
    # Point at the original of a chain, and never make a cycle.
    while original.duplicate_of_id and original.status == Status.DUPLICATE:
        if original.pk in seen:
            break
        seen.add(original.pk)
        original = original.duplicate_of
    if original.pk in seen:
        raise ValidationError({"duplicate_of": ["An item cannot be a duplicate of itself."]})
    note = (resolution_note or "").strip() or f"Duplicate of #{original.pk}."
    return _apply(
        user=user,
        item=item,
        name="duplicate",
        payload={"duplicate_of": original.pk},
        note=note,
        duplicate_of=original,
        resolution_note=note,
    )


@transaction.atomic
def feedback_reopen(*, user, item: FeedbackItem, reason: str = "") -> FeedbackItem:
    reason = (reason or "").strip()
    item = _apply(user=user, item=item, name="reopen", payload={"reason": reason}, note=reason)
    if reason:
        _comment_create(user=user, item=item, body=f"Reopened: {reason}", notify=False)
    return item


def feedback_transition(*, user, item: FeedbackItem, name: str, **data) -> FeedbackItem:
    """One entry point for the HTML and API views: dispatch a transition by name."""
    handlers = {
        "triage": feedback_triage,
        "start": feedback_start,
        "resolve": feedback_resolve,
        "wont_fix": feedback_wont_fix,
        "duplicate": feedback_mark_duplicate,
        "reopen": feedback_reopen,
    }
    if name not in handlers:
        raise ValidationError({"action": [f"Unknown action “{name}”."]})
    return handlers[name](user=user, item=item, **data)


# --- Submitting and editing ------------------------------------------------------------------


def default_persona(user) -> str:
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


def sites_for(user):
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
    user,
    title: str,
    description: str,
    category: str,
    component: str,
    persona: str = "",
    site=None,
    severity: str = "",
    steps_to_reproduce: str = "",
    component_version: str = "",
    page_path: str = "",
    contact_consent: bool = False,
    shared: bool = False,
    link=None,
    attachments=(),
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
def feedback_update(*, user, item: FeedbackItem, **fields) -> FeedbackItem:
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


# --- Comments, votes, attachments -------------------------------------------------------------


def _comment_org(user, item: FeedbackItem):
    member = base.member_org_ids(user)
    if item.site_id in member:
        return item.site_id
    sites = sorted(permissions.test_site_ids(user))
    if sites:
        return sites[0]
    platform = Organisation.objects.filter(pk__in=member, kind=OrganisationKind.PLATFORM).first()
    return platform.pk if platform else None


def _comment_create(*, user, item: FeedbackItem, body: str, notify: bool = True) -> Comment:
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": ["Write a comment."]})
    if len(body) > 10_000:
        raise ValidationError({"body": ["Keep a comment under 10,000 characters."]})
    comment = Comment.objects.create(
        item=item, author=user, organisation_id=_comment_org(user, item), body=body
    )
    audit.record(
        "feedback.commented",
        actor=user,
        obj=item,
        organisation=item.site,
        payload={"comment": comment.pk},
    )
    if notify:
        _notify_reply(item=item, comment=comment, actor=user)
    return comment


@transaction.atomic
def comment_add(*, user, item: FeedbackItem, body: str) -> Comment:
    if not permissions.allows(item, user, "comment"):
        raise PermissionDenied("You cannot comment on this item.")
    return _comment_create(user=user, item=item, body=body)


@transaction.atomic
def vote_add(*, user, item: FeedbackItem) -> bool:
    """Add ``user``'s vote; False if they had voted already."""
    if not permissions.allows(item, user, "vote"):
        raise PermissionDenied("You cannot vote for this item.")
    if item.author_id == user.pk:
        raise ValidationError({"vote": ["You cannot vote for your own feedback."]})
    if not item.is_open:
        raise ValidationError({"vote": ["Votes are for open items; this one is closed."]})
    _, created = Vote.objects.get_or_create(item=item, user=user)
    if created:
        audit.record("feedback.voted", actor=user, obj=item, organisation=item.site)
    return created


@transaction.atomic
def vote_remove(*, user, item: FeedbackItem) -> bool:
    if not permissions.allows(item, user, "vote"):
        raise PermissionDenied("You cannot vote for this item.")
    deleted, _ = Vote.objects.filter(item=item, user=user).delete()
    if deleted:
        audit.record("feedback.unvoted", actor=user, obj=item, organisation=item.site)
    return bool(deleted)


def _attachment_create(*, user, item: FeedbackItem, upload) -> Attachment:
    if item.attachments.count() >= uploads.MAX_ATTACHMENTS_PER_ITEM:
        raise ValidationError(
            {"file": [f"An item holds at most {uploads.MAX_ATTACHMENTS_PER_ITEM} attachments."]}
        )
    checked = uploads.check_upload(upload)
    attachment = Attachment(
        item=item,
        original_name=checked.name,
        content_type=checked.content_type,
        size=checked.size,
        sha256=checked.sha256,
        uploaded_by=user,
    )
    attachment.file.save(checked.name, ContentFile(checked.data), save=False)
    attachment.save()
    audit.record(
        "feedback.attachment_added",
        actor=user,
        obj=item,
        organisation=item.site,
        payload={
            "attachment": attachment.pk,
            "name": checked.name,
            "content_type": checked.content_type,
            "size": checked.size,
            "sha256": checked.sha256,
        },
    )
    return attachment


@transaction.atomic
def attachment_add(*, user, item: FeedbackItem, upload) -> Attachment:
    if not permissions.allows(item, user, "attach"):
        raise PermissionDenied("Only the author's site and the platform team can add attachments.")
    return _attachment_create(user=user, item=item, upload=upload)


# --- CDS disagreement -------------------------------------------------------------------------


def _field(obj, *names, default=None):
    for name in names:
        value = getattr(obj, name, None)
        if value not in (None, "", [], {}):
            return value
    return default


def _jsonable(value):
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, default=str))


def evaluation_snapshot(evaluation) -> dict:
    """What a CDS disagreement needs to stand alone, from a ``cds.models.Evaluation``-like object.

    Reads the engine's ``Evaluation.to_dict()`` shape from the output JSON first (pathway.id,
    pathway.version, decided_by, trace, inputs), then fields on the model itself.
    """
    output = _field(evaluation, "output", "result", default={})
    if not isinstance(output, dict) and hasattr(output, "to_dict"):
        output = output.to_dict()
    output = output if isinstance(output, dict) else {}
    pathway = output.get("pathway") if isinstance(output.get("pathway"), dict) else {}
    pathway_id = pathway.get("id") or _field(evaluation, "pathway_id", "pathway_slug", "pathway")
    version = pathway.get("version") or _field(evaluation, "pathway_version", "version")
    inputs = _field(evaluation, "inputs", default=None)
    if inputs is None:
        inputs = output.get("inputs", {})
    trace = output.get("trace") or []
    rule_ids = _field(evaluation, "rule_ids", "trace_rule_ids", default=None)
    if rule_ids is None:
        rule_ids = [
            t.get("rule_id") for t in trace if isinstance(t, dict) and t.get("reached", True)
        ]
    decided = output.get("decided_by") or _field(evaluation, "decided_by", "deciding_rule_id")
    return _jsonable(
        {
            "evaluation_id": evaluation.pk,
            "pathway_id": str(pathway_id or ""),
            "pathway_version": str(version or ""),
            "inputs": inputs or {},
            "output": output,
            "classification": output.get("classification") or _field(evaluation, "classification"),
            "label": output.get("label") or "",
            "rule_ids": [r for r in (rule_ids or []) if r],
            "rule_id": str(decided or ""),
        }
    )


@transaction.atomic
def cds_disagreement_record(*, user, evaluation, reason: str) -> FeedbackItem | None:
    """A clinician disagrees with a CDS result: one feedback item carrying the evaluation.

    Called from the CDS result page. The evaluation must be visible to ``user`` through
    ``cds.permissions.restrict`` when that exists; the caller has already loaded it for them.
    Feedback comes from the implementation test sites: for someone at no test site nothing is
    recorded and None is returned (the CDS app keeps the opinion on the evaluation itself).
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why you disagree with the advice."]})
    if not permissions.test_site_ids(user):
        return None
    if links.restrict_for(type(evaluation)) is not None and (
        links.visible_object(type(evaluation), user, pk=evaluation.pk) is None
    ):
        raise PermissionDenied("You cannot see this evaluation.")
    snapshot = evaluation_snapshot(evaluation)
    preferred = _field(evaluation, "organisation_id", "site_id")
    sites = permissions.test_site_ids(user)
    site = preferred if preferred in sites else min(sites)
    what = snapshot["label"] or snapshot["classification"] or "the advice"
    title = f"Disagreement with {snapshot['pathway_id']} {snapshot['pathway_version']}: {what}"
    item = feedback_submit(
        user=user,
        site=site,
        persona=Persona.CLINICIAN,
        category=Category.CDS_DISAGREEMENT,
        component=Component.CDS,
        title=title.strip()[:200],
        description=reason,
        link=evaluation,
        cds_snapshot=snapshot,
    )
    audit.record(
        "feedback.cds_disagreement_recorded",
        actor=user,
        obj=item,
        organisation=item.site,
        payload={
            "evaluation": snapshot["evaluation_id"],
            "pathway_id": snapshot["pathway_id"],
            "pathway_version": snapshot["pathway_version"],
            "rule_id": snapshot["rule_id"],
        },
    )
    return item


# --- Notifications ----------------------------------------------------------------------------


def _queue(notification: Notification) -> None:
    from . import tasks

    transaction.on_commit(lambda: tasks.send_notification.delay(notification.pk))


def _item_link(item: FeedbackItem) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + item.get_absolute_url()


def _author_to_notify(item: FeedbackItem, actor):
    author = item.author
    if author is None or not author.is_active or not author.email:
        return None
    if actor is not None and author.pk == getattr(actor, "pk", None):
        return None
    return author


def _notify_status(*, item: FeedbackItem, actor, before: str, note: str) -> None:
    author = _author_to_notify(item, actor)
    if author is None:
        return
    context = {
        "item": item,
        "before": Status(before).label,
        "after": item.get_status_display(),
        "note": note,
        "actor": actor,
        "link": _item_link(item),
    }
    notification = Notification.objects.create(
        item=item,
        recipient=author,
        kind=Notification.Kind.STATUS,
        subject=f"[OPTIMA feedback #{item.pk}] {item.get_status_display()}: {item.title}"[:200],
        body=render_to_string("feedback/email/status.txt", context),
    )
    _queue(notification)


def _notify_reply(*, item: FeedbackItem, comment: Comment, actor) -> None:
    author = _author_to_notify(item, actor)
    if author is None:
        return
    notification = Notification.objects.create(
        item=item,
        recipient=author,
        kind=Notification.Kind.REPLY,
        subject=f"[OPTIMA feedback #{item.pk}] New reply: {item.title}"[:200],
        body=render_to_string(
            "feedback/email/reply.txt",
            {"item": item, "comment": comment, "actor": actor, "link": _item_link(item)},
        ),
    )
    _queue(notification)


def notification_send(*, notification_id: int) -> bool:
    """Send one notification once (idempotent: a sent row is not sent again)."""
    from django.core.mail import send_mail

    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update()
            .select_related("recipient")
            .filter(pk=notification_id, sent_at__isnull=True)
            .first()
        )
        if notification is None:
            return False
        try:
            send_mail(notification.subject, notification.body, None, [notification.recipient.email])
        except Exception as exc:
            notification.error = str(exc)[:2000]
            notification.save(update_fields=["error"])
            raise
        notification.sent_at = timezone.now()
        notification.error = ""
        notification.save(update_fields=["sent_at", "error"])
    return True


def notifications_resend(*, older_than_minutes: int = 10, limit: int = 200) -> int:
    """Send what the after-commit task did not (worker down, mail server failing); at most ``limit``."""
    cutoff = timezone.now() - timedelta(minutes=older_than_minutes)
    pending = Notification.objects.filter(sent_at__isnull=True, created_at__lt=cutoff).order_by(
        "created_at"
    )
    sent = 0
    for notification_id in pending.values_list("pk", flat=True)[:limit]:
        try:
            sent += int(notification_send(notification_id=notification_id))
        except Exception:  # the error is kept on the row; try the others
            log.warning("Feedback notification %s not sent", notification_id, exc_info=True)
    return sent


def platform_team_users():
    """Candidates for assignment: staff users and members of the platform-operator organisation."""
    return (
        User.objects.filter(is_active=True)
        .filter(Q(is_staff=True) | Q(memberships__organisation__kind=OrganisationKind.PLATFORM))
        .distinct()
        .order_by("username")
    )
