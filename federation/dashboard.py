"""Dashboard sections: a researcher's analyses, a site admin's gates and nodes, node approvals."""

from __future__ import annotations

from django.urls import reverse

from accounts.dashboard import Item, Section
from accounts.models import Role
from accounts.permissions import is_platform_admin, org_ids_with_role

from . import selectors
from .models import Liveness, Node, NodeStatus


def sections(user) -> list[Section]:
    if not getattr(user, "is_authenticated", False):
        return []
    result = []
    analyses = list(
        selectors.analysis_list(user=user).filter(researcher=user).order_by("-created_at")[:5]
    )
    if analyses:
        result.append(
            Section(
                "Your federated analyses",
                [
                    Item(
                        str(a),
                        reverse("federation:analysis", args=[a.pk]),
                        a.get_status_display() + (" (partial)" if a.partial else ""),
                    )
                    for a in analyses
                ],
                order=40,
            )
        )
    if org_ids_with_role(user, Role.SITE_ADMIN):
        queue = list(selectors.review_queue(user=user)[:10])
        result.append(
            Section(
                "Runs awaiting your decision",
                [
                    Item(
                        f"Run {run.pk}: {run.analysis.type} at {run.node.name}",
                        reverse("federation:review"),
                        run.get_status_display(),
                    )
                    for run in queue
                ],
                "No run waits for your approval or release.",
                order=30,
            )
        )
        proposals = list(selectors.proposed_links(user=user)[:10])
        if proposals:
            result.append(
                Section(
                    "Datasets awaiting your confirmation",
                    [
                        Item(
                            f"{link.dataset.title} at {link.node.name}",
                            reverse("federation:node", args=[link.node_id]),
                            "A data steward chose this node; confirm it on the node's page.",
                        )
                        for link in proposals
                    ],
                    order=30,
                )
            )
        troubled = [
            n
            for n in selectors.node_list(user=user, action="manage").filter(
                status=NodeStatus.APPROVED
            )
            if n.liveness() != Liveness.ONLINE or n.warnings()
        ]
        result.append(
            Section(
                "Your nodes",
                [
                    Item(
                        n.name,
                        reverse("federation:node", args=[n.pk]),
                        n.get_liveness_display() + ("; " + n.warnings()[0] if n.warnings() else ""),
                    )
                    for n in troubled
                ],
                "All your nodes are online.",
                order=35,
            )
        )
    if is_platform_admin(user):
        pending = Node.objects.filter(status=NodeStatus.PENDING).select_related("organisation")[:10]
        result.append(
            Section(
                "Nodes awaiting approval",
                [
                    Item(n.name, reverse("federation:node", args=[n.pk]), n.organisation.name)
                    for n in pending
                ],
                "No node waits for approval.",
                order=30,
            )
        )
    result.extend(_learning_sections(user))
    return result


def _learning_sections(user) -> list[Section]:
    """Federated learning: models awaiting the viewer's release decision."""
    from .flare import selectors as fl_selectors

    to_release = list(fl_selectors.release_queue(user=user)[:10])
    if not to_release:
        return []
    return [
        Section(
            "Models awaiting your release decision",
            [
                Item(
                    str(job.analysis),
                    reverse("federation:fl_job", args=[job.pk]),
                    ", ".join(job.sites),
                )
                for job in to_release
            ],
            order=30,
        )
    ]
