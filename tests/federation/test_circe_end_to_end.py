"""An ATLAS/Circe cohort through the researchers' API to pooled Kaplan-Meier, cohort counts with
attrition and logistic regression, against in-process node agents on synthetic OMOP databases."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from federation.models import Analysis, AnalysisStatus, NodeDataset
from optima_node.db import connect
from tests.federation.factories import (
    EXACT,
    SimNode,
    grant_federated_analytics,
    make_dataset,
    make_node,
)
from tests.node.circe_definitions import cohort, concept, crit, cset, rule

LUNG_CANCER = 4115276
# The lung cancer phenotype's entry (tests/node/circe_definitions.py) with an age rule.
DEFINITION = cohort(
    [cset(0, "Lung cancer", concept(LUNG_CANCER, "Malignant tumor of lung", descendants=True))],
    [crit("ConditionOccurrence", 0)],
    prior=365,
    rules=[rule("aged 50 or more", demographics=[{"Age": {"Value": 50, "Op": "gte"}}])],
)


@pytest.fixture
def served(hospital_a, hospital_b, site_urls):
    sims, datasets = [], []
    for org, url in ((hospital_a, site_urls[0]), (hospital_b, site_urls[1])):
        dataset = make_dataset(org, f"Lung cohort {org.slug}")
        node, token = make_node(org, f"{org.slug}-omop")
        NodeDataset.objects.create(node=node, dataset=dataset)
        sim = SimNode(node, token, url, policy=EXACT)
        sim.heartbeat()
        sims.append(sim)
        datasets.append(dataset)
    yield datasets, sims
    for sim in sims:
        sim.close()


def reference(urls: list[str]) -> tuple[int, int]:
    """Persons with a lung cancer diagnosis after 365 days of observation, and those aged 50 or
    more at the first such diagnosis: plain SQL, independent of the compiler."""
    qualified = aged = 0
    for url in urls:
        db = connect(url)
        try:
            rows = db.execute(
                "SELECT c.person_id, MIN(date(c.condition_start_date)), p.year_of_birth "
                "FROM condition_occurrence c "
                "JOIN concept_ancestor a ON a.descendant_concept_id = c.condition_concept_id "
                "JOIN observation_period o ON o.person_id = c.person_id "
                "AND date(c.condition_start_date) >= date(o.observation_period_start_date, '+365 days') "
                "AND date(c.condition_start_date) <= date(o.observation_period_end_date) "
                "JOIN person p ON p.person_id = c.person_id "
                "WHERE a.ancestor_concept_id = ? GROUP BY c.person_id, p.year_of_birth",
                [LUNG_CANCER],
            )
        finally:
            db.close()
        qualified += len(rows)
        aged += sum(1 for _, first, born in rows if int(first[:4]) - born >= 50)
    return qualified, aged


def test_it_runs_a_circe_cohort_end_to_end(api_as, researcher, served, site_urls, run_nodes):
    datasets, sims = served
    for d in datasets:
        grant_federated_analytics(researcher, d)
    client = api_as(researcher)
    qualified, aged = reference(site_urls[:2])
    assert aged > 50

    def start(analysis_type: str, **params) -> Analysis:
        response = client.post(
            "/api/analyses/",
            {
                "type": analysis_type,
                "version": 1,
                "datasets": [d.pk for d in datasets],
                "params": {"cohort": {"circe": DEFINITION}, **params},
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
        return Analysis.objects.get(pk=response.json()["id"])

    km = start("kaplan_meier", time_unit_days=30, max_time_units=120)
    count = start("cohort_count")
    glm = start(
        "logistic_regression",
        outcome={"kind": "death_within_days", "days": 365},
        covariates=["age_at_index", "sex_male"],
    )
    run_nodes(sims)
    for analysis in (km, count, glm):
        analysis.refresh_from_db()
        assert analysis.status == AnalysisStatus.COMPLETED, analysis.reason
    (stratum,) = km.result["strata"]
    assert sum(r["n_events"] + r["n_censored"] for r in stratum["table"]) == aged
    assert count.result["total"] == aged
    assert [(r["rule"], r["count"]) for r in count.result["attrition"]] == [
        ("qualifying events", qualified),
        ("aged 50 or more", aged),
    ]
    assert glm.result["converged"] is True
    assert [c["term"] for c in glm.result["coefficients"]] == [
        "intercept",
        "age_at_index",
        "sex_male",
    ]
    assert glm.result["n"] <= aged

    browser = Client()
    browser.force_login(researcher)
    page = browser.get(reverse("federation:analysis", args=[count.pk])).content.decode()
    assert "Cohort definition (ATLAS/Circe)" in page
    assert "Lung cancer: Malignant tumor of lung (4115276) [with descendants]" in page
    assert "aged 50 or more" in page and "age at index ≥ 50" in page
    assert "Attrition of the ATLAS cohort" in page


def test_it_answers_400_naming_an_unsupported_construct(api_as, researcher, served):
    datasets, _ = served
    for d in datasets:
        grant_federated_analytics(researcher, d)
    definition = {**DEFINITION, "AdditionalCriteria": {"Type": "ALL", "CriteriaList": [{}]}}
    response = api_as(researcher).post(
        "/api/analyses/",
        {
            "type": "cohort_count",
            "version": 1,
            "datasets": [d.pk for d in datasets],
            "params": {"cohort": {"circe": definition}},
        },
        format="json",
    )
    assert response.status_code == 400
    assert "cohort.circe.AdditionalCriteria" in str(response.json())
