"""Circe cohort expressions for the equivalence tests, written as ATLAS exports them."""

from __future__ import annotations

from tests.node import circe_cdm as c


def concept(cid: int, name: str = "", **flags: bool) -> dict:
    item = {"concept": {"CONCEPT_ID": cid, "CONCEPT_NAME": name, "STANDARD_CONCEPT": "S"}}
    return {
        **item,
        "isExcluded": flags.get("excluded", False),
        "includeDescendants": flags.get("descendants", False),
        "includeMapped": flags.get("mapped", False),
    }


def cset(cid: int, name: str, *items: dict) -> dict:
    return {"id": cid, "name": name, "expression": {"items": list(items)}}


def crit(domain: str, codeset: int | None = None, **extra: object) -> dict:
    spec = {} if codeset is None else {"CodesetId": codeset}
    return {domain: {**spec, **extra}}


def corr(criteria: dict, kind: int, count: int, start=None, end=None, ignore_op=False) -> dict:
    def bound(days):
        return {"Coeff": 1} if days is None else {"Days": abs(days), "Coeff": -1 if days < 0 else 1}

    return {
        "Criteria": criteria,
        "StartWindow": {"Start": bound(start), "End": bound(end), "UseEventEnd": False},
        "RestrictVisit": False,
        "IgnoreObservationPeriod": ignore_op,
        "Occurrence": {"Type": kind, "Count": count, "IsDistinct": False},
    }


def rule(name: str, kind: str = "ALL", criteria=(), demographics=(), groups=(), count=None):
    group = {
        "Type": kind,
        "CriteriaList": list(criteria),
        "DemographicCriteriaList": list(demographics),
        "Groups": list(groups),
    }
    if count is not None:
        group["Count"] = count
    return {"name": name, "expression": group}


def cohort(sets, primary, *, prior=0, post=0, limit="First", **rest) -> dict:
    return {
        "cdmVersionRange": ">=5.0.0",
        "ConceptSets": sets,
        "PrimaryCriteria": {
            "CriteriaList": primary,
            "ObservationWindow": {"PriorDays": prior, "PostDays": post},
            "PrimaryCriteriaLimit": {"Type": limit},
        },
        "QualifiedLimit": {"Type": rest.pop("qualified", "First")},
        "ExpressionLimit": {"Type": rest.pop("expression_limit", "First")},
        "InclusionRules": rest.pop("rules", []),
        "EndStrategy": rest.pop("end", None),
        "CensoringCriteria": rest.pop("censor", []),
        "CollapseSettings": {"CollapseType": "ERA", "EraPad": rest.pop("pad", 0)},
        "CensorWindow": {},
        "AdditionalCriteria": None,
    }


AT_LEAST, AT_MOST, EXACTLY = 2, 1, 0
BREAST_SET = cset(
    0, "Breast cancer", concept(c.BREAST, "Malignant tumor of breast", descendants=True)
)
FEMALE = {"CONCEPT_ID": c.FEMALE, "CONCEPT_NAME": "FEMALE"}
MALE = {"CONCEPT_ID": c.MALE, "CONCEPT_NAME": "MALE"}

DEFINITIONS: dict[str, dict] = {
    "condition_with_descendants": cohort([BREAST_SET], [crit("ConditionOccurrence", 0)]),
    "condition_without_descendants": cohort(
        [cset(0, "Breast (parent only)", concept(c.BREAST))], [crit("ConditionOccurrence", 0)]
    ),
    "condition_excluding_a_descendant": cohort(
        [
            cset(
                0,
                "Lung cancer but small cell",
                concept(c.LUNG, descendants=True),
                concept(c.LUNG_SCLC, excluded=True, descendants=True),
            )
        ],
        [crit("ConditionOccurrence", 0)],
    ),
    "condition_with_mapped_source_codes": cohort(
        [cset(0, "Breast incl. ICD10", concept(c.BREAST, descendants=True, mapped=True))],
        [crit("ConditionOccurrence", 0)],
    ),
    "drug_all_events_as_eras": cohort(
        [cset(1, "Endocrine therapy", concept(c.TAMOXIFEN), concept(c.LETROZOLE))],
        [crit("DrugExposure", 1)],
        limit="All",
        qualified="All",
        expression_limit="All",
        end={"DateOffset": {"DateField": "EndDate", "Offset": 30}},
        pad=30,
    ),
    "procedure_with_observation_window": cohort(
        [cset(2, "Mastectomy", concept(c.MASTECTOMY))],
        [crit("ProcedureOccurrence", 2)],
        prior=365,
        post=30,
    ),
    "measurement_above_a_value": cohort(
        [cset(3, "PSA", concept(c.PSA))],
        [crit("Measurement", 3, ValueAsNumber={"Value": 4, "Op": "gt"})],
    ),
    "measurement_between_values_first_ever": cohort(
        [cset(3, "Haemoglobin", concept(c.HAEMOGLOBIN))],
        [crit("Measurement", 3, First=True, ValueAsNumber={"Value": 5, "Op": "bt", "Extent": 12})],
    ),
    "measurement_outside_a_range": cohort(
        [cset(3, "PSA", concept(c.PSA))],
        [crit("Measurement", 3, ValueAsNumber={"Value": 2, "Op": "!bt", "Extent": 15})],
        limit="All",
    ),
    "observation_any_event": cohort(
        [cset(4, "Smoker", concept(c.SMOKER))], [crit("Observation", 4)], limit="All"
    ),
    "death": cohort(
        [], [{"Death": {}}], end={"DateOffset": {"DateField": "StartDate", "Offset": 0}}
    ),
    "several_primary_criteria": cohort(
        [BREAST_SET, cset(2, "Mastectomy", concept(c.MASTECTOMY))],
        [crit("ConditionOccurrence", 0), crit("ProcedureOccurrence", 2)],
        prior=30,
    ),
    "age_and_gender": cohort(
        [BREAST_SET],
        [crit("ConditionOccurrence", 0)],
        rules=[
            rule("aged 50 or more", demographics=[{"Age": {"Value": 50, "Op": "gte"}}]),
            rule("women", demographics=[{"Gender": [FEMALE]}]),
        ],
    ),
    "correlated_at_least_and_at_most": cohort(
        [
            BREAST_SET,
            cset(1, "Endocrine", concept(c.TAMOXIFEN)),
            cset(2, "Mastectomy", concept(c.MASTECTOMY)),
        ],
        [crit("ConditionOccurrence", 0)],
        limit="All",
        qualified="All",
        rules=[
            rule(
                "treated within a year",
                criteria=[corr(crit("DrugExposure", 1), AT_LEAST, 1, 0, 365)],
            ),
            rule(
                "no surgery in the prior year",
                criteria=[corr(crit("ProcedureOccurrence", 2), AT_MOST, 0, -365, -1)],
            ),
        ],
    ),
    "exactly_one_prior_any_time_ignoring_periods": cohort(
        [cset(5, "Hypertension", concept(c.HYPERTENSION))],
        [crit("ConditionOccurrence", 5)],
        limit="All",
        qualified="All",
        expression_limit="All",
        rules=[
            rule(
                "one earlier",
                criteria=[corr(crit("ConditionOccurrence", 5), EXACTLY, 1, None, -1, True)],
            )
        ],
    ),
    "nested_any_and_at_least_groups": cohort(
        [
            BREAST_SET,
            cset(1, "Drugs", concept(c.TAMOXIFEN), concept(c.CISPLATIN)),
            cset(3, "PSA", concept(c.PSA)),
        ],
        [crit("ConditionOccurrence", 0)],
        rules=[
            rule(
                "any of",
                "ANY",
                criteria=[corr(crit("DrugExposure", 1), AT_LEAST, 2, -1000, 1000)],
                groups=[
                    rule(
                        "",
                        "AT_LEAST",
                        count=2,
                        criteria=[corr(crit("Measurement", 3), AT_LEAST, 1, -365, 365)],
                        demographics=[{"Age": {"Value": 40, "Op": "lt"}}, {"Gender": [MALE]}],
                    )["expression"]
                ],
            )
        ],
    ),
    "censored_by_death_and_drug": cohort(
        [BREAST_SET, cset(1, "Cisplatin", concept(c.CISPLATIN))],
        [crit("ConditionOccurrence", 0)],
        end={"DateOffset": {"DateField": "StartDate", "Offset": 730}},
        censor=[{"Death": {}}, crit("DrugExposure", 1)],
    ),
    "all_events_first_after_rules": cohort(
        [BREAST_SET, cset(3, "Haemoglobin", concept(c.HAEMOGLOBIN))],
        [crit("ConditionOccurrence", 0)],
        limit="All",
        qualified="All",
        expression_limit="First",
        rules=[
            rule(
                "a haemoglobin around index",
                criteria=[corr(crit("Measurement", 3), AT_LEAST, 1, -90, 90)],
            )
        ],
    ),
    # Modelled on the OHDSI Phenotype Library's cancer cohorts (github.com/OHDSI/PhenotypeLibrary,
    # inst/cohorts): first diagnosis of the malignant neoplasm with descendants, 365 days of prior
    # observation, a confirming second diagnosis or treatment, no earlier diagnosis, follow-up to the
    # end of continuous observation. Written here from that public structure, not copied.
    "phenotype_breast_cancer": cohort(
        [
            BREAST_SET,
            cset(1, "Breast cancer treatment", concept(c.TAMOXIFEN), concept(c.LETROZOLE)),
            cset(2, "Mastectomy", concept(c.MASTECTOMY)),
        ],
        [crit("ConditionOccurrence", 0, First=True)],
        prior=365,
        rules=[
            rule(
                "confirmed by a second diagnosis, surgery or endocrine therapy within a year",
                "ANY",
                criteria=[
                    corr(crit("ConditionOccurrence", 0), AT_LEAST, 1, 1, 365),
                    corr(crit("ProcedureOccurrence", 2), AT_LEAST, 1, -30, 365),
                    corr(crit("DrugExposure", 1), AT_LEAST, 1, 0, 365),
                ],
            ),
            rule("female", demographics=[{"Gender": [FEMALE]}]),
        ],
    ),
    "phenotype_prostate_cancer": cohort(
        [
            cset(0, "Prostate cancer", concept(c.PROSTATE, descendants=True)),
            cset(1, "PSA", concept(c.PSA)),
            cset(2, "Prostate cancer treatment", concept(c.PROSTATECTOMY), concept(c.ENZALUTAMIDE)),
        ],
        [crit("ConditionOccurrence", 0, First=True)],
        prior=365,
        rules=[
            rule("male", demographics=[{"Gender": [MALE]}]),
            rule(
                "aged 40 or more",
                demographics=[{"Age": {"Value": 40, "Op": "gte"}}],
            ),
            rule(
                "a PSA test in the year around diagnosis",
                criteria=[corr(crit("Measurement", 1), AT_LEAST, 1, -365, 365)],
            ),
        ],
    ),
    "phenotype_lung_cancer": cohort(
        [
            cset(0, "Lung cancer", concept(c.LUNG, descendants=True)),
            cset(1, "Lung cancer treatment", concept(c.CISPLATIN)),
            cset(2, "Lobectomy", concept(c.LOBECTOMY)),
        ],
        [crit("ConditionOccurrence", 0, First=True)],
        prior=365,
        rules=[
            rule(
                "no lung cancer recorded before",
                criteria=[corr(crit("ConditionOccurrence", 0), EXACTLY, 0, None, -1)],
            ),
            rule(
                "confirmed by treatment or a second diagnosis",
                "ANY",
                criteria=[
                    corr(crit("ConditionOccurrence", 0), AT_LEAST, 1, 1, 365),
                    corr(crit("DrugExposure", 1), AT_LEAST, 1, 0, 180),
                    corr(crit("ProcedureOccurrence", 2), AT_LEAST, 1, 0, 180),
                ],
            ),
        ],
        censor=[{"Death": {}}],
    ),
}
