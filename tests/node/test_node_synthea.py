"""Real OMOP data from an outside ETL (OHDSI's Synthea27Nj): 28 persons, no cancers, no ancestry."""

from __future__ import annotations

from collections import Counter

from optima_node.analyses import REGISTRY
from optima_node.check import check_database
from optima_node.cli import main
from optima_node.db import connect
from optima_node.disclosure import Released, gate
from optima_node.policy import Policy
from optima_node.schemas import CohortCountParams


def test_check_reports_sensibly(synthea_url, capsys):
    report = check_database(connect(synthea_url))
    assert set(report.present_tables) == {
        "person",
        "observation_period",
        "condition_occurrence",
        "death",
        "concept_ancestor",
        "cdm_source",
    }
    assert not report.missing_required_tables and not report.missing_required_fields
    assert "visit_occurrence" in report.missing_tables
    assert main(["check", "--db", synthea_url]) == 0
    assert "result: OK" in capsys.readouterr().out


def test_cohort_count_on_a_common_condition(synthea_url):
    db = connect(synthea_url)
    (concept, persons), *_ = db.execute(
        "SELECT condition_concept_id, COUNT(DISTINCT person_id) AS n FROM condition_occurrence GROUP BY condition_concept_id ORDER BY n DESC LIMIT 1"
    )
    params = CohortCountParams.model_validate(
        {"cohort": {"condition_concept_ids": [concept]}, "stratify_by": ["sex", "age_group"]}
    )
    output = REGISTRY[("cohort_count", 1)](db, params, {}, Policy(), None)
    decision = gate("cohort_count", 1, output, Policy())
    assert isinstance(decision, Released)
    rows = decision.payload()["rows"]
    assert rows and any(r["suppressed"] for r in rows)
    assert all(r["count"] is None or r["count"] >= 5 for r in rows)

    # Against a direct count (concept_ancestor is empty there, so the id is used as given).
    exact = REGISTRY[("cohort_count", 1)](db, params, {}, Policy(min_cell_count=1), None)
    total = sum(r["count"] for r in exact["rows"])
    direct = db.execute(
        """SELECT COUNT(*) FROM (SELECT c.person_id, MIN(c.condition_start_date) AS idx FROM condition_occurrence c
           WHERE c.condition_concept_id = ? GROUP BY c.person_id) i
           WHERE EXISTS (SELECT 1 FROM observation_period o WHERE o.person_id = i.person_id
                         AND o.observation_period_start_date <= i.idx AND o.observation_period_end_date >= i.idx)""",
        (concept,),
    )[0][0]
    assert total == direct <= persons
    assert Counter(r["strata"]["sex"] for r in exact["rows"]).keys() <= {
        "male",
        "female",
        "unknown",
    }


def test_every_analysis_runs_without_crashing(synthea_url):
    db = connect(synthea_url)
    (concept,) = db.execute(
        "SELECT condition_concept_id FROM condition_occurrence GROUP BY condition_concept_id ORDER BY COUNT(*) DESC LIMIT 1"
    )[0]
    from optima_node.agent import Agent
    from optima_node.client import PortalClient
    from optima_node.schemas import RunAssignment

    agent = Agent(PortalClient("http://127.0.0.1:9", "t"), db, Policy())
    cohort = {"condition_concept_ids": [concept]}
    cases = {
        "cohort_count": {"cohort": cohort},
        "characterisation": {"cohort": cohort},
        "kaplan_meier": {"cohort": cohort, "stratify_by": "sex"},
        "logistic_regression": {
            "cohort": cohort,
            "outcome": {"kind": "death_within_days", "days": 365},
            "covariates": ["age_at_index"],
        },
    }
    for i, (analysis_type, params) in enumerate(cases.items(), start=1):
        run = RunAssignment(
            run_id=i, attempt=1, analysis_id=i, type=analysis_type, version=1, params=params
        )
        result = agent.execute(run)
        assert result.status in {"completed", "refused"}, (analysis_type, result)
    heartbeat = agent.build_heartbeat()
    assert heartbeat.person_count == 30 and heartbeat.cdm_version == "5.4"
