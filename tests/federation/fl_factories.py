"""Nodes, datasets and entitlements for the federated-learning tests."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from federation.models import Node, NodeDataset
from tests.federation.factories import make_node

FL_POLICY = {
    "require_approval": False,
    "review_before_release": False,
    "min_cell_count": 5,
    "allowed_types": [],
    "federated_learning": True,
    "allowed_model_templates": ["logistic_regression", "mlp"],
}

FL_PARAMS = {
    "cohort": {"condition_concept_ids": [443392]},
    "outcome": {"kind": "death_within_days", "days": 1825},
    "template": "logistic_regression",
    "rounds": 3,
    "local_epochs": 5,
    "learning_rate": 1.0,
    "min_sites": 2,
}


def make_fl_dataset(publisher, title: str = "Cancer cohort"):
    from catalogue.models import Dataset

    return Dataset.objects.create(
        publisher=publisher,
        title=title,
        description="Synthetic OMOP cohort.",
        access_modes=["federated_analytics", "federated_learning"],
    )


def make_fl_site(organisation, name: str, *, policy: dict | None = None, dataset=None) -> Node:
    """An approved node whose last heartbeat reported ``policy``, serving a dataset."""
    node, _token = make_node(organisation, name)
    Node.objects.filter(pk=node.pk).update(policy=FL_POLICY if policy is None else policy)
    node.refresh_from_db()
    dataset = dataset or make_fl_dataset(organisation, f"{organisation.name} cancer cohort")
    NodeDataset.objects.create(node=node, dataset=dataset)
    return node


def grant_federated_learning(user, dataset, *, days: int = 90) -> None:
    from accounts.models import Membership
    from governance.models import AccessRequest, Entitlement

    membership = Membership.objects.filter(user=user).select_related("organisation").first()
    request = AccessRequest.objects.create(
        applicant=user, organisation=membership.organisation, project_title="FL study"
    )
    Entitlement.objects.create(
        holder=user,
        dataset=dataset,
        access_mode="federated_learning",
        ends_at=timezone.now() + timedelta(days=days),
        request=request,
    )
