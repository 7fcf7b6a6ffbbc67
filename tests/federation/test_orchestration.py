"""Analyses end to end in-process: portal services + the node agent's real analysis code on three
synthetic OMOP databases, with eager Celery. Pooled results are checked against independent
reference computations (direct SQL counts, lifelines, statsmodels)."""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from federation import services
from federation.models import AnalysisStatus, Run, RunStatus
from optima_node.policy import Policy
from optima_node.schemas import AnalysisType
from tests.federation.factories import LUNG, PROSTATE

sm = pytest.importorskip("statsmodels.api")
lifelines = pytest.importorskip("lifelines")

from tests.federation.test_stats import pooled_reference  # noqa: E402


def start(researcher, sims, analysis_type, params, **kwargs):
    return services.analysis_start(
        researcher=researcher,
        analysis_type=analysis_type,
        version=1,
        params=params,
        nodes=[s.node for s in sims],
        **kwargs,
    )


def test_cohort_count_pools_the_three_nodes_exactly(researcher, sim_nodes, site_urls, run_nodes):
    analysis = start(
        researcher,
        sim_nodes,
        "cohort_count",
        {"cohort": {"condition_concept_ids": LUNG}, "stratify_by": ["sex"]},
    )
    run_nodes(sim_nodes)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED
    assert not analysis.partial
    reference = Counter(
        "male" if r["gender"] == 8507 else "female" for r in pooled_reference(site_urls, LUNG)
    )
    rows = {row["sex"]: row for row in analysis.result["rows"]}
    assert {k: rows[k]["count"] for k in rows} == dict(reference)
    assert analysis.result["total"] == sum(reference.values())
    assert not any(row["lower_bound"] for row in analysis.result["rows"])
    assert len(analysis.result["nodes"]) == 3


def test_small_cells_are_suppressed_at_the_node_and_pooled_as_lower_bounds(
    researcher, sim_nodes, run_nodes
):
    for sim in sim_nodes:
        sim.agent.policy = Policy(min_cell_count=50)
    analysis = start(
        researcher,
        sim_nodes,
        "cohort_count",
        {"cohort": {"condition_concept_ids": LUNG}, "stratify_by": ["index_year", "sex"]},
    )
    run_nodes(sim_nodes)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED
    for run in analysis.runs.all():
        assert all(
            row["count"] is None or row["count"] == 0 or row["count"] >= 50
            for row in run.result["rows"]
        )
    assert any(row["lower_bound"] for row in analysis.result["rows"])


def test_characterisation_pools_counts(researcher, sim_nodes, site_urls, run_nodes):
    analysis = start(
        researcher, sim_nodes, "characterisation", {"cohort": {"condition_concept_ids": PROSTATE}}
    )
    run_nodes(sim_nodes)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED
    reference = pooled_reference(site_urls, PROSTATE)
    assert analysis.result["person_count"] == {"count": len(reference), "lower_bound": False}
    assert analysis.result["deaths"]["count"] == sum(r["event"] for r in reference)


def test_kaplan_meier_equals_lifelines_on_the_pooled_binned_times(
    researcher, sim_nodes, site_urls, run_nodes
):
    unit = 30
    analysis = start(
        researcher,
        sim_nodes,
        "kaplan_meier",
        {"cohort": {"condition_concept_ids": LUNG}, "time_unit_days": unit, "max_time_units": 120},
    )
    run_nodes(sim_nodes)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED, analysis.reason
    rows = pooled_reference(site_urls, LUNG)
    durations, events = [], []
    for r in rows:
        t = r["days"] // unit
        if t > 120:
            durations.append(120)
            events.append(False)
        else:
            durations.append(t)
            events.append(r["event"])
    fitter = lifelines.KaplanMeierFitter().fit(durations, events)
    (stratum,) = analysis.result["strata"]
    for row in stratum["table"]:
        expected = fitter.survival_function_at_times(row["time"]).iloc[0]
        assert row["survival"] == pytest.approx(expected, abs=1e-10)
    assert sum(r["n_events"] + r["n_censored"] for r in stratum["table"]) == len(rows)


def test_logistic_regression_rounds_converge_to_statsmodels(
    researcher, sim_nodes, site_urls, run_nodes
):
    days = 365
    covariates = ["age_at_index", "sex_male", "index_year"]
    analysis = start(
        researcher,
        sim_nodes,
        "logistic_regression",
        {
            "cohort": {"condition_concept_ids": LUNG},
            "outcome": {"kind": "death_within_days", "days": days},
            "covariates": covariates,
        },
    )
    run_nodes(sim_nodes)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED, analysis.reason
    result = analysis.result
    assert result["converged"] is True
    assert result["rounds"] == analysis.current_round > 2
    assert Run.objects.filter(analysis=analysis).count() == 3 * result["rounds"]

    rows = [
        r
        for r in pooled_reference(site_urls, LUNG)
        if (r["event"] and r["days"] <= days) or r["days"] >= days
    ]
    y = np.array([int(r["event"] and r["days"] <= days) for r in rows])
    x = np.column_stack(
        [
            np.ones(len(rows)),
            [r["age"] - 65 for r in rows],  # the nodes' fixed centring
            [r["male"] for r in rows],
            [r["year"] - 2015 for r in rows],
        ]
    )
    ref = sm.Logit(y, x.astype(float)).fit(disp=0, method="newton", tol=1e-12, maxiter=100)
    assert [c["term"] for c in result["coefficients"]] == ["intercept", *covariates]
    assert result["centring"] == {"age_at_index": 65.0, "index_year": 2015.0}
    for coef, est, se in zip(result["coefficients"], ref.params, ref.bse, strict=True):
        assert coef["estimate"] == pytest.approx(est, rel=1e-6, abs=1e-9)
        assert coef["std_error"] == pytest.approx(se, rel=1e-6)
        assert coef["odds_ratio"] == pytest.approx(math.exp(est), rel=1e-6)
    assert result["n"] == len(rows)
    assert sum(item["n"] for item in result["n_per_node"]) == len(rows)
    assert result["aic"] == pytest.approx(ref.aic, rel=1e-6)


def test_a_run_type_outside_the_sites_policy_is_rejected_by_policy(
    researcher, sim_nodes, run_nodes
):
    sim_nodes[2].agent.policy = Policy(
        allowed_analysis_types=[AnalysisType.COHORT_COUNT], min_cell_count=1
    )
    analysis = start(
        researcher,
        sim_nodes,
        "kaplan_meier",
        {"cohort": {"condition_concept_ids": LUNG}},
        min_nodes=2,
    )
    run_nodes(sim_nodes)
    analysis.refresh_from_db()
    refused = analysis.runs.get(node=sim_nodes[2].node)
    assert refused.status == RunStatus.REJECTED_BY_POLICY
    assert refused.reason == "policy_type_not_allowed"
    assert refused.result is None
    assert analysis.status == AnalysisStatus.COMPLETED
    assert analysis.partial is True
    assert analysis.result["partial"] is True
    assert analysis.result["missing_nodes"][0]["status"] == "rejected_by_policy"


def test_an_offline_node_expires_and_the_others_complete_a_partial_result(
    researcher, sim_nodes, run_nodes, django_capture_on_commit_callbacks
):
    online, offline = sim_nodes[:2], sim_nodes[2]
    offline.heartbeat()  # seen once, then silent
    analysis = start(
        researcher,
        sim_nodes,
        "cohort_count",
        {"cohort": {"condition_concept_ids": LUNG}},
        min_nodes=2,
    )
    run_nodes(online)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.RUNNING  # still waiting for the third node
    with django_capture_on_commit_callbacks(execute=True):
        assert services.runs_expire_overdue(now=timezone.now() + timedelta(hours=25)) == 1
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED
    assert analysis.partial
    late = analysis.runs.get(node=offline.node)
    assert late.status == RunStatus.EXPIRED
    assert "before the deadline" in late.reason
    # The node comes back and posts late: the run is gone.
    offline.heartbeat()
    assert offline.claim().status_code == 204


def test_too_few_nodes_fail_the_analysis_clearly(
    researcher, sim_nodes, run_nodes, django_capture_on_commit_callbacks
):
    analysis = start(
        researcher, sim_nodes, "cohort_count", {"cohort": {"condition_concept_ids": LUNG}}
    )
    run_nodes(sim_nodes[:1])
    with django_capture_on_commit_callbacks(execute=True):
        services.runs_expire_overdue(now=timezone.now() + timedelta(hours=25))
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.FAILED
    assert analysis.result is None
    assert "Only 1 of 3 nodes answered; at least 3 were required" in analysis.reason


def test_the_approval_gate_holds_runs_until_a_site_admin_approves(
    researcher, sim_nodes, run_nodes, site_admin_a, django_capture_on_commit_callbacks
):
    gated = sim_nodes[0]
    gated.agent.policy = Policy(min_cell_count=1, require_approval=True)
    for sim in sim_nodes:
        sim.heartbeat()
    analysis = start(
        researcher, sim_nodes, "cohort_count", {"cohort": {"condition_concept_ids": LUNG}}
    )
    run = analysis.runs.get(node=gated.node)
    assert run.status == RunStatus.AWAITING_APPROVAL
    assert gated.claim().status_code == 204
    run_nodes(sim_nodes)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.RUNNING
    services.run_approve(actor=site_admin_a, run=run)
    run_nodes(sim_nodes)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED
    assert analysis.runs.get(node=gated.node).approved_by == site_admin_a
    assert AuditEvent.objects.filter(action="run.awaiting_approval", object_id=str(run.pk)).exists()


def test_the_release_gate_shows_the_numbers_and_releases_them(
    researcher, sim_nodes, run_nodes, site_admin_a, outsider, django_capture_on_commit_callbacks
):
    gated = sim_nodes[0]
    gated.agent.policy = Policy(min_cell_count=1, review_before_release=True)
    analysis = start(
        researcher, sim_nodes, "cohort_count", {"cohort": {"condition_concept_ids": LUNG}}
    )
    run_nodes(sim_nodes)
    run = analysis.runs.get(node=gated.node)
    assert run.status == RunStatus.AWAITING_RELEASE
    assert run.result["rows"]  # the exact numbers that would leave
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.RUNNING
    with pytest.raises(Exception, match="site administrators"):
        services.run_release(actor=outsider, run=run)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_release(actor=site_admin_a, run=run)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED
    assert not analysis.partial


def test_a_withheld_release_drops_the_numbers(
    researcher, sim_nodes, run_nodes, site_admin_a, django_capture_on_commit_callbacks
):
    sim_nodes[0].agent.policy = Policy(min_cell_count=1, review_before_release=True)
    analysis = start(
        researcher,
        sim_nodes,
        "cohort_count",
        {"cohort": {"condition_concept_ids": LUNG}},
        min_nodes=2,
    )
    run_nodes(sim_nodes)
    run = analysis.runs.get(node=sim_nodes[0].node)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_decline(actor=site_admin_a, run=run, reason="not today")
    run.refresh_from_db()
    assert run.status == RunStatus.REJECTED_BY_POLICY and run.result is None
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED and analysis.partial


def test_cancel_ends_every_open_run(researcher, sim_nodes):
    analysis = start(
        researcher, sim_nodes, "cohort_count", {"cohort": {"condition_concept_ids": LUNG}}
    )
    services.analysis_cancel(actor=researcher, analysis=analysis)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.CANCELLED
    assert set(analysis.runs.values_list("status", flat=True)) == {RunStatus.CANCELLED}
    assert AuditEvent.objects.filter(action="analysis.cancelled").count() == 1


def test_advance_is_idempotent(researcher, sim_nodes, run_nodes):
    analysis = start(
        researcher, sim_nodes, "cohort_count", {"cohort": {"condition_concept_ids": LUNG}}
    )
    run_nodes(sim_nodes)
    events = AuditEvent.objects.count()
    for _ in range(3):
        services.analysis_advance(analysis_id=analysis.pk)
    assert AuditEvent.objects.count() == events


def test_a_steward_refreshes_the_catalogue_metadata_from_a_characterisation(
    client_as, steward_a, outsider, sim_nodes, site_urls, run_nodes
):
    from catalogue.models import Dataset
    from federation.models import NodeDataset
    from federation.services import typical_ages
    from tests.federation.factories import make_dataset

    dataset = make_dataset(steward_a.memberships.first().organisation)
    NodeDataset.objects.create(node=sim_nodes[0].node, dataset=dataset)
    assert (
        client_as(outsider).post(f"/federation/datasets/{dataset.pk}/refresh-metadata/").status_code
        == 404
    )
    client = client_as(steward_a)
    assert "Refresh metadata" in client.get("/federation/").content.decode()
    response = client.post(f"/federation/datasets/{dataset.pk}/refresh-metadata/")
    assert response.status_code == 302
    run_nodes(sim_nodes[:1])
    dataset = Dataset.objects.get(pk=dataset.pk)
    analysis = dataset.federated_analyses.get()
    assert analysis.status == AnalysisStatus.COMPLETED, analysis.reason
    assert dataset.number_of_individuals == analysis.result["person_count"]["count"] > 0
    assert (dataset.min_typical_age, dataset.max_typical_age) == typical_ages(
        analysis.result["by_age_group"]
    )
    assert "working copy was updated" in analysis.reason


def test_typical_ages_take_the_central_bands():
    from federation.services import typical_ages

    rows = [
        {"age_group": "30-39", "count": 5},
        {"age_group": "50-59", "count": 90},
        {"age_group": "90+", "count": 5},
    ]
    assert typical_ages(rows) == (30, 59)  # the 95th percentile falls in 50-59
    rows[2]["count"] = 10
    assert typical_ages(rows) == (50, 99)
    assert typical_ages([{"age_group": "60-69", "count": 0}]) is None


def test_a_regression_continues_without_a_node_that_refuses_and_is_labelled_partial(
    researcher, sim_nodes, run_nodes
):
    sim_nodes[2].agent.policy = Policy(
        allowed_analysis_types=[AnalysisType.COHORT_COUNT], min_cell_count=1
    )
    analysis = start(
        researcher,
        sim_nodes,
        "logistic_regression",
        {
            "cohort": {"condition_concept_ids": LUNG},
            "outcome": {"kind": "death_within_days", "days": 365},
            "covariates": ["age_at_index"],
        },
        min_nodes=2,
    )
    run_nodes(sim_nodes)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED, analysis.reason
    assert analysis.partial and analysis.result["converged"]
    assert [item["node"] for item in analysis.result["n_per_node"]] == [
        s.node.name for s in sim_nodes[:2]
    ]
    # Later rounds went only to the nodes that answered.
    assert not analysis.runs.filter(node=sim_nodes[2].node, round__gt=1).exists()
