"""The node agents' API: token authentication, per-node rate limits, request size limits, schema
validation of every result, replay protection (run id and attempt)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from federation import services
from federation.models import NodeDataset, NodeHeartbeat, Run, RunStatus
from tests.federation.factories import (
    LUNG,
    SimNode,
    grant_federated_analytics,
    make_dataset,
    make_node,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_throttle_counts")]


@pytest.fixture
def sim(hospital_a, site_url):
    node, token = make_node(hospital_a, "a-omop")
    sim = SimNode(node, token, site_url)
    yield sim
    sim.close()


@pytest.fixture
def claimed(sim, researcher, hospital_a, django_capture_on_commit_callbacks):
    """A cohort count dispatched to the node and claimed by it (attempt 1)."""
    dataset = make_dataset(hospital_a)
    NodeDataset.objects.create(node=sim.node, dataset=dataset)
    grant_federated_analytics(researcher, dataset)
    assert sim.heartbeat().status_code == 200
    services.analysis_create(
        researcher=researcher,
        analysis_type="cohort_count",
        version=1,
        params={"cohort": {"condition_concept_ids": LUNG}, "stratify_by": ["sex"]},
        datasets=[dataset],
    )
    response = sim.claim()
    assert response.status_code == 200, response.content
    return response.json()


def test_the_node_api_needs_a_node_token(sim, researcher):
    anonymous = APIClient()
    assert anonymous.post("/api/node/heartbeat/", {}, format="json").status_code == 401
    _token, raw = ApiToken.issue(user=researcher, name="personal")
    person = APIClient()
    person.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    assert person.post("/api/node/runs/claim/", {}, format="json").status_code == 401
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION="Node not-a-token")
    assert forged.post("/api/node/runs/claim/", {}, format="json").status_code == 401


def test_a_revoked_or_rotated_node_token_stops_working(sim, site_admin_a):
    assert sim.heartbeat().status_code == 200
    new_token = services.node_rotate_token(actor=site_admin_a, node=sim.node)
    assert sim.heartbeat().status_code == 401
    sim.client.credentials(HTTP_AUTHORIZATION=f"Node {new_token}")
    assert sim.heartbeat().status_code == 200
    services.node_revoke(actor=site_admin_a, node=sim.node)
    assert sim.heartbeat().status_code == 401


def test_each_node_has_its_own_rate_limit(sim, hospital_b, site_url, settings):
    settings.NODE_API_RATE = "3/min"
    for _ in range(3):
        assert sim.claim().status_code == 204
    limited = sim.claim()
    assert limited.status_code == 429
    assert limited.json()["error"]["status"] == 429 and "Retry-After" in limited
    other_node, token = make_node(hospital_b, "b-omop")
    other = SimNode(other_node, token, site_url)
    try:
        assert other.claim().status_code == 204  # another node's budget is its own
    finally:
        other.close()


def test_oversized_bodies_are_refused_before_they_are_read(sim, settings):
    settings.NODE_API_MAX_BYTES = 2048
    body = sim.agent.build_heartbeat().model_dump(mode="json")
    body["padding"] = "x" * 4096
    before = NodeHeartbeat.objects.count()
    response = sim.client.post("/api/node/heartbeat/", body, format="json")
    assert response.status_code == 413
    assert NodeHeartbeat.objects.count() == before


def test_a_malformed_envelope_is_400_and_changes_nothing(sim, claimed):
    run_id = claimed["run_id"]
    response = sim.client.post(
        f"/api/node/runs/{run_id}/result/",
        {"run_id": run_id, "attempt": 1, "status": "completed"},
        format="json",
    )
    assert response.status_code == 400
    assert Run.objects.get(pk=run_id).status == RunStatus.RUNNING


def test_a_result_that_does_not_match_the_analysis_schema_fails_the_run(sim, claimed):
    result = sim.execute(claimed)
    body = result.model_dump(mode="json")
    body["result"] = {"total": "many", "strata": "none"}
    response = sim.client.post(f"/api/node/runs/{result.run_id}/result/", body, format="json")
    assert response.status_code == 400
    run = Run.objects.get(pk=result.run_id)
    assert run.status == RunStatus.FAILED and run.result is None


def test_another_nodes_run_is_404(sim, claimed, hospital_b, site_url):
    other_node, token = make_node(hospital_b, "b-omop")
    other = SimNode(other_node, token, site_url)
    try:
        result = sim.execute(claimed)
        assert other.post(result).status_code == 404
    finally:
        other.close()


def test_a_stale_attempt_is_refused_and_a_result_counts_once(sim, claimed):
    stale = sim.execute(claimed)  # computed under attempt 1
    later = timezone.now() + timedelta(seconds=services.lease_seconds() + 1)
    assert services.leases_expire(now=later) == 1  # the node looked dead: offered again
    assert sim.post(stale).status_code == 409  # attempt 1 may no longer answer

    again = sim.claim().json()
    assert again["attempt"] == 2
    fresh = sim.execute(again)
    assert sim.post(fresh).status_code == 201
    assert sim.post(fresh).status_code == 200  # the same result again: stored once
    changed = fresh.model_copy(update={"result": {**fresh.result, "total": 1}})
    assert sim.post(changed).status_code == 409  # a different one: refused
    run = Run.objects.get(pk=fresh.run_id)
    assert run.status == RunStatus.COMPLETED and run.attempt == 2
