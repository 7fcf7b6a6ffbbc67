"""The supported subset of a Circe cohort expression (the JSON ATLAS exports), as pydantic models.

Pure pydantic: the portal imports this to validate a definition before dispatch. Field names are
Circe's own (PascalCase, concept-set items in camelCase). A key the subset does not know is refused
with its path, unless its value is empty (``null``, ``false``, ``[]``, ``{}``), which is how ATLAS
writes a construct that is not used; nothing a definition asks for is silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ConceptIdInt = Annotated[int, Field(ge=0, le=2**31 - 1)]
Days = Annotated[int, Field(ge=0, le=36_600)]
SIGNED_DAYS_MAX = 36_600
CONCEPT_SETS_MAX = 100
ITEMS_MAX = 1_000
CRITERIA_MAX = 50
RULES_MAX = 50


def _is_empty(value: Any) -> bool:
    return value is None or value is False or value == [] or value == {} or value == ""


# The JSON schema says what the validator below does: another key is allowed only when empty.
EMPTY_VALUE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "null"},
        {"const": False},
        {"const": ""},
        {"type": "array", "maxItems": 0},
        {"type": "object", "maxProperties": 0},
    ]
}


class _Circe(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={"additionalProperties": EMPTY_VALUE_SCHEMA},
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_unused(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = set()
        for name, field in cls.model_fields.items():
            known.add(name)
            if field.alias:
                known.add(field.alias)
        # A known key set to null takes its default; an unknown one is dropped only when empty.
        return {
            k: v
            for k, v in data.items()
            if (k in known and v is not None) or (k not in known and not _is_empty(v))
        }


class Concept(BaseModel):
    # ATLAS copies the whole vocabulary row; only the id matters to the node.
    model_config = ConfigDict(extra="ignore")
    CONCEPT_ID: ConceptIdInt
    CONCEPT_NAME: str = ""


class ConceptSetItem(_Circe):
    concept: Concept
    isExcluded: bool = False
    includeDescendants: bool = False
    includeMapped: bool = False


class ConceptSetExpression(_Circe):
    items: Annotated[list[ConceptSetItem], Field(max_length=ITEMS_MAX)] = Field(
        default_factory=list
    )


class ConceptSet(_Circe):
    id: Annotated[int, Field(ge=0, le=10_000)]
    name: str = ""
    expression: ConceptSetExpression = Field(default_factory=ConceptSetExpression)


class NumericRange(_Circe):
    Value: float
    Op: Literal["lt", "lte", "eq", "!eq", "gt", "gte", "bt", "!bt"]
    Extent: float | None = None

    @model_validator(mode="after")
    def _between_has_extent(self) -> NumericRange:
        if self.Op in {"bt", "!bt"} and self.Extent is None:
            raise ValueError(f"Op {self.Op!r} needs an Extent")
        return self


class _DomainCriteria(_Circe):
    CodesetId: Annotated[int, Field(ge=0, le=10_000)] | None = None
    First: bool = False


class ConditionOccurrenceSpec(_DomainCriteria):
    pass


class DrugExposureSpec(_DomainCriteria):
    pass


class ProcedureOccurrenceSpec(_DomainCriteria):
    pass


class MeasurementSpec(_DomainCriteria):
    ValueAsNumber: NumericRange | None = None


class ObservationSpec(_DomainCriteria):
    ValueAsNumber: NumericRange | None = None


class DeathSpec(_Circe):
    CodesetId: Annotated[int, Field(ge=0, le=10_000)] | None = None


DOMAINS: tuple[str, ...] = (
    "ConditionOccurrence",
    "DrugExposure",
    "ProcedureOccurrence",
    "Measurement",
    "Observation",
    "Death",
)


class CriteriaSpec(_Circe):
    """Exactly one domain key, as in Circe's JSON: ``{"ConditionOccurrence": {...}}``."""

    ConditionOccurrence: ConditionOccurrenceSpec | None = None
    DrugExposure: DrugExposureSpec | None = None
    ProcedureOccurrence: ProcedureOccurrenceSpec | None = None
    Measurement: MeasurementSpec | None = None
    Observation: ObservationSpec | None = None
    Death: DeathSpec | None = None

    @model_validator(mode="after")
    def _one_domain(self) -> CriteriaSpec:
        if len(self.used()) != 1:
            raise ValueError(f"a criterion names exactly one of {', '.join(DOMAINS)}")
        return self

    def used(self) -> list[tuple[str, Any]]:
        return [(d, getattr(self, d)) for d in DOMAINS if getattr(self, d) is not None]

    @property
    def domain(self) -> str:
        return self.used()[0][0]

    @property
    def spec(self) -> Any:
        return self.used()[0][1]


class ObservationWindowSpec(_Circe):
    PriorDays: Days = 0
    PostDays: Days = 0


class Limit(_Circe):
    Type: Literal["First", "All"] = "All"


class PrimaryCriteriaSpec(_Circe):
    CriteriaList: Annotated[list[CriteriaSpec], Field(min_length=1, max_length=CRITERIA_MAX)]
    ObservationWindow: ObservationWindowSpec = Field(default_factory=ObservationWindowSpec)
    PrimaryCriteriaLimit: Limit = Field(default_factory=Limit)


class WindowBound(_Circe):
    Days: Annotated[int, Field(ge=0, le=SIGNED_DAYS_MAX)] | None = None
    Coeff: Literal[-1, 1] = 1

    @property
    def offset(self) -> int | None:
        return None if self.Days is None else self.Days * self.Coeff


class Window(_Circe):
    Start: WindowBound = Field(default_factory=WindowBound)
    End: WindowBound = Field(default_factory=WindowBound)


class OccurrenceSpec(_Circe):
    # Circe's codes: 0 exactly, 1 at most, 2 at least.
    Type: Literal[0, 1, 2]
    Count: Annotated[int, Field(ge=0, le=100_000)]


class CorrelatedCriteria(_Circe):
    Criteria: CriteriaSpec
    StartWindow: Window = Field(default_factory=Window)
    IgnoreObservationPeriod: bool = False
    Occurrence: OccurrenceSpec


class DemographicCriteria(_Circe):
    Age: NumericRange | None = None
    Gender: Annotated[list[Concept], Field(max_length=10)] = Field(default_factory=list)


class CriteriaGroup(_Circe):
    Type: Literal["ALL", "ANY", "AT_LEAST", "AT_MOST"] = "ALL"
    Count: Annotated[int, Field(ge=0, le=1_000)] | None = None
    CriteriaList: Annotated[list[CorrelatedCriteria], Field(max_length=CRITERIA_MAX)] = Field(
        default_factory=list
    )
    DemographicCriteriaList: Annotated[
        list[DemographicCriteria], Field(max_length=CRITERIA_MAX)
    ] = Field(default_factory=list)
    Groups: Annotated[list[CriteriaGroup], Field(max_length=CRITERIA_MAX)] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _count_when_needed(self) -> CriteriaGroup:
        if self.Type in {"AT_LEAST", "AT_MOST"} and self.Count is None:
            raise ValueError(f"a group of Type {self.Type} needs a Count")
        return self


class InclusionRule(_Circe):
    name: Annotated[str, Field(max_length=400)] = ""
    description: Annotated[str, Field(max_length=4_000)] | None = None
    expression: CriteriaGroup


class DateOffsetSpec(_Circe):
    DateField: Literal["StartDate", "EndDate"] = "StartDate"
    Offset: Annotated[int, Field(ge=0, le=SIGNED_DAYS_MAX)] = 0


class EndStrategySpec(_Circe):
    # No strategy (or none given) means the end of the observation period containing the index.
    DateOffset: DateOffsetSpec | None = None


class CollapseSettingsSpec(_Circe):
    CollapseType: Literal["ERA"] = "ERA"
    EraPad: Days = 0


class CohortExpression(_Circe):
    Title: Annotated[str, Field(max_length=400)] | None = None
    cdmVersionRange: Annotated[str, Field(max_length=40)] | None = None
    ConceptSets: Annotated[list[ConceptSet], Field(max_length=CONCEPT_SETS_MAX)] = Field(
        default_factory=list
    )
    PrimaryCriteria: PrimaryCriteriaSpec
    QualifiedLimit: Limit = Field(default_factory=Limit)
    ExpressionLimit: Limit = Field(default_factory=Limit)
    InclusionRules: Annotated[list[InclusionRule], Field(max_length=RULES_MAX)] = Field(
        default_factory=list
    )
    EndStrategy: EndStrategySpec | None = None
    CensoringCriteria: Annotated[list[CriteriaSpec], Field(max_length=CRITERIA_MAX)] = Field(
        default_factory=list
    )
    CollapseSettings: CollapseSettingsSpec = Field(default_factory=CollapseSettingsSpec)

    @model_validator(mode="after")
    def _codesets_exist(self) -> CohortExpression:
        ids = [c.id for c in self.ConceptSets]
        if len(set(ids)) != len(ids):
            raise ValueError("two concept sets share an id")
        for criteria in self.all_criteria():
            codeset = criteria.spec.CodesetId
            if codeset is not None and codeset not in ids:
                raise ValueError(f"{criteria.domain} refers to concept set {codeset}, not defined")
        return self

    def all_criteria(self) -> list[CriteriaSpec]:
        found = list(self.PrimaryCriteria.CriteriaList) + list(self.CensoringCriteria)

        def walk(group: CriteriaGroup) -> None:
            found.extend(c.Criteria for c in group.CriteriaList)
            for sub in group.Groups:
                walk(sub)

        for rule in self.InclusionRules:
            walk(rule.expression)
        return found
