"""The node protocol as the agent speaks it: auth, heartbeat, claim, idempotent results."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from federation import services
from federation.models import Liveness, Node, NodeHeartbeat, Run, RunStatus
from optima_node.schemas import RunResult
from tests.federation.factories import LUNG, SimNode, make_node

COUNT_PARAMS = {"cohort": {"condition_concept_ids": LUNG}, "stratify_by": ["sex"]}


@pytest.fixture
def node_a(hospital_a, site_urls):
    node, token = make_node(hospital_a, "a-omop")
    sim = SimNode(node, token, site_urls[0])
    yield sim
    sim.close()


def start(researcher, sims, analysis_type="cohort_count", params=None, **kwargs):
    return services.analysis_start(
        researcher=researcher,
        analysis_type=analysis_type,
        version=1,
        params=params or COUNT_PARAMS,
        nodes=[s.node for s in sims],
        **kwargs,
    )


def test_it_refuses_requests_without_a_valid_node_token(api, node_a):
    assert api.post("/api/node/heartbeat/", {}, format="json").status_code == 401
    api.credentials(HTTP_AUTHORIZATION="Node not-a-token")
    response = api.post("/api/node/runs/claim/", {}, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Node"


def test_a_revoked_node_is_told_to_stop(node_a, site_admin_a):
    services.node_revoke(actor=site_admin_a, node=node_a.node)
    response = node_a.heartbeat()
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_a_rotated_token_replaces_the_old_one(node_a, site_admin_a):
    new = services.node_rotate_token(actor=site_admin_a, node=node_a.node)
    assert node_a.heartbeat().status_code == 401
    node_a.client.credentials(HTTP_AUTHORIZATION=f"Node {new}")
    assert node_a.heartbeat().status_code == 200
    assert Node.objects.get(pk=node_a.node.pk).token_hash != new  # stored hashed


def test_heartbeat_stores_the_report_and_answers_the_poll_interval(node_a):
    response = node_a.heartbeat()
    assert response.status_code == 200
    body = response.json()
    assert body["node_id"] == node_a.node.pk
    assert body["poll_interval_seconds"] > 0
    node = Node.objects.get(pk=node_a.node.pk)
    assert node.agent_version and node.cdm_version == "5.4"
    assert node.dialect == "sqlite"
    assert node.person_count % 10 == 0 and node.person_count > 0
    assert {"type": "kaplan_meier", "version": 1} in node.capabilities
    assert node.liveness() == Liveness.ONLINE
    assert NodeHeartbeat.objects.filter(node=node).count() == 1
    assert AuditEvent.objects.filter(action="node.reported", object_id=str(node.pk)).exists()


def test_a_malformed_heartbeat_is_a_400_with_field_messages(node_a):
    response = node_a.client.post("/api/node/heartbeat/", {"agent_version": 1}, format="json")
    assert response.status_code == 400
    assert "capabilities" in response.json()["error"]["fields"]


def test_claim_answers_204_when_there_is_nothing(node_a):
    node_a.heartbeat()
    assert node_a.claim().status_code == 204


def test_a_run_is_claimed_once_and_its_result_is_idempotent(
    node_a, researcher, django_capture_on_commit_callbacks
):
    node_a.heartbeat()
    analysis = start(researcher, [node_a])
    claimed = node_a.claim()
    assert claimed.status_code == 200
    assignment = claimed.json()
    assert assignment["type"] == "cohort_count" and assignment["round"] == 1
    assert assignment["lease_seconds"] > 0
    assert node_a.claim().status_code == 204  # leased, not offered twice
    result = node_a.execute(assignment)
    with django_capture_on_commit_callbacks(execute=True):
        first = node_a.post(result)
    assert first.status_code == 201
    again = node_a.post(result)
    assert again.status_code == 200
    assert Run.objects.filter(analysis=analysis).count() == 1
    run = Run.objects.get(analysis=analysis)
    assert run.status == RunStatus.COMPLETED
    different = result.model_copy(
        update={"result": {**result.result, "rows": result.result["rows"][:1]}}
    )
    assert node_a.post(different).status_code == 409
    analysis.refresh_from_db()
    assert analysis.status == "completed"
    assert analysis.result["total"] > 0


def test_a_result_for_an_expired_or_cancelled_run_is_gone(node_a, researcher):
    node_a.heartbeat()
    analysis = start(researcher, [node_a])
    assignment = node_a.claim().json()
    services.analysis_cancel(actor=researcher, analysis=analysis)
    assert node_a.post(node_a.execute(assignment)).status_code == 410


def test_a_result_that_does_not_validate_fails_the_run(node_a, researcher):
    node_a.heartbeat()
    analysis = start(researcher, [node_a])
    assignment = node_a.claim().json()
    bogus = RunResult(
        run_id=assignment["run_id"],
        attempt=1,
        status="completed",
        result={"rows": [{"count": 3}]},
        reason_code=None,
        hold_for_release=False,
        agent_version="0.1.0",
    )
    response = node_a.post(bogus)
    assert response.status_code == 400
    run = Run.objects.get(analysis=analysis)
    assert run.status == RunStatus.FAILED
    assert run.reason.startswith("invalid result")


def test_a_node_cannot_post_for_another_nodes_run(node_a, researcher, hospital_b, site_urls):
    node_b, token_b = make_node(hospital_b, "b-omop")
    other = SimNode(node_b, token_b, site_urls[1])
    other.heartbeat()
    node_a.heartbeat()
    start(researcher, [other])
    assignment = other.claim().json()
    try:
        assert node_a.post(other.execute(assignment)).status_code == 404
    finally:
        other.close()


def test_a_run_is_never_dispatched_to_a_node_that_cannot_run_it(
    researcher, hospital_a, hospital_b, site_urls, django_capture_on_commit_callbacks
):
    able_node, able_token = make_node(hospital_a, "able")
    unable_node, unable_token = make_node(hospital_b, "unable")
    able = SimNode(able_node, able_token, site_urls[0])
    unable = SimNode(unable_node, unable_token, site_urls[1], capabilities=[("cohort_count", 1)])
    able.heartbeat()
    unable.heartbeat()
    with django_capture_on_commit_callbacks(execute=True):
        analysis = start(
            researcher,
            [able, unable],
            analysis_type="kaplan_meier",
            params={"cohort": {"condition_concept_ids": LUNG}},
            min_nodes=1,
        )
    assert unable.claim().status_code == 204
    run = Run.objects.get(analysis=analysis, node=unable_node)
    assert run.status == RunStatus.FAILED
    assert "cannot run kaplan_meier v1" in run.reason
    assert able.claim().status_code == 200
    able.close()
    unable.close()


def test_a_never_seen_node_gets_its_run_after_its_first_heartbeat(node_a, researcher):
    analysis = start(researcher, [node_a])
    run = Run.objects.get(analysis=analysis)
    assert run.status == RunStatus.PENDING
    node_a.heartbeat()
    run.refresh_from_db()
    assert run.status == RunStatus.DISPATCHED
    assert node_a.claim().status_code == 200


def test_a_lost_lease_offers_the_run_again_with_the_next_attempt(node_a, researcher):
    from datetime import timedelta

    from django.utils import timezone

    node_a.heartbeat()
    start(researcher, [node_a])
    first = node_a.claim().json()
    assert services.leases_expire(now=timezone.now() + timedelta(hours=1)) == 1
    second = node_a.claim().json()
    assert second["run_id"] == first["run_id"]
    assert second["attempt"] == first["attempt"] + 1


def test_a_late_result_after_the_deadline_is_gone(node_a, researcher):
    from datetime import timedelta

    from django.utils import timezone

    node_a.heartbeat()
    analysis = start(researcher, [node_a])
    assignment = node_a.claim().json()
    assert services.runs_expire_overdue(now=timezone.now() + timedelta(hours=25)) == 1
    response = node_a.post(node_a.execute(assignment))
    assert response.status_code == 410
    run = Run.objects.get(analysis=analysis)
    assert run.status == RunStatus.EXPIRED and run.result is None


def test_a_run_awaiting_approval_cannot_be_answered(researcher, hospital_a, site_urls):
    from optima_node.policy import Policy

    node, token = make_node(hospital_a, "gated")
    sim = SimNode(node, token, site_urls[0], policy=Policy(require_approval=True))
    sim.heartbeat()
    analysis = start(researcher, [sim])
    run = Run.objects.get(analysis=analysis)
    assert run.status == RunStatus.AWAITING_APPROVAL
    forged = {
        "run_id": run.pk,
        "attempt": 1,
        "type": "cohort_count",
        "version": 1,
        "analysis_id": analysis.pk,
        "params": analysis.params,
    }
    assert sim.post(sim.execute(forged)).status_code == 409
    sim.close()
