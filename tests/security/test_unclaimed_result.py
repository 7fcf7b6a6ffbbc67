"""Probe finding: the portal accepted a result for a run the node never claimed and showed it.

Results are accepted only from the node holding the current claim (409 otherwise, nothing
stored), and the portal re-checks the released cells against the minimum cell count the node's
policy reported: a count below it is refused (422), audited, and never stored or shown.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from federation import services
from federation.models import Analysis, NodeDataset, Run, RunStatus
from optima_node.schemas import RunResult
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
    sim = SimNode(node, token, site_url)  # the agent's default policy: min_cell_count 5
    assert sim.heartbeat().status_code == 200
    yield sim
    sim.close()


@pytest.fixture
def analysis(sim, researcher, hospital_a):
    dataset = make_dataset(hospital_a)
    NodeDataset.objects.create(node=sim.node, dataset=dataset)
    grant_federated_analytics(researcher, dataset)
    return services.analysis_create(
        researcher=researcher,
        analysis_type="cohort_count",
        version=1,
        params={"cohort": {"condition_concept_ids": LUNG}, "stratify_by": ["sex"]},
        datasets=[dataset],
    )


def forged(run: Run, attempt: int | None = None, count: int = 1234) -> RunResult:
    """A well-formed result the node's token can post, without ever having claimed the run."""
    return RunResult(
        run_id=run.pk,
        attempt=run.attempt if attempt is None else attempt,
        status="completed",
        result={
            "stratify_by": ["sex"],
            "rows": [
                {"strata": {"sex": "female"}, "count": count, "suppressed": False},
                {"strata": {"sex": "male"}, "count": 250, "suppressed": False},
            ],
        },
        reason_code=None,
        hold_for_release=False,
        agent_version="0.0.0",
    )


def assert_nothing_stored(run: Run, status: str) -> None:
    run.refresh_from_db()
    assert run.status == status
    assert run.result is None and run.result_hash == "" and run.answered_at is None


def test_a_result_for_a_run_never_claimed_is_409_and_never_shown(sim, analysis, api_as, researcher):
    run = analysis.runs.get()
    assert run.status == RunStatus.DISPATCHED
    response = sim.post(forged(run))
    assert response.status_code == 409
    assert_nothing_stored(run, RunStatus.DISPATCHED)
    shown = api_as(researcher).get(f"/api/analyses/{analysis.pk}/").json()
    assert shown["result"] is None and "1234" not in str(shown)


def test_a_run_offered_again_after_its_lease_only_takes_the_new_claims_answer(sim, analysis):
    claim = sim.claim().json()
    later = timezone.now() + timedelta(seconds=services.lease_seconds() + 1)
    assert services.leases_expire(now=later) == 1  # dispatched again, attempt 2, unclaimed
    run = Run.objects.get(pk=claim["run_id"])
    assert run.status == RunStatus.DISPATCHED and run.attempt == 2
    # The current attempt number is guessable: without the claim it still must not answer.
    assert sim.post(forged(run, attempt=2)).status_code == 409
    assert_nothing_stored(run, RunStatus.DISPATCHED)


def test_a_released_cell_of_3_is_refused_audited_and_never_shown(
    sim, analysis, api_as, researcher, django_capture_on_commit_callbacks
):
    claim = sim.claim().json()
    run = Run.objects.get(pk=claim["run_id"])
    with django_capture_on_commit_callbacks(execute=True):
        response = sim.post(forged(run, count=3))
    assert response.status_code == 422
    assert "minimum cell count 5" in response.json()["error"]["message"]
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.result is None
    event = AuditEvent.objects.get(action="run.result_refused")
    assert event.payload["min_cell_count"] == 5 and event.payload["cells"] == ["rows[0]"]
    analysis = Analysis.objects.get(pk=analysis.pk)
    shown = api_as(researcher).get(f"/api/analyses/{analysis.pk}/").content.decode()
    assert '"count":3' not in shown.replace(" ", "")


def test_a_small_cell_is_refused_even_when_held_for_release(sim, analysis):
    claim = sim.claim().json()
    run = Run.objects.get(pk=claim["run_id"])
    held = forged(run, count=2).model_copy(update={"hold_for_release": True})
    assert sim.post(held).status_code == 422
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.result is None


def test_the_threshold_is_the_policy_the_node_reported(sim, analysis):
    from optima_node.policy import Policy

    sim.agent.policy = Policy(min_cell_count=10)
    assert sim.heartbeat().status_code == 200
    claim = sim.claim().json()
    run = Run.objects.get(pk=claim["run_id"])
    assert sim.post(forged(run, count=7)).status_code == 422
