"""What the federation offers the catalogue's pages through ``accounts.extensions`` (the catalogue
sits below the federation and may not import it): the nodes a steward may choose for a dataset,
the proposal that choice makes, and the dataset page's section on serving and analysing it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.template.loader import render_to_string
from django.urls import reverse

from catalogue import permissions as catalogue_permissions

from . import selectors, services
from .forms import ServeFromNodeForm
from .models import LinkStatus

if TYPE_CHECKING:
    from django.http import HttpRequest

    from catalogue.models import Dataset


def dataset_node_choices(*, organisation_ids) -> list[tuple[str, str]]:
    return [
        (node.ref, f"{node.name} ({node.organisation.name})")
        for node in selectors.node_choices(organisation_ids=organisation_ids)
    ]


def dataset_node_chosen(*, user, dataset: Dataset, node_ref: str) -> None:
    """Propose the link when ``node_ref`` names one of the publisher's approved nodes (older free
    text naming no node is left as it is)."""
    for node in selectors.node_choices(organisation_ids=[dataset.publisher_id]):
        if node.ref == node_ref:
            services.node_dataset_propose(actor=user, dataset=dataset, node=node)
            return


def dataset_page_section(*, request: HttpRequest, dataset: Dataset) -> str:
    user = request.user
    if not user.is_authenticated:
        return ""
    links = selectors.dataset_links(dataset=dataset)
    is_steward = catalogue_permissions.allows(dataset, user, "edit")
    form = None
    if is_steward:
        linked = {link.node_id for link in links}
        form = ServeFromNodeForm(
            nodes=selectors.node_choices(organisation_ids=[dataset.publisher_id]).exclude(
                pk__in=linked
            )
        )
    reasons = (
        selectors.not_analysable_reasons(user=user, dataset=dataset) if dataset.is_public else {}
    )
    return render_to_string(
        "federation/partials/dataset_serving.html",
        {
            "dataset": dataset,
            "links": links,
            "confirmed": LinkStatus.CONFIRMED,
            "is_steward": is_steward,
            "serve_form": form,
            "reasons": reasons,
            "request_access_url": reverse("governance:basket_add") + f"?dataset={dataset.pk}",
        },
        request=request,
    )
