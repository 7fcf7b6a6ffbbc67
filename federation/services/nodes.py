"""Nodes: the registry (register, approve, tokens, revoke, served datasets), what the agents
report (heartbeats) and the periodic liveness bookkeeping."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.audit import record, take_write_lock, write_transaction
from accounts.permissions import is_platform_admin
from governance.notifications import notify
from optima_node.schemas import Heartbeat

from .. import versions
from ..models import (
    OPEN_RUN_STATUSES,
    LinkStatus,
    Liveness,
    Node,
    NodeDataset,
    NodeHeartbeat,
    NodeStatus,
    RunStatus,
)
from ..permissions import can_register_node
from .node_links import confirm_ticked
from .runs import enqueue_advance, run_dispatch, run_transition

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

    from accounts.models import Organisation
    from catalogue.models import Dataset


def default_poll_interval() -> float:
    return float(getattr(settings, "FEDERATION_POLL_INTERVAL_SECONDS", 30.0))


def _registered_by(actor: AbstractBaseUser | str) -> AbstractBaseUser | None:
    return actor if getattr(actor, "is_authenticated", False) else None


@write_transaction
def node_register(
    *, actor: AbstractBaseUser, organisation: Organisation, name: str, description: str = ""
) -> Node:
    """A site admin registers a node of their organisation; a platform admin approves it."""
    if not can_register_node(actor, organisation):
        raise PermissionDenied("Only the organisation's site administrators register its nodes.")
    name = name.strip()
    if not name:
        raise ValidationError({"name": ["Give the node a name."]})
    if Node.objects.filter(organisation=organisation, name=name).exists():
        raise ValidationError({"name": ["This organisation already has a node of that name."]})
    node = Node.objects.create(
        organisation=organisation,
        name=name,
        description=description,
        registered_by=_registered_by(actor),
        poll_interval_seconds=default_poll_interval(),
    )
    record(
        "node.registered", actor=actor, obj=node, organisation=organisation, payload={"name": name}
    )
    return node


@write_transaction
def node_approve(*, actor: AbstractBaseUser, node: Node) -> str:
    """Approve a pending node; returns its token, which is shown once and stored hashed."""
    if not is_platform_admin(actor):
        raise PermissionDenied("Only platform administrators approve nodes.")
    node = Node.objects.select_for_update().get(pk=node.pk)
    if node.status != NodeStatus.PENDING:
        raise ValidationError(f"The node is {node.get_status_display().lower()}, not pending.")
    raw = node.issue_token()
    node.status = NodeStatus.APPROVED
    node.approved_by = _registered_by(actor)
    node.approved_at = timezone.now()
    node.save()
    record(
        "node.approved",
        actor=actor,
        obj=node,
        organisation=node.organisation,
        payload={"token_prefix": node.token_prefix},
    )
    return raw


def _require_manager(actor: AbstractBaseUser, node: Node) -> None:
    if not can_register_node(actor, node.organisation):
        raise PermissionDenied("Only the organisation's site administrators manage its nodes.")


@write_transaction
def node_rotate_token(*, actor: AbstractBaseUser, node: Node) -> str:
    """A new token; the old one stops working at once."""
    _require_manager(actor, node)
    node = Node.objects.select_for_update().get(pk=node.pk)
    if node.status != NodeStatus.APPROVED:
        raise ValidationError("Only an approved node has a token to rotate.")
    old_prefix = node.token_prefix
    raw = node.issue_token()
    # A new token is a new enrolment: the next heartbeat pins the agent's identity key afresh.
    node.identity_key, node.identity_key_reported, node.identity_pinned_at = "", "", None
    node.save(
        update_fields=[
            "token_prefix",
            "token_hash",
            "token_issued_at",
            "identity_key",
            "identity_key_reported",
            "identity_pinned_at",
        ]
    )
    record(
        "node.token_rotated",
        actor=actor,
        obj=node,
        organisation=node.organisation,
        payload={"old_prefix": old_prefix, "new_prefix": node.token_prefix},
    )
    return raw


@write_transaction
def node_confirm_identity(*, actor: AbstractBaseUser, node: Node) -> Node:
    """A site admin accepts the identity key the agent now reports (after comparing its
    fingerprint with ``optima-node identity`` at the node); secure rounds may use it again."""
    _require_manager(actor, node)
    node = Node.objects.select_for_update().select_related("organisation").get(pk=node.pk)
    if not node.identity_in_doubt:
        raise ValidationError("The node reports no new identity key to confirm.")
    old = node.identity_key
    node.identity_key, node.identity_key_reported = node.identity_key_reported, ""
    node.identity_pinned_at = timezone.now()
    node.save(update_fields=["identity_key", "identity_key_reported", "identity_pinned_at"])
    record(
        "node.identity_confirmed",
        actor=actor,
        obj=node,
        organisation=node.organisation,
        payload={
            "old_fingerprint": node.identity_fingerprint(old) if old else "",
            "new_fingerprint": node.identity_fingerprint(),
        },
    )
    return node


def _pin_identity(node: Node, reported: str | None) -> None:
    """Trust on first use: the first key reported is pinned; a different one is held back,
    audited once, and keeps the node out of secure rounds until a site admin confirms it."""
    if not reported:
        return
    if not node.identity_key:
        node.identity_key, node.identity_pinned_at = reported, timezone.now()
        record(
            "node.identity_pinned",
            obj=node,
            organisation=node.organisation,
            actor=f"node:{node.pk}",
            payload={"fingerprint": node.identity_fingerprint()},
        )
        return
    if reported == node.identity_key:
        node.identity_key_reported = ""
        return
    if reported != node.identity_key_reported:
        node.identity_key_reported = reported
        record(
            "node.identity_changed",
            obj=node,
            organisation=node.organisation,
            actor=f"node:{node.pk}",
            payload={
                "pinned_fingerprint": node.identity_fingerprint(),
                "reported_fingerprint": node.identity_fingerprint(reported),
            },
        )


@write_transaction
def node_revoke(*, actor: AbstractBaseUser, node: Node) -> Node:
    """Revoke a node: its token answers 401 (the agent stops) and its open runs fail."""
    _require_manager(actor, node)
    node = Node.objects.select_for_update().get(pk=node.pk)
    if node.status == NodeStatus.REVOKED:
        return node
    node.status = NodeStatus.REVOKED
    node.revoked_at = timezone.now()
    node.save(update_fields=["status", "revoked_at"])
    record("node.revoked", actor=actor, obj=node, organisation=node.organisation)
    for run in node.runs.filter(status__in=OPEN_RUN_STATUSES).select_related("analysis"):
        run_transition(run, RunStatus.FAILED, actor=actor, reason="node revoked")
        enqueue_advance(run.analysis_id)
    return node


@write_transaction
def node_set_datasets(*, actor: AbstractBaseUser, node: Node, datasets: Iterable[Dataset]) -> None:
    """Which catalogue datasets this node serves (their federated distribution)."""
    _require_manager(actor, node)
    wanted = {d.pk: d for d in datasets}
    current = {
        link.dataset_id: link for link in node.served_datasets.select_related("node", "dataset")
    }
    # An unticked proposal stays proposed (the steward's request is still open).
    node.served_datasets.filter(status=LinkStatus.CONFIRMED).exclude(dataset_id__in=wanted).delete()
    confirm_ticked(actor=actor, links=[link for pk, link in current.items() if pk in wanted])
    NodeDataset.objects.bulk_create(
        [
            NodeDataset(node=node, dataset=d, confirmed_by=actor, confirmed_at=timezone.now())
            for pk, d in wanted.items()
            if pk not in current
        ]
    )
    record(
        "node.datasets_set",
        actor=actor,
        obj=node,
        organisation=node.organisation,
        payload={"datasets": sorted(wanted)},
    )


@write_transaction
def node_enrol(
    *,
    actor: AbstractBaseUser | str,
    organisation: Organisation,
    name: str,
    datasets: Sequence[Dataset] = (),
) -> tuple[Node, str]:
    """Operators' shortcut (``manage.py node_enrol``): an approved node serving ``datasets``."""
    node = Node.objects.filter(organisation=organisation, name=name).first()
    if node is None:
        node = Node.objects.create(
            organisation=organisation,
            name=name,
            registered_by=_registered_by(actor),
            poll_interval_seconds=default_poll_interval(),
        )
    node.status = NodeStatus.APPROVED
    node.revoked_at = None
    node.approved_at = timezone.now()
    node.approved_by = _registered_by(actor)
    raw = node.issue_token()
    node.save()
    if datasets:
        for dataset in datasets:
            NodeDataset.objects.get_or_create(node=node, dataset=dataset)
    record(
        "node.enrolled",
        actor=actor,
        obj=node,
        organisation=organisation,
        payload={
            "name": name,
            "datasets": sorted(d.pk for d in datasets),
            "token_prefix": node.token_prefix,
        },
    )
    return node, raw


REPORTED_FIELDS = (
    "agent_version",
    "capabilities",
    "cdm_version",
    "vocabulary_version",
    "dialect",
    "image_digest",
)


@write_transaction
def node_heartbeat(*, node: Node, heartbeat: Heartbeat) -> Node:
    """Store what the agent reports; audit when it changes; offer waiting runs it can now run."""
    now = timezone.now()
    node = Node.objects.select_for_update().select_related("organisation").get(pk=node.pk)
    reported = {
        "agent_version": heartbeat.agent_version,
        "capabilities": [c.model_dump() for c in heartbeat.capabilities],
        "cdm_version": heartbeat.cdm_version,
        "vocabulary_version": heartbeat.vocabulary_version,
        "dialect": heartbeat.dialect,
        "policy": heartbeat.policy.model_dump(),
        "image_digest": heartbeat.image_digest or "",
    }
    changed = {k: v for k, v in reported.items() if getattr(node, k) != v}
    for key, value in reported.items():
        setattr(node, key, value)
    node.person_count = heartbeat.person_count
    _pin_identity(node, heartbeat.identity_key)
    node.first_seen_at = node.first_seen_at or now
    node.last_seen_at = now
    came_back = node.last_liveness != Liveness.ONLINE
    node.last_liveness = Liveness.ONLINE
    tell_outdated = node.agent_outdated and node.agent_outdated_notified != node.agent_version
    if tell_outdated:
        node.agent_outdated_notified = node.agent_version
    node.save()
    NodeHeartbeat.objects.bulk_create(
        [NodeHeartbeat(node=node, minute=now.replace(second=0, microsecond=0))],
        ignore_conflicts=True,
    )
    if changed:
        record(
            "node.reported",
            obj=node,
            organisation=node.organisation,
            actor=f"node:{node.pk}",
            payload={"changed": sorted(changed), **{k: reported[k] for k in changed}},
        )
    if came_back:
        record("node.online", obj=node, organisation=node.organisation, actor=f"node:{node.pk}")
    if tell_outdated:
        record(
            "node.agent_outdated",
            obj=node,
            organisation=node.organisation,
            actor=f"node:{node.pk}",
            payload={"agent_version": node.agent_version, "release": versions.AGENT_RELEASE},
        )
        notify(
            "node.agent_outdated",
            url=reverse("federation:node", args=[node.pk]),
            custodian=node.organisation,
            node=node.name,
            version=node.agent_version,
            release=versions.AGENT_RELEASE,
            body="Install the current node image (the node install guide, “Upgrade”); the node "
            "page shows the new version after the agent's next heartbeat.",
        )
    waiting = list(
        node.runs.filter(status=RunStatus.PENDING).select_related("analysis").order_by("pk")
    )
    for run in waiting:
        run_dispatch(run, node)
    return node


def nodes_check_liveness(*, now: datetime | None = None) -> dict[str, int]:
    """Audit each node's passage between online, stale and offline once."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    for node in Node.objects.filter(status=NodeStatus.APPROVED).select_related("organisation"):
        current = node.liveness(now)
        counts[current] = counts.get(current, 0) + 1
        if current != node.last_liveness:
            with transaction.atomic():
                take_write_lock()
                updated = Node.objects.filter(pk=node.pk, last_liveness=node.last_liveness).update(
                    last_liveness=current
                )
                if updated:
                    record(
                        f"node.{current}",
                        obj=node,
                        organisation=node.organisation,
                        payload={"from": node.last_liveness, "last_seen_at": node.last_seen_at},
                    )
    return counts


def heartbeats_prune(*, now: datetime | None = None, keep_days: int = 8) -> int:
    """Drop heartbeat minutes older than ``keep_days`` (availability looks back seven days)."""
    now = now or timezone.now()
    deleted, _ = NodeHeartbeat.objects.filter(minute__lt=now - timedelta(days=keep_days)).delete()
    return deleted
