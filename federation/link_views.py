"""Thin views for the node that serves a dataset: the steward proposes, the site admin confirms."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.permissions import get_for_user_or_404
from accounts.view_actions import perform, refused
from catalogue import selectors as catalogue_selectors

from . import selectors, services
from .forms import ServeFromNodeForm
from .models import NodeDataset


@login_required
@require_POST
def dataset_serve(request, pk: int):
    """A data steward of the publisher chooses one of its approved nodes for the dataset."""
    dataset = catalogue_selectors.dataset_get_for_user(user=request.user, pk=pk, action="edit")
    back = reverse("catalogue:detail", args=[dataset.identifier])
    form = ServeFromNodeForm(
        request.POST, nodes=selectors.node_choices(organisation_ids=[dataset.publisher_id])
    )
    if not form.is_valid():
        errors = [f"{form.fields[f].label}: {e}" for f, msgs in form.errors.items() for e in msgs]
        return refused(request, status=400, messages=errors, back=back)
    node = form.cleaned_data["node"]
    return perform(
        request,
        lambda: services.node_dataset_propose(actor=request.user, dataset=dataset, node=node),
        success_url=back,
        success_message=lambda link: (
            f"Node {node.name} serves the dataset."
            if link.status == "confirmed"
            else f"Node {node.name} is proposed; its site admin was asked to confirm."
        ),
        back=back,
    )


@login_required
@require_POST
def node_dataset_confirm(request, pk: int, link: int):
    """The node's site admin confirms a steward's proposal (others: 404)."""
    node = selectors.node_get_for_user(user=request.user, pk=pk, action="manage")
    found = get_for_user_or_404(
        NodeDataset.objects.filter(node=node).select_related("node__organisation", "dataset"),
        pk=link,
    )
    here = reverse("federation:node", args=[node.pk])
    return perform(
        request,
        lambda: services.node_dataset_confirm(actor=request.user, link=found),
        success_url=here,
        success_message=f"Node {node.name} now serves {found.dataset.title}.",
        back=here,
    )
