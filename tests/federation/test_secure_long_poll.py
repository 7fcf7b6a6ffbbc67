"""The peers long-poll of a secure round (GET /api/node/runs/<id>/secure/peers/?wait=S): held
while keys are missing, answered as soon as the round moves, bounded, and served only to the
node whose run it is and only while that node takes part in the round."""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from federation import services
from federation.models import MaskedVector, Run, SecureRound, SecureRoundStatus
from federation.services import secure as secure_service
from optima_node import secagg, secure_run
from optima_node.policy import Policy
from optima_node.schemas import RunAssignment
from tests.factories import OrganisationFactory
from tests.federation.factories import LUNG, SimNode, make_node

BY_SEX = {"cohort": {"condition_concept_ids": LUNG}, "stratify_by": ["sex"]}


@pytest.fixture
def secure_nodes(sim_nodes):
    for sim in sim_nodes:
        sim.agent.policy = Policy()
        assert sim.heartbeat().status_code == 200
        sim.node.refresh_from_db()
    return sim_nodes


@pytest.fixture
def analysis(researcher, secure_nodes):
    return services.analysis_start(
        researcher=researcher,
        analysis_type="cohort_count",
        version=1,
        params=BY_SEX,
        nodes=[s.node for s in secure_nodes],
    )


def begin(sim) -> RunAssignment:
    """The node claims its run and posts its key (as ``Agent.cycle`` does)."""
    assignment = RunAssignment.model_validate(sim.claim().json())
    sim.agent.secure_begin(assignment)
    return assignment


def peers(sim, run_id: int, wait: str | float):
    return sim.client.get(f"/api/node/runs/{run_id}/secure/peers/?wait={wait}")


@pytest.fixture
def sleeps(monkeypatch):
    """The long-poll's sleeps, recorded; ``then`` runs on the first one (another node acting
    while the request is held)."""
    calls: list[float] = []
    state = SimpleNamespace(then=None)

    def sleep(seconds: float) -> None:
        calls.append(seconds)
        if len(calls) == 1 and state.then is not None:
            state.then()
        time.sleep(min(seconds, 0.01))

    monkeypatch.setattr(
        secure_service, "time", SimpleNamespace(monotonic=time.monotonic, sleep=sleep)
    )
    state.calls = calls
    return state


def test_the_long_poll_answers_with_the_signed_peer_set_as_soon_as_the_last_key_is_in(
    secure_nodes, analysis, sleeps
):
    a, b, c = secure_nodes
    run_a = begin(a)
    begin(b)
    c_assignment = RunAssignment.model_validate(c.claim().json())
    sleeps.then = lambda: c.agent.secure_begin(c_assignment)

    started = time.monotonic()
    response = peers(a, run_a.run_id, 5)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == SecureRoundStatus.MASKING
    assert sorted(x["node_id"] for x in body["announcements"]) == sorted(
        s.node.pk for s in secure_nodes
    )
    assert all(x["signature"] for x in body["announcements"])
    assert set(body["identities"]) == {str(s.node.pk) for s in secure_nodes}
    assert len(sleeps.calls) == 1  # woke on the first check after c's key
    assert time.monotonic() - started < 2


def test_the_long_poll_holds_no_longer_than_asked_when_nothing_moves(secure_nodes, analysis):
    a = secure_nodes[0]
    run_a = begin(a)
    started = time.monotonic()
    response = peers(a, run_a.run_id, 0.3)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["status"] == SecureRoundStatus.COLLECTING_KEYS
    assert response.json()["announcements"] == []  # nothing relayed before every key is in
    assert 0.3 <= elapsed < 2


def test_a_round_already_masking_is_answered_without_waiting(secure_nodes, analysis, sleeps):
    runs = [begin(sim) for sim in secure_nodes]
    response = peers(secure_nodes[0], runs[0].run_id, 5)
    assert response.json()["status"] == SecureRoundStatus.MASKING
    assert sleeps.calls == []


def test_a_restarted_round_wakes_the_long_poll_with_the_new_round(secure_nodes, analysis, sleeps):
    a = secure_nodes[0]
    run_a = begin(a)
    first = SecureRound.objects.get(analysis=analysis)

    def restart() -> None:
        secure_service.round_close(first, SecureRoundStatus.ABANDONED, reason="test")
        secure_service.round_open(analysis, [s.node for s in secure_nodes])

    sleeps.then = restart
    response = peers(a, run_a.run_id, 5)
    assert response.status_code == 200
    assert response.json()["round_id"] != str(first.round_id)
    assert response.json()["status"] == SecureRoundStatus.COLLECTING_KEYS
    assert len(sleeps.calls) == 1


def test_another_nodes_long_poll_gets_404_at_once(secure_nodes, analysis, sleeps):
    a, b, _ = secure_nodes
    run_a = begin(a)
    begin(b)
    response = peers(b, run_a.run_id, 5)
    assert response.status_code == 404
    assert b"announcements" not in response.content
    assert sleeps.calls == []


def test_a_node_dropped_from_the_round_is_not_served_the_new_peer_set(
    researcher, secure_nodes, site_urls, sleeps, django_capture_on_commit_callbacks
):
    hospital_d = OrganisationFactory(name="Hospital D", slug="hospital-d", country="BE")
    node, token = make_node(hospital_d, "hospital-d-omop")
    d = SimNode(node, token, site_urls[1], policy=Policy())
    try:
        assert d.heartbeat().status_code == 200
        sims = [*secure_nodes, d]
        analysis = services.analysis_start(
            researcher=researcher,
            analysis_type="cohort_count",
            version=1,
            params=BY_SEX,
            nodes=[s.node for s in sims],
            min_nodes=3,
        )
        runs = [begin(sim) for sim in sims]
        # c's lease runs out after the key exchange: the round restarts with a, b and d.
        Run.objects.filter(pk=runs[2].run_id).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )
        with django_capture_on_commit_callbacks(execute=True):
            services.leases_expire()
        second = SecureRound.objects.filter(analysis=analysis).order_by("-pk").first()
        assert second.status == SecureRoundStatus.COLLECTING_KEYS
        assert secure_nodes[2].node not in second.participants.all()

        response = peers(secure_nodes[2], runs[2].run_id, 5)
        assert response.status_code in (409, 410)
        assert b"announcements" not in response.content
        assert sleeps.calls == []
        # A remaining node is held for the new round, as usual.
        response = peers(secure_nodes[0], runs[0].run_id, 0.05)
        assert response.json()["round_id"] == str(second.round_id)
    finally:
        d.close()


@pytest.mark.parametrize("wait", ["abc", "-1", "5.5", "nan", "inf"])
def test_a_bad_wait_answers_400_naming_the_field(secure_nodes, analysis, wait, sleeps):
    a = secure_nodes[0]
    run_a = begin(a)
    response = peers(a, run_a.run_id, wait)
    assert response.status_code == 400
    assert "wait" in response.json()["error"]["fields"]
    assert sleeps.calls == []


def test_a_peers_poll_writes_nothing_until_half_the_lease_is_spent(secure_nodes, analysis):
    a = secure_nodes[0]
    run_a = begin(a)
    run = Run.objects.get(pk=run_a.run_id)
    fresh = run.lease_expires_at
    assert peers(a, run.pk, 0).status_code == 200
    run.refresh_from_db()
    assert run.lease_expires_at == fresh  # a plain read

    half_spent = timezone.now() + timedelta(seconds=secure_service.lease_seconds() / 2 - 5)
    Run.objects.filter(pk=run.pk).update(lease_expires_at=half_spent)
    assert peers(a, run.pk, 0).status_code == 200
    run.refresh_from_db()
    assert run.lease_expires_at > half_spent  # renewed


def test_a_process_holds_no_more_long_polls_than_its_slots(secure_nodes, analysis, sleeps):
    a = secure_nodes[0]
    run_a = begin(a)
    taken = [
        secure_service._peers_wait_slots.acquire(blocking=False)
        for _ in range(secure_service.PEERS_WAIT_SLOTS)
    ]
    try:
        assert all(taken)
        response = peers(a, run_a.run_id, 5)
    finally:
        for _ in taken:
            secure_service._peers_wait_slots.release()
    assert response.json()["status"] == SecureRoundStatus.COLLECTING_KEYS
    assert sleeps.calls == []  # answered at once; the agent backs off as without the long-poll


def test_the_last_key_is_answered_with_the_peer_set_and_its_node_masks_at_once(
    secure_nodes, analysis
):
    a, b, c = secure_nodes
    for sim in (a, b):
        begin(sim)
    c_assignment = RunAssignment.model_validate(c.claim().json())
    answers = []
    post = c.agent.client._post

    def spy(path, body):
        status, payload = post(path, body)
        answers.append((path, status, payload))
        return status, payload

    c.agent.client._post = spy
    c.agent.secure_begin(c_assignment)

    (key_path, status, payload), (masked_path, masked_status, _) = answers
    assert key_path.endswith("/secure/key/") and status == 201
    assert payload["peers"]["status"] == SecureRoundStatus.MASKING
    assert len(payload["peers"]["announcements"]) == 3
    assert masked_path.endswith("/secure/masked/") and masked_status == 201
    assert MaskedVector.objects.filter(node=c.node).exists()


def test_a_key_that_does_not_complete_the_round_is_answered_without_peers(secure_nodes, analysis):
    a = secure_nodes[0]
    assignment = RunAssignment.model_validate(a.claim().json())
    work = secure_run.SecureWork(run=assignment, vector=[0], round_id=assignment.secure.round_id)
    work.key = secagg.new_round_key(
        a.agent.identity,
        analysis_id=analysis.pk,
        round_id=work.round_id,
        node_id=assignment.secure.node_id,
        vector_length=assignment.secure.vector_length,
    )
    response = a.client.post(
        f"/api/node/runs/{assignment.run_id}/secure/key/",
        secure_run.secure_key_post(work).model_dump(mode="json"),
        format="json",
    )
    assert response.status_code == 201
    assert "peers" not in response.json()


def test_a_server_that_serves_one_request_at_a_time_never_holds_a_poll(
    secure_nodes, analysis, sleeps
):
    """Under gunicorn's sync worker (``wsgi.multithread`` false) a held poll would take the whole
    process: a few nodes long-polling would stall the portal for everyone. Such a poll is answered
    at once, whatever ``wait`` asks."""
    a = secure_nodes[0]
    run_a = begin(a)
    single = APIClient(**{"wsgi.multithread": False})
    single.credentials(HTTP_AUTHORIZATION=f"Node {a.token}")
    started = time.monotonic()
    response = single.get(f"/api/node/runs/{run_a.run_id}/secure/peers/?wait=5")
    assert response.status_code == 200
    assert response.json()["status"] == SecureRoundStatus.COLLECTING_KEYS
    assert sleeps.calls == [] and time.monotonic() - started < 2


def test_a_held_poll_reads_the_round_often_while_it_is_young(secure_nodes, analysis, sleeps):
    a = secure_nodes[0]
    run_a = begin(a)
    peers(a, run_a.run_id, 0.3)
    assert sleeps.calls and max(sleeps.calls) <= secure_service.PEERS_WAIT_STEP


def test_a_round_waiting_for_minutes_is_read_less_often(secure_nodes, analysis, sleeps):
    """A round held up by a site's release review may wait for hours: its held polls back off to
    PEERS_WAIT_STEP_MAX between reads instead of reading every PEERS_WAIT_STEP."""
    a = secure_nodes[0]
    run_a = begin(a)
    old = timezone.now() - timedelta(seconds=secure_service.PEERS_WAIT_FAST + 60)
    SecureRound.objects.filter(analysis=analysis).update(created_at=old)
    peers(a, run_a.run_id, 0.5)
    assert sleeps.calls[0] == secure_service.PEERS_WAIT_STEP
    step, growth = secure_service.PEERS_WAIT_STEP, secure_service.PEERS_WAIT_GROWTH
    assert sleeps.calls[:3] == pytest.approx([step, step * growth, step * growth**2])
    assert max(sleeps.calls) <= secure_service.PEERS_WAIT_STEP_MAX
