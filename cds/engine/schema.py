"""The pathway file format as pydantic models.

Conditions (``when``) are kept as plain data here and compiled by :mod:`cds.engine.conditions`,
which reports errors with their path in the file. :func:`pathway_json_schema` gives the whole
format, conditions included, as a JSON schema for editors and for the API documentation.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

IDENTIFIER = r"^[a-z][a-z0-9_]*$"
PATHWAY_ID = r"^[a-z][a-z0-9-]*$"
SEMVER = r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$"

Scalar = str | int | float


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    organisation: str
    guideline: str
    edition: str
    year: int
    url: str
    section: str
    references: list[str] = Field(default_factory=list)


class InputSpec(_Strict):
    type: Literal["number", "integer", "enum", "string"]
    label: str
    help: str = ""
    required: bool = False
    unit: str | None = None
    # Other units accepted on input, with the factor that converts them to ``unit``.
    unit_conversions: dict[str, float] = Field(default_factory=dict)
    minimum: float | None = None
    maximum: float | None = None
    values: list[Scalar] | None = None
    value_labels: dict[str, str] = Field(default_factory=dict)
    # Raw spellings accepted for a value, e.g. "2+" for HER2 IHC 2.
    aliases: dict[str, Scalar] = Field(default_factory=dict)
    # Values that record "not assessed" (cNX, pending): given, but unknown to the rules.
    unknown_values: list[Scalar] = Field(default_factory=list)
    # A broad value that stands for one of several finer ones (cT2 -> cT2a/cT2b/cT2c).
    refinements: dict[str, list[Scalar]] = Field(default_factory=dict)
    pattern: str | None = None

    @model_validator(mode="after")
    def _check_type_fields(self) -> InputSpec:
        if self.type == "enum":
            if not self.values:
                raise ValueError("an enum input needs 'values'")
            known = set(self.values)
            for value in self.unknown_values:
                if value not in known:
                    raise ValueError(f"unknown_values: {value!r} is not one of 'values'")
            for broad, fine in self.refinements.items():
                if broad not in {str(v) for v in known}:
                    raise ValueError(f"refinements: {broad!r} is not one of 'values'")
                for value in fine:
                    if value not in known:
                        raise ValueError(f"refinements.{broad}: {value!r} is not one of 'values'")
            for alias, value in self.aliases.items():
                if value not in known:
                    raise ValueError(f"aliases.{alias}: {value!r} is not one of 'values'")
        elif self.values is not None or self.refinements or self.unknown_values:
            raise ValueError("'values', 'refinements' and 'unknown_values' are for enum inputs")
        if self.type in ("number", "integer"):
            # Every number is bounded (docs/security.md "Input limits"): PSA 0 .. 10000 ng/mL,
            # percentages 0 .. 100, so an absurd value is refused rather than evaluated.
            if self.minimum is None or self.maximum is None:
                raise ValueError("a number or integer input needs 'minimum' and 'maximum'")
            if (
                self.minimum is not None
                and self.maximum is not None
                and self.minimum > self.maximum
            ):
                raise ValueError("minimum is greater than maximum")
        elif self.unit_conversions or self.minimum is not None or self.maximum is not None:
            raise ValueError("units and ranges are for number and integer inputs")
        if self.unit_conversions and not self.unit:
            raise ValueError("unit_conversions needs a canonical 'unit'")
        if self.pattern is not None:
            if self.type != "string":
                raise ValueError("'pattern' is for string inputs")
            re.compile(self.pattern)
        return self


class Case(_Strict):
    when: Any
    value: Scalar


class Derivation(_Strict):
    """A derived value: computed by a named function or chosen by ordered conditions."""

    name: str = Field(pattern=IDENTIFIER)
    label: str
    description: str
    citation: str = ""
    type: Literal["number", "integer", "enum", "string"]
    values: list[Scalar] | None = None
    function: str | None = None
    args: list[str] = Field(default_factory=list)
    cases: list[Case] | None = None

    @model_validator(mode="after")
    def _one_method(self) -> Derivation:
        if (self.function is None) == (self.cases is None):
            raise ValueError("a derivation has either 'function' (with 'args') or 'cases'")
        if self.function is not None and not self.args:
            raise ValueError("a function derivation needs 'args'")
        if self.cases is not None:
            if self.type != "enum":
                raise ValueError("a 'cases' derivation has type enum")
            case_values = [case.value for case in self.cases]
            if self.values is None or any(v not in self.values for v in case_values):
                raise ValueError("every case value must be listed in 'values'")
        return self


class Rule(_Strict):
    id: str = Field(pattern=IDENTIFIER)
    description: str
    when: Any
    outcome: str
    citation: str
    on_unknown: Literal["stop", "continue"] = "stop"
    unknown_outcome: str | None = None
    unknown_warning: str | None = None

    @model_validator(mode="after")
    def _unknown_fields(self) -> Rule:
        if self.on_unknown == "continue" and self.unknown_outcome:
            raise ValueError("unknown_outcome only applies when on_unknown is 'stop'")
        if self.on_unknown == "stop" and self.unknown_warning:
            raise ValueError("unknown_warning only applies when on_unknown is 'continue'")
        return self


class Option(_Strict):
    id: str = Field(pattern=IDENTIFIER)
    label: str
    notes: str
    patient_explanation: str
    # Listed only when this condition is not false (an option the guideline restricts to some
    # patients of the outcome); an undetermined condition lists it, its label saying for whom.
    when: Any = None


class Outcome(_Strict):
    label: str
    summary: str
    patient_explanation: str
    options: list[Option] = Field(default_factory=list)


class WarningSpec(_Strict):
    id: str = Field(pattern=IDENTIFIER)
    when: Any
    message: str
    citation: str = ""


class Constraint(_Strict):
    id: str = Field(pattern=IDENTIFIER)
    when: Any
    field: str
    message: str


class SelfTest(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    inputs: dict[str, Any]
    expect: str | None = None
    expect_warnings: list[str] | None = None
    expect_missing: list[str] | None = None
    expect_options: list[str] | None = None
    expect_errors: list[str] | None = None

    @model_validator(mode="after")
    def _expects_something(self) -> SelfTest:
        if self.expect is None and self.expect_errors is None:
            raise ValueError("a test case needs 'expect' or 'expect_errors'")
        return self


class PathwayModel(_Strict):
    format: Literal[1] = 1
    id: str = Field(pattern=PATHWAY_ID)
    title: str
    disease: str
    version: str = Field(pattern=SEMVER)
    status: Literal["draft", "active", "retired"]
    source: Source
    description: str = ""
    undetermined_outcome: str
    inputs: dict[str, InputSpec]
    derived: list[Derivation] = Field(default_factory=list)
    definitions: dict[str, Any] = Field(default_factory=dict)
    constraints: list[Constraint] = Field(default_factory=list)
    rules: list[Rule] = Field(min_length=1)
    warnings: list[WarningSpec] = Field(default_factory=list)
    outcomes: dict[str, Outcome]
    tests: list[SelfTest] = Field(min_length=1)

    @field_validator("inputs", "definitions", "outcomes")
    @classmethod
    def _identifier_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not re.match(IDENTIFIER, key):
                raise ValueError(f"{key!r} is not a lower_snake_case identifier")
        return value


CONDITION_JSON_SCHEMA: dict[str, Any] = {
    "description": "A condition in the CDS condition language (see docs/cds.md).",
    "oneOf": [
        {
            "type": "object",
            "properties": {"all": {"type": "array", "items": {"$ref": "#/$defs/Condition"}}},
            "required": ["all"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"any": {"type": "array", "items": {"$ref": "#/$defs/Condition"}}},
            "required": ["any"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"not": {"$ref": "#/$defs/Condition"}},
            "required": ["not"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {
                "count": {"type": "array", "items": {"$ref": "#/$defs/Condition"}},
                "op": {"enum": ["eq", "ne", "lt", "le", "gt", "ge"]},
                "value": {"type": "integer"},
            },
            "required": ["count", "op", "value"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"ref": {"type": "string"}},
            "required": ["ref"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"always": {"const": True}},
            "required": ["always"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {
                "input": {"type": "string"},
                "op": {
                    "enum": [
                        "eq",
                        "ne",
                        "lt",
                        "le",
                        "gt",
                        "ge",
                        "in",
                        "not_in",
                        "between",
                        "present",
                        "missing",
                    ]
                },
                "value": {},
                "other": {"type": "string"},
            },
            "required": ["input", "op"],
            "additionalProperties": False,
        },
    ],
}


def pathway_json_schema() -> dict[str, Any]:
    """The pathway file format as a JSON schema (draft 2020-12), conditions included."""
    schema = PathwayModel.model_json_schema()
    defs = schema.setdefault("$defs", {})
    defs["Condition"] = CONDITION_JSON_SCHEMA
    condition_ref = {"$ref": "#/$defs/Condition"}

    def point_at_condition(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in list(node.items()):
                if key == "when" and isinstance(value, dict) and "$ref" not in value:
                    node[key] = dict(condition_ref)
                else:
                    point_at_condition(value)
        elif isinstance(node, list):
            for item in node:
                point_at_condition(item)

    for name in ("Rule", "Case", "WarningSpec", "Constraint", "Option"):
        point_at_condition(defs.get(name, {}).get("properties", {}))
    schema["properties"]["definitions"]["additionalProperties"] = dict(condition_ref)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
