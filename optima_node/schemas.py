"""The wire format between node agents and the portal: one pydantic model per payload.

The portal imports this module, so it must stay importable with only pydantic installed (no numpy,
no database drivers, no Django). Every analysis result is identified by (type, version); the pair
is the contract, and :data:`RESULT_MODELS` maps it to the model the portal can expect.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from optima_node.circe.model import CohortExpression


class _Strict(BaseModel):
    # Unknown fields are an error in both directions: a typo must not silently widen a release.
    model_config = ConfigDict(extra="forbid")


class AnalysisType(StrEnum):
    COHORT_COUNT = "cohort_count"
    CHARACTERISATION = "characterisation"
    KAPLAN_MEIER = "kaplan_meier"
    LOGISTIC_REGRESSION = "logistic_regression"
    DATABASE_PROFILE = "database_profile"


class ReasonCode(StrEnum):
    """Why a node did not release statistics. A refusal carries nothing else."""

    POLICY_TYPE_NOT_ALLOWED = "policy_type_not_allowed"
    UNSUPPORTED_ANALYSIS = "unsupported_analysis"
    INVALID_PARAMETERS = "invalid_parameters"
    TOO_FEW_PERSONS = "too_few_persons"
    GLM_TOO_MANY_PARAMETERS = "glm_too_many_parameters"
    OUTCOME_LEVEL_TOO_SMALL = "outcome_level_too_small"
    # A level of a categorical covariate crossed with an outcome level holds 1 … k−1 persons.
    GLM_COVARIATE_CELL_TOO_SMALL = "glm_covariate_cell_too_small"
    # A continuous covariate takes one value only within an outcome level.
    GLM_COVARIATE_CONSTANT = "glm_covariate_constant"
    # The released persons differ from an earlier release's by 1 … k−1 (the node's ledger).
    DIFFERENCING_RISK = "differencing_risk"
    TIME_UNIT_BELOW_MINIMUM = "time_unit_below_minimum"
    UNVERIFIABLE_OUTPUT = "unverifiable_output"
    ANALYSIS_ERROR = "analysis_error"
    # Secure aggregation: the site admin declined the contribution at the node (release gate).
    RELEASE_DECLINED = "release_declined"
    # Secure aggregation: the node refused the round (policy off, too few or unverifiable peers).
    SECURE_AGGREGATION_REFUSED = "secure_aggregation_refused"


Sex = Literal["male", "female"]

# Parameter limits (docs/security.md "Input limits"); the portal re-exports them from accounts.limits.
CONCEPT_ID_MIN, CONCEPT_ID_MAX = 1, 2**31 - 1  # OMOP concept_id is a 32-bit signed integer
CONCEPT_IDS_MAX = 1_000  # concept ids in one cohort
AGE_MAX = 130
DATE_MIN, DATE_MAX = date(1900, 1, 1), date(2100, 12, 31)
TIME_UNIT_DAYS_MAX = 3_660
MAX_TIME_UNITS_MAX = 10_000
OUTCOME_DAYS_MAX = 36_600

ConceptId = Annotated[int, Field(ge=CONCEPT_ID_MIN, le=CONCEPT_ID_MAX)]
Age = Annotated[int, Field(ge=0, le=AGE_MAX)]
IndexDate = Annotated[date, Field(ge=DATE_MIN, le=DATE_MAX)]
AGE_GROUPS: tuple[str, ...] = (*(f"{lo}-{lo + 9}" for lo in range(0, 90, 10)), "90+")


# --- parameters -------------------------------------------------------------------------------


class CohortSpec(_Strict):
    """Who is in the cohort; see docs/node-agent.md "Cohort semantics" for the exact rules."""

    condition_concept_ids: Annotated[
        list[ConceptId], Field(min_length=1, max_length=CONCEPT_IDS_MAX)
    ]
    include_descendants: bool = True
    index_date_min: IndexDate | None = None
    index_date_max: IndexDate | None = None
    age_min: Age | None = None
    age_max: Age | None = None
    sex: Sex | None = None

    @model_validator(mode="after")
    def _ranges_are_ordered(self) -> CohortSpec:
        if (
            self.index_date_min
            and self.index_date_max
            and self.index_date_min > self.index_date_max
        ):
            raise ValueError("index_date_min is after index_date_max")
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise ValueError("age_min is above age_max")
        return self


class CirceCohortSpec(_Strict):
    """An ATLAS/Circe cohort expression instead of the form above (docs/cohorts.md)."""

    circe: CohortExpression


# Every agent analysis takes either form; federated learning keeps the form only.
AnyCohortSpec = CohortSpec | CirceCohortSpec

CountStratum = Literal["sex", "age_group", "index_year"]


class CohortCountParams(_Strict):
    cohort: AnyCohortSpec
    stratify_by: list[CountStratum] = Field(default_factory=list)

    @field_validator("stratify_by")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("stratify_by lists a variable twice")
        return value


class CharacterisationParams(_Strict):
    cohort: AnyCohortSpec


class KaplanMeierParams(_Strict):
    cohort: AnyCohortSpec
    time_unit_days: Annotated[int, Field(ge=1, le=TIME_UNIT_DAYS_MAX)] = 30
    max_time_units: Annotated[int, Field(ge=1, le=MAX_TIME_UNITS_MAX)] = 120
    stratify_by: Literal["none", "sex", "age_group"] = "none"


class DeathWithinDays(_Strict):
    kind: Literal["death_within_days"]
    days: Annotated[int, Field(ge=1, le=OUTCOME_DAYS_MAX)]


Covariate = Literal["age_at_index", "sex_male", "index_year"]
COVARIATE_ORDER: tuple[str, ...] = ("age_at_index", "sex_male", "index_year")
# How the disclosure checks treat each term: a 0/1 dummy (each level × outcome level is a cell of
# persons) or continuous (must vary within each outcome level).
BINARY_COVARIATES: frozenset[str] = frozenset({"sex_male"})
CONTINUOUS_COVARIATES: frozenset[str] = frozenset({"age_at_index", "index_year"})
# Continuous covariates enter the logistic regression minus a fixed centre, the same at every node
# (never a per-node mean), so the intercept is the log-odds of a woman aged 65 at index in 2015
# rather than at age 0 in year 0 (an odds ratio of ~1e-11). Slopes are unchanged by centring.
COVARIATE_CENTRES: dict[str, float] = {"age_at_index": 65.0, "index_year": 2015.0}


class LogisticRegressionParams(_Strict):
    cohort: AnyCohortSpec
    outcome: DeathWithinDays
    covariates: list[Covariate] = Field(default_factory=list)

    @field_validator("covariates")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("covariates lists a variable twice")
        return value

    @property
    def terms(self) -> list[str]:
        """Model terms in contract order: intercept first, then covariates in COVARIATE_ORDER."""
        return ["intercept", *(c for c in COVARIATE_ORDER if c in self.covariates)]


class LogisticRegressionState(_Strict):
    beta: list[float]

    @field_validator("beta")
    @classmethod
    def _finite(cls, value: list[float]) -> list[float]:
        if not all(math.isfinite(b) for b in value):
            raise ValueError("beta must be finite")
        return value


# --- federated learning (NVIDIA FLARE; see optima_node/flare and docs/federated-learning.md) ---

FlCovariate = Literal["age_at_index", "sex_male", "index_year", "stage"]
FL_COVARIATE_ORDER: tuple[str, ...] = ("age_at_index", "sex_male", "index_year", "stage")
ModelTemplate = Literal["logistic_regression", "mlp"]
MODEL_TEMPLATES: tuple[str, ...] = ("logistic_regression", "mlp")


class FederatedLearningParams(_Strict):
    """federated_learning v1: a model template trained with FedAvg on FLARE at the sites.

    Not an agent analysis (the agent never claims it): the FLARE client at each site reads the
    features through :mod:`optima_node.flare.features` with the same cohort semantics.
    """

    cohort: CohortSpec
    outcome: DeathWithinDays
    covariates: list[FlCovariate] = Field(default_factory=lambda: list(FL_COVARIATE_ORDER))
    template: ModelTemplate = "logistic_regression"
    hidden_units: Annotated[int, Field(ge=2, le=64)] = 8
    rounds: Annotated[int, Field(ge=1, le=100)] = 5
    local_epochs: Annotated[int, Field(ge=1, le=100)] = 5
    learning_rate: Annotated[float, Field(gt=0, le=10)] = 0.5
    batch_size: Annotated[int, Field(ge=0, le=100_000)] = 0  # 0: full batch
    l2: Annotated[float, Field(ge=0, le=10)] = 0.0
    min_sites: Annotated[int, Field(ge=1, le=50)] = 2
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0

    @field_validator("covariates")
    @classmethod
    def _unique_covariates(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("covariates lists a variable twice")
        if not value:
            raise ValueError("choose at least one covariate")
        return value

    @property
    def features(self) -> list[str]:
        """Model inputs in contract order (stage adds a "stage known" indicator)."""
        out: list[str] = []
        for c in FL_COVARIATE_ORDER:
            if c in self.covariates:
                out += ["stage", "stage_known"] if c == "stage" else [c]
        return out


FL_PARAMS_MODELS: dict[tuple[str, int], type[BaseModel]] = {
    ("federated_learning", 1): FederatedLearningParams,
}


# --- database profile (optima_node.profile; docs/node-agent.md "Database profile") --------------

# The portal's cancer indication hierarchy (catalogue.CancerIndication codes) with the OMOP condition
# concepts whose descendants define each; the portal's kind sends the same list.
PROFILE_CANCERS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("solid-tumours", (443392,)),  # Malignant neoplastic disease
    ("lung", (4115276, 4110591)),  # NSCLC, SCLC
    ("nsclc", (4115276,)),
    ("sclc", (4110591,)),
    ("breast", (4112853,)),
    ("prostate", (4163261,)),
)
ProfileCode = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[a-z0-9-]+$")]


class ProfileCancer(_Strict):
    code: ProfileCode
    concept_ids: Annotated[list[ConceptId], Field(min_length=1, max_length=CONCEPT_IDS_MAX)]


class DatabaseProfileParams(_Strict):
    cancers: Annotated[list[ProfileCancer], Field(max_length=100)] = Field(
        default_factory=lambda: [
            ProfileCancer(code=code, concept_ids=list(ids)) for code, ids in PROFILE_CANCERS
        ]
    )


PARAMS_MODELS: dict[tuple[str, int], type[BaseModel]] = {
    (AnalysisType.COHORT_COUNT, 1): CohortCountParams,
    (AnalysisType.CHARACTERISATION, 1): CharacterisationParams,
    (AnalysisType.KAPLAN_MEIER, 1): KaplanMeierParams,
    (AnalysisType.LOGISTIC_REGRESSION, 1): LogisticRegressionParams,
    (AnalysisType.DATABASE_PROFILE, 1): DatabaseProfileParams,
}


# --- results ----------------------------------------------------------------------------------

NonNegInt = Annotated[int, Field(ge=0)]
VersionTextShort = Annotated[str, Field(max_length=40)]


class CountRow(_Strict):
    """One released cell. A small count travels as ``count=None, suppressed=True``."""

    strata: dict[str, str] = Field(default_factory=dict)
    count: NonNegInt | None
    suppressed: bool = False

    @model_validator(mode="after")
    def _suppressed_means_no_count(self) -> CountRow:
        if self.suppressed != (self.count is None):
            raise ValueError("a row is either suppressed without a count or has a count")
        return self


class CohortCountResult(_Strict):
    stratify_by: list[CountStratum]
    rows: list[CountRow]
    # A Circe cohort's attrition: strata {"step": "0", "rule": name}, step 0 the qualified persons.
    attrition: list[CountRow] = Field(default_factory=list)


class CharacterisationResult(_Strict):
    person_count: CountRow
    deaths: CountRow
    by_sex: list[CountRow]
    by_age_group: list[CountRow]
    by_index_year: list[CountRow]
    by_follow_up: list[CountRow]


FOLLOW_UP_BANDS: tuple[str, ...] = ("<1y", "1-2y", "2-5y", "5y+")


class KmRow(_Strict):
    time: NonNegInt
    events: NonNegInt
    censored: NonNegInt


class KmStratum(_Strict):
    stratum: str
    rows: list[KmRow]


class KaplanMeierResult(_Strict):
    time_unit_days: int
    max_time_units: int
    stratify_by: Literal["none", "sex", "age_group"]
    strata: list[KmStratum]
    # Strata whose totals are themselves too small to release in any coarsening.
    suppressed_strata: list[str] = Field(default_factory=list)
    # True when at least one count was moved to another time unit by the disclosure rule.
    coarsened: bool = False


class LogisticRegressionResult(_Strict):
    terms: list[str]
    beta: list[float]
    n: NonNegInt
    information: list[list[float]]  # XᵀWX at beta, p×p
    score: list[float]  # Xᵀ(y − μ) at beta
    deviance: float
    # The centre the node subtracted from each continuous term (COVARIATE_CENTRES): the portal
    # refuses a round whose centres differ, so an agent that centres otherwise (or not at all)
    # cannot silently shift the pooled intercept.
    centres: dict[str, float]


# Clinical tables the profile counts, with the date column that tells how fresh each is.
PROFILE_TABLES: tuple[tuple[str, str], ...] = (
    ("person", ""),
    ("observation_period", "observation_period_end_date"),
    ("visit_occurrence", "visit_start_date"),
    ("condition_occurrence", "condition_start_date"),
    ("drug_exposure", "drug_exposure_start_date"),
    ("procedure_occurrence", "procedure_date"),
    ("device_exposure", "device_exposure_start_date"),
    ("measurement", "measurement_date"),
    ("observation", "observation_date"),
    ("specimen", "specimen_date"),
    ("note", "note_date"),
    ("episode", "episode_start_date"),
    ("death", "death_date"),
)
ProfileDate = Annotated[date, Field(ge=DATE_MIN, le=DATE_MAX)]


class ProfileTable(_Strict):
    """Records of one CDM table; the newest date travels only with a released count."""

    table: Annotated[str, Field(max_length=40)]
    records: CountRow
    newest_date: ProfileDate | None = None


class DatabaseProfileResult(_Strict):
    cdm_version: VersionTextShort | None = None
    vocabulary_version: Annotated[str, Field(max_length=80)] | None = None
    source_release_date: ProfileDate | None = None
    cdm_release_date: ProfileDate | None = None
    # Released counts are multiples of this (the site's policy, ``profile_rounding``).
    rounding: Annotated[int, Field(ge=1, le=1000)] = 1
    person_count: CountRow
    observation_start: ProfileDate | None = None
    observation_end: ProfileDate | None = None
    # Persons by sex × 10-year age band at the start of their first observation period.
    by_sex_age: list[CountRow]
    tables: list[ProfileTable]
    # Persons with a condition in each cancer's concept set (strata {"cancer": code}).
    cancers: list[CountRow]


RESULT_MODELS: dict[tuple[str, int], type[BaseModel]] = {
    (AnalysisType.COHORT_COUNT, 1): CohortCountResult,
    (AnalysisType.CHARACTERISATION, 1): CharacterisationResult,
    (AnalysisType.KAPLAN_MEIER, 1): KaplanMeierResult,
    (AnalysisType.LOGISTIC_REGRESSION, 1): LogisticRegressionResult,
    (AnalysisType.DATABASE_PROFILE, 1): DatabaseProfileResult,
}

CAPABILITIES: tuple[tuple[str, int], ...] = tuple(RESULT_MODELS)


# --- protocol payloads ------------------------------------------------------------------------


# What a node reports is stored in the portal's columns: strings fit them, numbers are bounded.
Name = Annotated[str, Field(max_length=40)]
VersionText = Annotated[str, Field(max_length=40)]
DbId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class Capability(_Strict):
    type: Name
    version: Annotated[int, Field(ge=1, le=100)]


class PolicySummary(_Strict):
    require_approval: bool
    review_before_release: bool
    min_cell_count: Annotated[int, Field(ge=0, le=1_000_000)]
    allowed_types: Annotated[list[Name], Field(max_length=100)]
    federated_learning: bool
    allowed_model_templates: Annotated[list[Name], Field(max_length=100)] = Field(
        default_factory=list
    )
    # Whose earlier releases the node's ledger compares a new release with (see Policy).
    differencing_scope: Literal["requester", "project", "all"] = "project"
    # Secure aggregation (docs/federation.md): whether the site takes part, and in rounds of how
    # many nodes at least. An agent that does not report these never gets a secure round.
    secure_aggregation: bool = False
    secure_aggregation_min_nodes: Annotated[int, Field(ge=3, le=1000)] = 3


# Base64 of a raw 32-byte key (X25519 or Ed25519): 44 characters.
PublicKeyText = Annotated[str, Field(min_length=44, max_length=44, pattern=r"^[A-Za-z0-9+/]+=$")]


ImageDigestText = Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]


class Heartbeat(_Strict):
    agent_version: VersionText
    capabilities: Annotated[list[Capability], Field(max_length=100)]
    cdm_version: VersionText
    vocabulary_version: Annotated[str, Field(max_length=80)]
    dialect: Literal["sqlite", "postgresql"]
    # rounded to tens so the heartbeat is not an exact count
    person_count: Annotated[int, Field(ge=0, le=2**31 - 1)]
    policy: PolicySummary
    # The node's long-term Ed25519 identity (signs its secure-aggregation keys); the portal pins
    # it on first report (trust on first use).
    identity_key: PublicKeyText | None = None
    # Set when the agent runs from the node image: the digest of the image's SBOM, i.e. of the
    # exact packages it holds (node/Containerfile, docs/node-install.md).
    image_digest: ImageDigestText | None = None


class HeartbeatAck(BaseModel):
    # The portal may add fields over time; the agent ignores what it does not know.
    model_config = ConfigDict(extra="ignore")

    node_id: int | str
    poll_interval_seconds: Annotated[float, Field(gt=0)]
    portal_version: str


class SecureAssignment(BaseModel):
    """A run's part in a secure-aggregation round: the node releases a masked vector only."""

    model_config = ConfigDict(extra="ignore")

    round_id: Annotated[str, Field(min_length=1, max_length=64)]
    node_id: DbId
    vector_length: Annotated[int, Field(ge=1, le=10_000_000)]


class RunAssignment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    run_id: int
    attempt: int
    analysis_id: int | str
    type: str
    version: int
    round: Annotated[int, Field(ge=1)] = 1
    params: dict[str, Any]
    state: dict[str, Any] = Field(default_factory=dict)
    deadline: datetime | None = None
    lease_seconds: Annotated[int, Field(ge=0)] | None = None
    # Who receives the result, for the node's release ledger (opaque ids chosen by the portal):
    # the researcher's user id and the projects (access requests) their entitlements come from.
    # A portal that sends no requester gets the strictest comparison (every earlier release).
    requester_id: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    project_ids: Annotated[list[Annotated[str, Field(max_length=100)]], Field(max_length=50)] = (
        Field(default_factory=list)
    )
    # The strictest minimum cell count of the datasets' terms of use; the node applies the
    # stricter of this and its own policy (None: the node's policy alone).
    min_cell_count: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    # Set when the run is part of a secure-aggregation round (see optima_node.secure_run).
    secure: SecureAssignment | None = None


RunStatus = Literal["completed", "refused", "failed"]


class RunResult(_Strict):
    run_id: DbId
    attempt: Annotated[int, Field(ge=1, le=32_767)]
    status: RunStatus
    result: dict[str, Any] | None
    reason_code: ReasonCode | None
    hold_for_release: bool
    agent_version: VersionText

    @model_validator(mode="after")
    def _result_only_when_completed(self) -> RunResult:
        # The envelope itself enforces "a refusal carries only a reason code".
        if self.status == "completed" and (self.result is None or self.reason_code is not None):
            raise ValueError("a completed run carries a result and no reason code")
        if self.status != "completed" and (self.result is not None or self.reason_code is None):
            raise ValueError("a refused or failed run carries a reason code and no result")
        return self


def parse_result(analysis_type: str, version: int, data: dict[str, Any]) -> BaseModel:
    """Validate a node's ``RunResult.result`` as the typed model for (type, version).

    For the portal: raises KeyError for an unknown pair and pydantic.ValidationError for bad data.
    """
    return RESULT_MODELS[(analysis_type, version)].model_validate(data)


# --- secure aggregation (optima_node.secagg; docs/federation.md "Secure aggregation") ----------

Announcement = dict[str, Any]
# A masked vector travels as base64 of little-endian unsigned 64-bit integers.
MaskedText = Annotated[str, Field(min_length=1, max_length=16_000_000)]


class SecureKeyPost(_Strict):
    attempt: Annotated[int, Field(ge=1, le=32_767)]
    announcement: Announcement


class SecureHoldPost(_Strict):
    """The node holds the run until its site admin reviews the contribution at the node."""

    attempt: Annotated[int, Field(ge=1, le=32_767)]


class SecureMaskedPost(_Strict):
    attempt: Annotated[int, Field(ge=1, le=32_767)]
    round_id: Annotated[str, Field(min_length=1, max_length=64)]
    vector: MaskedText


SecureRoundStatus = Literal["collecting_keys", "masking", "summed", "abandoned"]


class SecurePeers(BaseModel):
    """The portal's relay: the round's current id and state, every participant's announcement
    and the identity key the portal pinned for each node (to verify the signatures)."""

    model_config = ConfigDict(extra="ignore")

    round_id: str
    status: SecureRoundStatus
    vector_length: int
    participants: list[int]
    announcements: list[Announcement] = Field(default_factory=list)
    identities: dict[int, str] = Field(default_factory=dict)
