"""Nodes and simulated node agents for the federation tests."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rest_framework.test import APIClient

from federation import services
from federation.models import Node
from optima_node.agent import Agent
from optima_node.client import PortalClient
from optima_node.db import connect
from optima_node.policy import Policy
from optima_node.review import ReviewStore
from optima_node.schemas import CAPABILITIES, RunAssignment

LUNG = [4115276, 4110591]
PROSTATE = [4163261]
EXACT = Policy(min_cell_count=1, km_min_time_unit_days=1)


def make_node(organisation, name: str = "omop", *, actor=None) -> tuple[Node, str]:
    """An approved node and its raw token (through the operators' enrolment service)."""
    return services.node_enrol(actor=actor, organisation=organisation, name=name)


class TestClientPortal(PortalClient):
    """The agent's real portal client, over Django's test client instead of HTTP."""

    def __init__(self, client: APIClient) -> None:
        super().__init__("http://testserver", "unused")
        self.api = client

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        if method == "GET":
            response = self.api.get(path)
        else:
            response = self.api.post(path, body or {}, format="json")
        payload = response.json() if response.content else None
        return response.status_code, payload


@dataclass
class SimNode:
    """A node agent driven in-process: the agent's real heartbeat and execute, over the test client.

    ``capabilities`` narrows what the agent reports (to test capability-based dispatch).
    """

    node: Node
    token: str
    db_url: str
    policy: Policy = field(default_factory=Policy)
    capabilities: list[tuple[str, int]] | None = None

    def __post_init__(self) -> None:
        # As under gunicorn's gthread worker: a server that may hold a long-poll (sync workers never do).
        self.client = APIClient(**{"wsgi.multithread": True})
        self.client.credentials(HTTP_AUTHORIZATION=f"Node {self.token}")
        self.state_dir = tempfile.TemporaryDirectory(prefix="optima-node-")
        self.agent = Agent(
            client=TestClientPortal(self.client),
            db=connect(self.db_url),
            policy=self.policy,
            identity=Ed25519PrivateKey.generate(),
            reviews=ReviewStore(f"{self.state_dir.name}/review"),
        )
        self.posted: list[tuple[int, int]] = []

    def heartbeat(self):
        beat = self.agent.build_heartbeat()
        body = beat.model_dump(mode="json")
        if self.capabilities is not None:
            body["capabilities"] = [{"type": t, "version": v} for t, v in self.capabilities]
        return self.client.post("/api/node/heartbeat/", body, format="json")

    def claim(self):
        return self.client.post("/api/node/runs/claim/", {}, format="json")

    def post(self, result):
        body = result.model_dump(mode="json")
        return self.client.post(f"/api/node/runs/{result.run_id}/result/", body, format="json")

    def execute(self, assignment: dict):
        return self.agent.execute(RunAssignment.model_validate(assignment))

    def cycle(self) -> int:
        """Heartbeat, then claim, execute and post until the portal has nothing more (secure
        runs: the agent's own secure steps, as in ``Agent.cycle``)."""
        assert self.heartbeat().status_code == 200
        done = self.agent.secure_step()
        while True:
            response = self.claim()
            if response.status_code == 204:
                return done + self.agent.secure_step()
            assert response.status_code == 200, response.content
            assignment = RunAssignment.model_validate(response.json())
            if assignment.secure is not None:
                self.agent.secure_begin(assignment)
                done += 1
                continue
            result = self.execute(response.json())
            posted = self.post(result)
            self.posted.append((result.run_id, posted.status_code))
            done += 1

    def close(self) -> None:
        self.agent.db.close()
        self.state_dir.cleanup()


ALL_CAPABILITIES = list(CAPABILITIES)


def make_dataset(publisher, title: str = "Lung cancer cohort", *, published: bool = True):
    """A catalogue dataset row (the catalogue's own factories need its services), published
    unless asked otherwise: analyses name published datasets only."""
    from catalogue.models import Dataset

    dataset = Dataset.objects.create(
        publisher=publisher,
        title=title,
        description="Synthetic OMOP cohort.",
        access_modes=["federated_analytics"],
    )
    return publish(dataset) if published else dataset


def publish(dataset):
    """Freeze the dataset's working copy as its published version (no review in these tests)."""
    from catalogue.models import Dataset, Status
    from catalogue.services import version_create

    version = version_create(dataset=dataset, user=None, notes="")
    Dataset.objects.filter(pk=dataset.pk).update(current_version=version, status=Status.PUBLISHED)
    dataset.refresh_from_db()
    return dataset


def grant_federated_analytics(user, dataset) -> None:
    """What an approved access request gives: an active federated-analytics entitlement.

    Built as governance stores it (a request, an entitlement row and its object permission), so the real
    ``governance.selectors.missing_entitlements`` decides in these tests.
    """
    from datetime import timedelta

    from django.utils import timezone
    from guardian.shortcuts import assign_perm

    from accounts.models import Membership
    from governance.models import AccessRequest, Entitlement

    membership = Membership.objects.filter(user=user).select_related("organisation").first()
    request = AccessRequest.objects.create(
        applicant=user,
        organisation=membership.organisation,
        project_title="Federated outcomes study",
    )
    Entitlement.objects.create(
        holder=user,
        dataset=dataset,
        access_mode="federated_analytics",
        ends_at=timezone.now() + timedelta(days=90),
        request=request,
    )
    # ... and the django-guardian object permission governance keeps in step with it.
    assign_perm("catalogue.run_federated_analysis", user, dataset)
