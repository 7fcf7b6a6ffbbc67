"""Which node serves a dataset: the steward proposes one of the hospital's nodes, the node's site
admin confirms. Only a confirmed link at an approved node lets analyses reach the dataset."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts.audit import record, write_transaction
from catalogue import permissions as catalogue_permissions
from governance.notifications import notify

from ..models import LinkStatus, Node, NodeDataset, NodeStatus
from ..permissions import can_register_node

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

    from catalogue.models import Dataset


def _payload(link: NodeDataset) -> dict:
    return {"dataset": link.dataset_id, "node": link.node_id, "node_ref": link.node.ref}


@write_transaction
def node_dataset_propose(*, actor: AbstractBaseUser, dataset: Dataset, node: Node) -> NodeDataset:
    """A data steward of the publisher asks that one of the publisher's approved nodes serve the
    dataset; the node's site admins are told (in-app and by e-mail) and confirm on the node page.
    Proposing again, or a node that already serves it, changes nothing."""
    if not catalogue_permissions.allows(dataset, actor, "edit"):
        raise PermissionDenied("Only data stewards of the dataset's publisher choose its node.")
    if node.organisation_id != dataset.publisher_id or node.status != NodeStatus.APPROVED:
        raise ValidationError({"node": ["Choose one of your hospital's approved nodes."]})
    link, created = NodeDataset.objects.get_or_create(
        node=node,
        dataset=dataset,
        defaults={"status": LinkStatus.PROPOSED, "proposed_by": actor},
    )
    if not created:
        return link
    if can_register_node(actor, node.organisation):  # a steward who is also the site admin
        return _confirm(link, actor=actor, proposed=True)
    record(
        "node.dataset_proposed",
        actor=actor,
        obj=node,
        organisation=node.organisation,
        payload=_payload(link),
    )
    notify(
        "node.dataset_proposed",
        actor=actor,
        url=reverse("federation:node", args=[node.pk]),
        custodian=node.organisation,
        node=node.name,
        dataset=dataset.title,
        body=f"{actor.get_full_name() or actor.get_username()} chose this node for the dataset. "
        "Researchers can analyse it once you confirm.",
    )
    return link


def _confirm(link: NodeDataset, *, actor: AbstractBaseUser, proposed: bool = False) -> NodeDataset:
    link.status = LinkStatus.CONFIRMED
    link.confirmed_by = actor
    link.confirmed_at = timezone.now()
    link.save(update_fields=["status", "confirmed_by", "confirmed_at"])
    if proposed:
        record(
            "node.dataset_proposed",
            actor=actor,
            obj=link.node,
            organisation=link.node.organisation,
            payload=_payload(link),
        )
    record(
        "node.dataset_confirmed",
        actor=actor,
        obj=link.node,
        organisation=link.node.organisation,
        payload=_payload(link),
    )
    notify(
        "node.dataset_confirmed",
        actor=actor,
        url=reverse("catalogue:detail", args=[link.dataset.identifier]),
        custodian=link.node.organisation,
        node=link.node.name,
        dataset=link.dataset.title,
    )
    return link


@write_transaction
def node_dataset_confirm(*, actor: AbstractBaseUser, link: NodeDataset) -> NodeDataset:
    """The node's site admin confirms a proposed link: the dataset can now be analysed."""
    if not can_register_node(actor, link.node.organisation):
        raise PermissionDenied("Only the node's site administrators confirm what it serves.")
    link = (
        NodeDataset.objects.select_for_update().select_related("node__organisation").get(pk=link.pk)
    )
    if link.status == LinkStatus.CONFIRMED:
        return link
    if link.node.status != NodeStatus.APPROVED:
        raise ValidationError("Only an approved node can serve datasets.")
    return _confirm(link, actor=actor)


def confirm_ticked(*, actor: AbstractBaseUser, links: list[NodeDataset]) -> None:
    """Proposed links the site admin ticked in the node's dataset form (inside its transaction)."""
    for link in links:
        if link.status == LinkStatus.PROPOSED:
            _confirm(link, actor=actor)
