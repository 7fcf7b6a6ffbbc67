"""The analysis catalogue: each (type, version) is a contract with a parameter JSON schema.

The schemas are generated from the agent's own parameter models (``optima_node.schemas``), so the
portal and the nodes can never disagree on what a valid request is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema
from django.core.exceptions import ValidationError
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from optima_node.schemas import PARAMS_MODELS, RESULT_MODELS, AnalysisType

GLM = AnalysisType.LOGISTIC_REGRESSION.value  # the iterative kind (one round per Fisher step)
FL_TYPE, FL_VERSION = (
    "federated_learning",
    1,
)  # a FLARE training job's Analysis.type (federation.flare)


@dataclass(frozen=True)
class AnalysisKind:
    type: str
    version: int
    label: str
    description: str
    rounds: str  # "one" or "iterative"

    @property
    def key(self) -> tuple[str, int]:
        return (self.type, self.version)

    @property
    def params_model(self) -> type[BaseModel]:
        return PARAMS_MODELS[self.key]

    @property
    def result_model(self) -> type[BaseModel]:
        return RESULT_MODELS[self.key]

    def params_schema(self) -> dict[str, Any]:
        return _schema(self.key)


KINDS: dict[tuple[str, int], AnalysisKind] = {
    (AnalysisType.COHORT_COUNT.value, 1): AnalysisKind(
        "cohort_count",
        1,
        "Cohort count",
        "Persons in the cohort, optionally by sex, age group and index year; small cells are "
        "suppressed at each node and pooled cells that include them are lower bounds.",
        "one",
    ),
    (AnalysisType.CHARACTERISATION.value, 1): AnalysisKind(
        "characterisation",
        1,
        "Characterisation",
        "Person count, sex, age group, index year, deaths and follow-up bands.",
        "one",
    ),
    (AnalysisType.KAPLAN_MEIER.value, 1): AnalysisKind(
        "kaplan_meier",
        1,
        "Kaplan–Meier survival",
        "Overall survival from the index date, pooled across nodes, with Greenwood confidence "
        "intervals, median survival, number at risk and a log-rank test between strata.",
        "one",
    ),
    (AnalysisType.LOGISTIC_REGRESSION.value, 1): AnalysisKind(
        "logistic_regression",
        1,
        "Logistic regression",
        "Death within N days on age, sex and index year, fitted exactly across nodes by Fisher "
        "scoring (the DataSHIELD ds.glm method).",
        "iterative",
    ),
}

TYPE_CHOICES = sorted({(k.type, k.label) for k in KINDS.values()})


@cache
def _schema(key: tuple[str, int]) -> dict[str, Any]:
    return PARAMS_MODELS[key].model_json_schema()


def get_kind(analysis_type: str, version: int) -> AnalysisKind | None:
    return KINDS.get((analysis_type, int(version)))


def _path(parts: Iterable[Any]) -> str:
    return ".".join(str(p) for p in parts)


def parse_params(
    model: type[BaseModel], schema: dict[str, Any], params: Any, *, exclude_none: bool
) -> dict[str, Any]:
    """Check ``params`` against ``schema`` (JSON schema, one message per problem naming its
    location), then ``model``'s own rules; return them as JSON with defaults filled in.

    Raises ``ValidationError({"params": [...]})``. The one parameter check of every kind of
    analysis: the node-run kinds here and federated learning (``federation.flare.services``).
    """
    if not isinstance(params, dict):
        raise ValidationError({"params": ["Parameters must be a JSON object."]})
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        raise ValidationError(
            {"params": [f"{_path(e.absolute_path) or 'params'}: {e.message}" for e in errors[:20]]}
        )
    try:
        parsed = model.model_validate(params)
    except PydanticValidationError as exc:
        raise ValidationError(
            {"params": [f"{_path(e['loc']) or 'params'}: {e['msg']}" for e in exc.errors()]}
        ) from exc
    return parsed.model_dump(mode="json", exclude_none=exclude_none)


def validate_params(analysis_type: str, version: int, params: Any) -> dict[str, Any]:
    """Check ``params`` against the type's JSON schema; return them with defaults filled in.

    Raises ``ValidationError({"params": [...]})`` with one message per problem, each naming its
    location (``cohort.condition_concept_ids: [] should be non-empty``).
    """
    kind = get_kind(analysis_type, version)
    if kind is None:
        raise ValidationError({"type": [f"Unknown analysis {analysis_type!r} version {version}."]})
    return parse_params(kind.params_model, kind.params_schema(), params, exclude_none=True)


def terms_for(params: dict[str, Any]) -> list[str]:
    """Logistic regression model terms in contract order."""
    return PARAMS_MODELS[(AnalysisType.LOGISTIC_REGRESSION.value, 1)].model_validate(params).terms
