"""Secure aggregation end to end, in-process: three (or four) node agents with their real secure
steps on synthetic OMOP sites, the portal's node API and services, eager Celery. Pooled results
are checked against direct counts of the pooled persons and lifelines; the attack tests look for
a node's known cleartext contribution everywhere the portal keeps or sends anything."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

from federation import services
from federation.models import (
    AnalysisStatus,
    MaskedVector,
    Run,
    RunStatus,
    SecureKey,
    SecureRound,
    SecureRoundStatus,
)
from federation.services import secure as secure_service
from optima_node import secagg, secure_run
from optima_node.policy import Policy
from optima_node.schemas import AGE_GROUPS, RunAssignment
from tests.factories import OrganisationFactory
from tests.federation.factories import LUNG, SimNode, make_node
from tests.federation.test_stats import pooled_reference

lifelines = pytest.importorskip("lifelines")

BY_AGE = {"cohort": {"condition_concept_ids": LUNG}, "stratify_by": ["age_group", "sex"]}
KM = {"cohort": {"condition_concept_ids": LUNG}, "time_unit_days": 90, "max_time_units": 40}


@pytest.fixture
def secure_nodes(sim_nodes):
    """The three simulated nodes with the default site policy (min_cell_count 5, secure
    aggregation on), each having reported once (so the portal pinned its identity key)."""
    for sim in sim_nodes:
        sim.agent.policy = Policy()
        assert sim.heartbeat().status_code == 200
        sim.node.refresh_from_db()
    return sim_nodes


def start(researcher, sims, analysis_type, params, **kwargs):
    return services.analysis_start(
        researcher=researcher,
        analysis_type=analysis_type,
        version=1,
        params=params,
        nodes=[s.node for s in sims],
        **kwargs,
    )


def age_group(age: int) -> str:
    return AGE_GROUPS[min(max(age // 10, 0), len(AGE_GROUPS) - 1)]


def stratum(person: dict) -> tuple[str, str]:
    sex = {8507: "male", 8532: "female"}.get(person["gender"], "unknown")
    return age_group(person["age"]), sex


def cleartext_vector(sim, analysis, round_id: str | None = None):
    """What the node would mask for ``analysis``: its unsuppressed table in the layout."""
    run = analysis.runs.get(node=sim.node)
    assignment = RunAssignment(
        run_id=run.pk,
        attempt=run.attempt,
        analysis_id=analysis.pk,
        type=analysis.type,
        version=1,
        params=analysis.params,
        secure={
            "round_id": round_id or "x",
            "node_id": sim.node.pk,
            "vector_length": secure_service.vector_length(analysis.type, analysis.params),
        },
    )
    table = secure_run.raw_table(sim.agent.db, assignment, sim.agent.policy, {})
    return table, secure_run.encode(assignment, table).tolist()


# --- pooled results -----------------------------------------------------------------------------


def test_cohort_count_by_age_group_equals_the_pooled_count_and_suppresses_small_pooled_cells(
    researcher, secure_nodes, site_urls, run_nodes
):
    analysis = start(researcher, secure_nodes, "cohort_count", BY_AGE)
    assert analysis.aggregation == "secure"
    run_nodes(secure_nodes)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED, analysis.reason
    reference = Counter(stratum(r) for r in pooled_reference(site_urls, LUNG))
    released = {(row["age_group"], row["sex"]): row for row in analysis.result["rows"]}
    assert set(released) == set(reference)
    small = [g for g, n in reference.items() if n < 5]
    assert small, "the synthetic sites should give at least one pooled age group of 1-4"
    for group, n in reference.items():
        if n >= 5:
            assert released[group]["count"] == n and not released[group]["suppressed"]
        else:
            assert released[group]["count"] is None and released[group]["suppressed"]
        assert not released[group]["lower_bound"]
    assert analysis.result["aggregation"] == "secure"
    assert analysis.result["threshold"] == 5
    # Nothing per site was stored; the round's vectors are gone.
    assert all(
        run.result is None and run.status == RunStatus.COMPLETED for run in analysis.runs.all()
    )
    assert not MaskedVector.objects.exists() and not SecureKey.objects.exists()
    assert SecureRound.objects.get(analysis=analysis).status == SecureRoundStatus.SUMMED


def test_kaplan_meier_equals_lifelines_on_the_pooled_times_until_the_first_small_pooled_cell(
    researcher, secure_nodes, site_urls, run_nodes, client
):
    analysis = start(researcher, secure_nodes, "kaplan_meier", KM)
    run_nodes(secure_nodes)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED, analysis.reason
    durations, events = [], []
    for r in pooled_reference(site_urls, LUNG):
        t = r["days"] // 90
        durations.append(min(t, 40))
        events.append(bool(r["event"]) and t <= 40)
    fitter = lifelines.KaplanMeierFitter().fit(durations, events)
    pooled = Counter((d, e) for d, e in zip(durations, events, strict=True))
    first_small = min(
        (t for (t, _), n in pooled.items() if 0 < n < 5 or 0 < pooled[(t, not _)] < 5),
        default=None,
    )
    result = analysis.result
    (stratum,) = result["strata"]
    assert first_small is not None, "the synthetic pooled table should have a small cell"
    assert result["exact_until"] is not None and result["exact_until"] < first_small
    assert stratum["exact_until"] == result["exact_until"]
    assert [row["time"] for row in stratum["table"]]
    for row in stratum["table"]:
        assert row["time"] <= result["exact_until"]
        expected = fitter.survival_function_at_times(row["time"]).iloc[0]
        assert row["survival"] == pytest.approx(expected, abs=1e-10)
        for column in ("n_events", "n_censored"):
            assert not 0 < row[column] < 5, f"a released pooled cell of {row[column]}"
    assert result["aggregation"] == "secure"
    client.force_login(researcher)
    page = client.get(f"/federation/analyses/{analysis.pk}/").content.decode()
    assert "secure aggregation" in page
    assert f"exact until {result['exact_until']}" in page  # on the plot
    assert f"exact up to time {result['exact_until']}" in page  # in the caption


def test_two_nodes_fall_back_to_per_site_control_and_say_so(
    researcher, secure_nodes, run_nodes, client
):
    two = secure_nodes[:2]
    analysis = start(researcher, two, "cohort_count", BY_AGE)
    assert analysis.aggregation == "per_site"
    assert "2 nodes: secure aggregation needs at least 3" in analysis.aggregation_reason
    run_nodes(two)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED
    assert analysis.result["aggregation"] == "per_site"
    assert "needs at least 3" in analysis.result["aggregation_reason"]
    assert not SecureRound.objects.filter(analysis=analysis).exists()
    client.force_login(researcher)
    page = client.get(f"/federation/analyses/{analysis.pk}/").content.decode()
    assert "Pooled <strong>per site</strong>" in page and "needs at least 3" in page


def test_a_site_that_opts_out_or_asks_for_more_nodes_gets_per_site_pooling(
    researcher, secure_nodes
):
    secure_nodes[0].agent.policy = Policy(secure_aggregation=False)
    secure_nodes[0].heartbeat()
    analysis = start(researcher, secure_nodes, "cohort_count", BY_AGE)
    assert analysis.aggregation == "per_site"
    assert "off in the site policy" in analysis.aggregation_reason
    secure_nodes[0].agent.policy = Policy(secure_aggregation_min_nodes=4)
    secure_nodes[0].heartbeat()
    analysis = start(researcher, secure_nodes, "cohort_count", BY_AGE)
    assert "3 nodes: secure aggregation needs at least 4" in analysis.aggregation_reason


def test_logistic_regression_is_not_masked(researcher, secure_nodes):
    params = {
        "cohort": {"condition_concept_ids": LUNG},
        "outcome": {"kind": "death_within_days", "days": 365},
        "covariates": ["age_at_index"],
    }
    analysis = start(researcher, secure_nodes, "logistic_regression", params)
    assert analysis.aggregation == ""
    assert not SecureRound.objects.filter(analysis=analysis).exists()


# --- dropouts -----------------------------------------------------------------------------------


@pytest.fixture
def four_nodes(secure_nodes, site_urls):
    hospital_d = OrganisationFactory(name="Hospital D", slug="hospital-d", country="BE")
    node, token = make_node(hospital_d, "hospital-d-omop")
    extra = SimNode(node, token, site_urls[1], policy=Policy())
    assert extra.heartbeat().status_code == 200
    extra.node.refresh_from_db()
    yield [*secure_nodes, extra]
    extra.close()


def test_a_node_lost_after_the_key_exchange_restarts_the_round_without_it(
    researcher, four_nodes, site_urls, run_nodes, django_capture_on_commit_callbacks
):
    a, b, c, d = four_nodes
    analysis = start(researcher, four_nodes, "cohort_count", BY_AGE, min_nodes=3)
    with django_capture_on_commit_callbacks(execute=True):
        for sim in (a, b, c, d):
            sim.cycle()  # d's key completes the exchange; d masks at once
    first = SecureRound.objects.get(analysis=analysis)
    assert first.status == SecureRoundStatus.MASKING
    assert MaskedVector.objects.filter(round=first).exists()
    old_work = b.agent.secure_work[analysis.runs.get(node=b.node).pk]
    old_masked = secure_run.masked_post(old_work, [0] * first.vector_length)

    # c goes silent: its lease runs out after the key exchange.
    lost = analysis.runs.get(node=c.node)
    Run.objects.filter(pk=lost.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        services.leases_expire()
    first.refresh_from_db()
    assert first.status == SecureRoundStatus.ABANDONED and "hospital-c-omop" in first.reason
    assert not MaskedVector.objects.filter(round=first).exists()
    second = SecureRound.objects.filter(analysis=analysis).exclude(pk=first.pk).get()
    assert set(second.participants.all()) == {a.node, b.node, d.node}

    # A masked vector of the abandoned round is refused, never combined.
    response = b.client.post(
        f"/api/node/runs/{old_work.run.run_id}/secure/masked/",
        old_masked.model_dump(mode="json"),
        format="json",
    )
    assert response.status_code == 409
    assert not MaskedVector.objects.filter(node=b.node).exists()

    run_nodes([a, b, d])
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED, analysis.reason
    assert analysis.partial and analysis.result["partial"]
    used = [site_urls[0], site_urls[1], site_urls[1]]  # a, b and d's databases
    reference = Counter(stratum(r) for r in pooled_reference(used, LUNG))
    released = {(r["age_group"], r["sex"]): r["count"] for r in analysis.result["rows"]}
    assert {g: n for g, n in reference.items() if n >= 5} == {
        g: n for g, n in released.items() if n is not None
    }
    assert analysis.result["round_id"] == str(second.round_id)


def test_too_few_nodes_left_fail_the_analysis_naming_the_lost_node(
    researcher, secure_nodes, django_capture_on_commit_callbacks
):
    analysis = start(researcher, secure_nodes, "cohort_count", BY_AGE)
    with django_capture_on_commit_callbacks(execute=True):
        for sim in secure_nodes:
            sim.cycle()
        run = analysis.runs.get(node=secure_nodes[2].node)
        Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(1))
        services.leases_expire()
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.FAILED
    assert "hospital-c-omop" in analysis.reason and "at least 3" in analysis.reason
    assert not MaskedVector.objects.exists()


# --- the release gate at the node ----------------------------------------------------------------


def test_the_site_admin_reviews_the_contribution_at_the_node_before_it_is_masked(
    researcher, secure_nodes, run_nodes, site_admin_a
):
    a = secure_nodes[0]
    a.agent.policy = Policy(review_before_release=True)
    a.heartbeat()
    analysis = start(researcher, secure_nodes, "cohort_count", BY_AGE)
    run_nodes(secure_nodes)
    run = analysis.runs.get(node=a.node)
    assert run.status == RunStatus.AWAITING_RELEASE
    assert run.reason == "awaiting release at the node"
    with pytest.raises(ValidationError):
        services.run_release(actor=site_admin_a, run=run)
    (held,) = a.agent.reviews.all()
    assert held.status == "pending"
    table, _ = cleartext_vector(a, analysis)
    assert held.data["table"] == table  # the admin sees the node's own cleartext contribution
    a.agent.reviews.decide(run.pk, "released")
    run_nodes(secure_nodes)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED, analysis.reason
    assert a.agent.reviews.all() == []


def test_a_contribution_declined_at_the_node_refuses_the_run(researcher, secure_nodes, run_nodes):
    a = secure_nodes[0]
    a.agent.policy = Policy(review_before_release=True)
    a.heartbeat()
    analysis = start(researcher, secure_nodes, "cohort_count", BY_AGE)
    run_nodes(secure_nodes)
    a.agent.reviews.decide(analysis.runs.get(node=a.node).pk, "declined")
    run_nodes(secure_nodes)
    analysis.refresh_from_db()
    run = analysis.runs.get(node=a.node)
    assert run.status == RunStatus.REJECTED_BY_POLICY and run.reason == "release_declined"
    assert analysis.status == AnalysisStatus.FAILED  # 2 nodes left: no secure round


# --- attacks --------------------------------------------------------------------------------------


def _walk(value):
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def test_the_portal_keeps_and_sends_no_per_site_vector(
    researcher, secure_nodes, run_nodes, monkeypatch, caplog
):
    """The portal operator reads the database, the audit trail, the logs and the Celery messages
    looking for node A's cleartext contribution; none of them holds it."""
    from celery.app.task import Task

    sent: list[tuple] = []
    original = Task.delay

    def spy(self, *args, **kwargs):
        sent.append((self.name, args, kwargs))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Task, "delay", spy)
    caplog.set_level("DEBUG")
    analysis = start(researcher, secure_nodes, "cohort_count", BY_AGE)
    run_nodes(secure_nodes)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED
    table, vector = cleartext_vector(secure_nodes[0], analysis)
    mine = {(r["strata"]["age_group"], r["strata"]["sex"]): r["count"] for r in table["rows"]}
    pooled = {(r["age_group"], r["sex"]): r["count"] for r in analysis.result["rows"]}
    revealing = {k: n for k, n in mine.items() if n != pooled.get(k)}
    assert revealing  # A's cells differ from the pooled ones: finding one would be a leak

    out = io.StringIO()
    call_command("dumpdata", "federation", "accounts.auditevent", stdout=out)
    dump = json.loads(out.getvalue())
    assert json.dumps(vector) not in out.getvalue()
    for item in _walk(dump):
        if isinstance(item, list) and len(item) == len(vector):
            assert item != vector
        if isinstance(item, dict) and "count" in item:
            strata = item.get("strata") or item
            key = (strata.get("age_group"), strata.get("sex"))
            assert not (key in revealing and item["count"] == revealing[key]), item
    for name, args, kwargs in sent:
        assert all(isinstance(a, int) for a in args) and not kwargs, (name, args)
    assert sent
    assert json.dumps(vector) not in caplog.text and str(vector) not in caplog.text


def test_a_node_refuses_a_key_the_portal_substituted(researcher, secure_nodes):
    a, b, c = secure_nodes
    analysis = start(researcher, secure_nodes, "cohort_count", BY_AGE)
    for sim in (a, b, c):
        sim.heartbeat()
        assignment = RunAssignment.model_validate(sim.claim().json())
        sim.agent.secure_begin(assignment)
    secure_round = SecureRound.objects.get(analysis=analysis)
    assert secure_round.status == SecureRoundStatus.MASKING
    # The portal swaps b's announced key for one of its own (keeping b's signature).
    forged = secagg.new_round_key(
        Ed25519PrivateKey.generate(),
        analysis_id=analysis.pk,
        round_id=str(secure_round.round_id),
        node_id=b.node.pk,
        vector_length=secure_round.vector_length,
    )
    key = SecureKey.objects.get(round=secure_round, node=b.node)
    key.announcement = {**key.announcement, "public_key": forged.announcement["public_key"]}
    key.save()
    assert a.agent.secure_step() == 1
    run = analysis.runs.get(node=a.node)
    assert run.status == RunStatus.REJECTED_BY_POLICY
    assert run.reason == "secure_aggregation_refused"
    assert not MaskedVector.objects.filter(node=a.node).exists()


def test_a_per_site_result_posted_for_a_secure_run_is_refused_unread(researcher, secure_nodes):
    a = secure_nodes[0]
    start(researcher, secure_nodes, "cohort_count", BY_AGE)
    body = a.claim().json()
    result = a.execute({**body, "secure": None})
    assert result.status == "completed"
    response = a.post(result)
    assert response.status_code == 409
    run = Run.objects.get(pk=result.run_id)
    assert run.result is None and run.status == RunStatus.RUNNING


def test_a_changed_identity_key_keeps_the_node_out_of_secure_rounds_until_confirmed(
    researcher, secure_nodes, site_admin_a, client
):
    from accounts.models import AuditEvent

    a = secure_nodes[0]
    pinned = a.node.identity_key
    a.agent.identity = Ed25519PrivateKey.generate()
    a.heartbeat()
    a.node.refresh_from_db()
    assert a.node.identity_key == pinned and a.node.identity_in_doubt
    assert AuditEvent.objects.filter(action="node.identity_changed").count() == 1
    analysis = start(researcher, secure_nodes, "cohort_count", BY_AGE)
    assert analysis.aggregation == "per_site" and "identity key" in analysis.aggregation_reason
    client.force_login(site_admin_a)
    page = client.get(f"/federation/nodes/{a.node.pk}/").content.decode()
    assert a.node.identity_fingerprint() in page and a.node.reported_fingerprint in page
    client.post(f"/federation/nodes/{a.node.pk}/confirm-identity/")
    a.node.refresh_from_db()
    assert not a.node.identity_in_doubt and a.node.identity_key != pinned
    assert start(researcher, secure_nodes, "cohort_count", BY_AGE).aggregation == "secure"


def test_terms_of_use_of_ten_give_ten_at_the_node_and_at_the_portal(
    researcher, secure_nodes, run_nodes
):
    from federation.models import NodeDataset
    from governance.models import Entitlement
    from tests.federation.factories import grant_federated_analytics, make_dataset, publish

    dataset = make_dataset(secure_nodes[0].node.organisation, published=False)
    dataset.terms_of_use_text = "No cell below 10 individuals may be released."
    dataset.terms_min_cell_count = 10
    dataset.save()
    publish(dataset)
    grant_federated_analytics(researcher, dataset)
    # The entitlement rests on the terms that carry the number.
    Entitlement.objects.filter(dataset=dataset).update(terms=dataset.current_terms_of_use)
    assert dataset.published_min_cell_count == 10
    for sim in secure_nodes:
        NodeDataset.objects.create(node=sim.node, dataset=dataset)

    def create(sims):
        for other in {s.node for s in secure_nodes} - {s.node for s in sims}:
            NodeDataset.objects.filter(node=other).delete()
        return services.analysis_create(
            researcher=researcher,
            analysis_type="cohort_count",
            version=1,
            params=BY_AGE,
            datasets=[dataset],
        )

    secure = create(secure_nodes)
    assert secure.terms_min_cell_count == 10 and secure.aggregation == "secure"
    run_nodes(secure_nodes)
    secure.refresh_from_db()
    assert secure.result["threshold"] == 10
    assert all(not 0 < (r["count"] or 0) < 10 for r in secure.result["rows"])
    assert any(r["suppressed"] for r in secure.result["rows"])

    per_site = create(secure_nodes[:2])
    assert per_site.aggregation == "per_site"
    body = secure_nodes[0].claim().json()
    assert body["min_cell_count"] == 10
    assert secure_nodes[0].post(secure_nodes[0].execute(body)).status_code == 201
    run_nodes(secure_nodes[:2])
    for run in per_site.runs.all():
        assert run.result is not None
        assert all(row["count"] is None or row["count"] >= 10 for row in run.result["rows"])
