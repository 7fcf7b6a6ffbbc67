"""A Circe cohort through the agent's analyses, its attrition through the gate, and refusals that
name the construct the node does not support."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from optima_node.analyses import REGISTRY
from optima_node.circe.build import build_circe_cohort
from optima_node.circe.describe import describe
from optima_node.circe.model import CohortExpression
from optima_node.cohort import build_cohort
from optima_node.db import connect
from optima_node.disclosure import Refused, Released, gate
from optima_node.policy import Policy
from optima_node.schemas import PARAMS_MODELS, CohortSpec, ReasonCode
from tests.node.circe_definitions import DEFINITIONS

BREAST = 4112853
BREAST_FIRST_DIAGNOSIS = {
    "ConceptSets": [
        {
            "id": 0,
            "name": "Breast cancer",
            "expression": {
                "items": [{"concept": {"CONCEPT_ID": BREAST}, "includeDescendants": True}]
            },
        }
    ],
    "PrimaryCriteria": {
        "CriteriaList": [{"ConditionOccurrence": {"CodesetId": 0}}],
        "ObservationWindow": {"PriorDays": 0, "PostDays": 0},
        "PrimaryCriteriaLimit": {"Type": "First"},
    },
    "QualifiedLimit": {"Type": "First"},
    "ExpressionLimit": {"Type": "First"},
    "InclusionRules": [
        {
            "name": "women",
            "expression": {
                "Type": "ALL",
                "DemographicCriteriaList": [{"Gender": [{"CONCEPT_ID": 8532}]}],
            },
        },
        {
            "name": "aged 90 or more",
            "expression": {
                "Type": "ALL",
                "DemographicCriteriaList": [{"Age": {"Value": 90, "Op": "gte"}}],
            },
        },
    ],
}


def run(url, analysis_type, params, policy):
    db = connect(url)
    try:
        model = PARAMS_MODELS[(analysis_type, 1)].model_validate(params)
        return REGISTRY[(analysis_type, 1)](db, model, {}, policy, None)
    finally:
        db.close()


def test_it_agrees_with_the_form_cohort_where_the_rules_agree(synth_url):
    """The form takes each person's first diagnosis and needs it inside an observation period;
    Circe takes the first diagnosis inside one. Persons in both get the same index and follow-up;
    Circe's extra persons are exactly those whose very first diagnosis lies outside observation."""
    circe = copy.deepcopy(BREAST_FIRST_DIAGNOSIS)
    circe["InclusionRules"] = circe["InclusionRules"][:1]
    db = connect(synth_url)
    try:
        form = build_cohort(db, CohortSpec(condition_concept_ids=[BREAST], sex="female"))
        built = build_circe_cohort(db, CohortExpression.model_validate(circe)).cohort
        first_outside = {
            int(r[0])
            for r in db.execute(
                "SELECT f.person_id FROM (SELECT person_id, MIN(condition_start_date) AS d "
                "FROM condition_occurrence c JOIN concept_ancestor a "
                "ON a.descendant_concept_id = c.condition_concept_id "
                "WHERE a.ancestor_concept_id = ? GROUP BY person_id) f "
                "WHERE NOT EXISTS (SELECT 1 FROM observation_period o WHERE o.person_id = f.person_id "
                "AND f.d BETWEEN o.observation_period_start_date AND o.observation_period_end_date)",
                [BREAST],
            )
        }
    finally:
        db.close()
    by_form = dict(
        zip(
            form.person_id.tolist(), zip(form.index_date, form.period_end, strict=True), strict=True
        )
    )
    by_circe = dict(
        zip(
            built.person_id.tolist(),
            zip(built.index_date, built.period_end, strict=True),
            strict=True,
        )
    )
    assert set(by_form) <= set(by_circe)
    assert all(by_circe[p] == by_form[p] for p in by_form)
    extra = set(by_circe) - set(by_form)
    assert extra and extra <= first_outside
    assert len(by_form) > 100


def test_it_releases_attrition_under_the_small_cell_rule(synth_url):
    params = {"cohort": {"circe": BREAST_FIRST_DIAGNOSIS}}
    exact = run(synth_url, "cohort_count", params, Policy(min_cell_count=1))["attrition"]
    assert [r["strata"]["rule"] for r in exact] == ["qualifying events", "women", "aged 90 or more"]
    counts = [r["count"] for r in exact]
    assert counts[0] >= counts[1] >= counts[2] > 0
    k = counts[2] + 1  # the last step is a small cell at this threshold
    out = run(synth_url, "cohort_count", params, Policy(min_cell_count=k))
    assert out["attrition"][2] == {"strata": exact[2]["strata"], "count": None, "suppressed": True}
    assert isinstance(gate("cohort_count", 1, out, Policy(min_cell_count=k)), Released)
    # A result that leaks the small attrition cell does not pass the gate.
    leaky = copy.deepcopy(out)
    leaky["attrition"][2] = exact[2]
    assert gate("cohort_count", 1, leaky, Policy(min_cell_count=k)) == Refused(
        ReasonCode.UNVERIFIABLE_OUTPUT
    )


def test_it_suppresses_a_step_that_would_reveal_a_few_excluded_persons(synth_url):
    params = {"cohort": {"circe": BREAST_FIRST_DIAGNOSIS}}
    counts = [
        r["count"]
        for r in run(synth_url, "cohort_count", params, Policy(min_cell_count=1))["attrition"]
    ]
    dropped = counts[0] - counts[1]  # the men among the breast cancer patients
    assert 0 < dropped < counts[1]
    k = dropped + 1
    out = run(synth_url, "cohort_count", params, Policy(min_cell_count=k))
    assert out["attrition"][0]["count"] == counts[0]
    assert out["attrition"][1]["suppressed"] is True  # women = all − (a few men): not released
    assert isinstance(gate("cohort_count", 1, out, Policy(min_cell_count=k)), Released)
    leaky = copy.deepcopy(out)
    leaky["attrition"][1] = {
        "strata": leaky["attrition"][1]["strata"],
        "count": counts[1],
        "suppressed": False,
    }
    assert isinstance(gate("cohort_count", 1, leaky, Policy(min_cell_count=k)), Refused)


def test_it_runs_every_analysis_type(synth_url):
    cohort = {"circe": DEFINITIONS["condition_with_descendants"]}
    policy = Policy(min_cell_count=1)
    assert (
        run(synth_url, "characterisation", {"cohort": cohort}, policy)["person_count"]["count"] > 0
    )
    km = run(synth_url, "kaplan_meier", {"cohort": cohort}, policy)
    assert km["strata"][0]["rows"]
    glm = run(
        synth_url,
        "logistic_regression",
        {
            "cohort": cohort,
            "outcome": {"kind": "death_within_days", "days": 365},
            "covariates": ["sex_male"],
        },
        policy,
    )
    assert glm["n"] > 0


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            lambda d: d.update(AdditionalCriteria={"Type": "ALL", "CriteriaList": [{}]}),
            "AdditionalCriteria",
        ),
        (
            lambda d: d["PrimaryCriteria"]["CriteriaList"].append(
                {"VisitOccurrence": {"CodesetId": 0}}
            ),
            "VisitOccurrence",
        ),
        (
            lambda d: d["PrimaryCriteria"]["PrimaryCriteriaLimit"].update(Type="Last"),
            "PrimaryCriteriaLimit",
        ),
        (lambda d: d.update(EndStrategy={"CustomEra": {"DrugCodesetId": 0}}), "CustomEra"),
        (
            lambda d: d["PrimaryCriteria"]["CriteriaList"][0]["ConditionOccurrence"].update(
                ConditionType=[{"CONCEPT_ID": 1}]
            ),
            "ConditionType",
        ),
        (
            lambda d: d["InclusionRules"][0]["expression"]["DemographicCriteriaList"][0].update(
                Race=[{"CONCEPT_ID": 1}]
            ),
            "Race",
        ),
        (lambda d: d.update(CensorWindow={"StartDate": "2010-01-01"}), "CensorWindow"),
        (
            lambda d: d["PrimaryCriteria"]["CriteriaList"][0]["ConditionOccurrence"].update(
                CodesetId=7
            ),
            "concept set 7",
        ),
    ],
)
def test_it_refuses_what_it_does_not_support_naming_it(change, named):
    definition = copy.deepcopy(BREAST_FIRST_DIAGNOSIS)
    change(definition)
    with pytest.raises(ValidationError) as caught:
        CohortExpression.model_validate(definition)
    assert named in str(caught.value)


def test_it_ignores_only_what_atlas_writes_empty():
    definition = copy.deepcopy(BREAST_FIRST_DIAGNOSIS)
    definition.update(AdditionalCriteria=None, CensorWindow={}, DemographicCriteria=[])
    definition["PrimaryCriteria"]["CriteriaList"][0]["ConditionOccurrence"][
        "ConditionTypeExclude"
    ] = False
    assert CohortExpression.model_validate(definition).InclusionRules[0].name == "women"


def test_it_describes_a_definition_in_words():
    sections = dict(describe(CohortExpression.model_validate(DEFINITIONS["phenotype_lung_cancer"])))
    assert list(sections) == ["Concept sets", "Cohort entry", "Inclusion rules", "Cohort exit"]
    rules = "\n".join(sections["Inclusion rules"])
    assert "1. no lung cancer recorded before" in rules
    assert (
        "exactly 0 × condition occurrence of “Lung cancer” between any time before and 1 days before index"
        in rules
    )
    assert "any of:" in rules
    assert sections["Cohort exit"][:2] == ["end of continuous observation", "censored at death"]
