"""The triage workflow: the transitions a feedback item may take, who may take them, and the
assignable platform team."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts import audit
from accounts.models import OrganisationKind

from .. import permissions
from ..models import CLOSED_STATUSES, FeedbackItem, Label, Priority, Status
from .comments import _comment_create
from .notifications import notify_author_of_status

if TYPE_CHECKING:
    from django.db.models import QuerySet

User = get_user_model()

VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,39}$")


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


def available_transitions(item: FeedbackItem, user: User) -> list[str]:
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
        notify_author_of_status(item=fresh, actor=user, before=before, note=note)
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
    user: User,
    item: FeedbackItem,
    assignee: User | None = None,
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
def feedback_start(*, user: User, item: FeedbackItem) -> FeedbackItem:
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
    *, user: User, item: FeedbackItem, resolution_note: str, fixed_in_version: str = ""
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
def feedback_wont_fix(*, user: User, item: FeedbackItem, resolution_note: str) -> FeedbackItem:
    _check_transition(item, user, "wont_fix")
    note = (resolution_note or "").strip()
    if not note:
        raise ValidationError({"resolution_note": ["Say why this will not be fixed."]})
    return _apply(
        user=user, item=item, name="wont_fix", payload={}, note=note, resolution_note=note
    )


@transaction.atomic
def feedback_mark_duplicate(
    *, user: User, item: FeedbackItem, duplicate_of: FeedbackItem, resolution_note: str = ""
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
def feedback_reopen(*, user: User, item: FeedbackItem, reason: str = "") -> FeedbackItem:
    reason = (reason or "").strip()
    item = _apply(user=user, item=item, name="reopen", payload={"reason": reason}, note=reason)
    if reason:
        _comment_create(user=user, item=item, body=f"Reopened: {reason}", notify=False)
    return item


def feedback_transition(*, user: User, item: FeedbackItem, name: str, **data: Any) -> FeedbackItem:
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


def platform_team_users() -> QuerySet[User]:
    """Candidates for assignment: staff users and members of the platform-operator organisation."""
    return (
        User.objects.filter(is_active=True)
        .filter(Q(is_staff=True) | Q(memberships__organisation__kind=OrganisationKind.PLATFORM))
        .distinct()
        .order_by("username")
    )
