"""The registry of analysis kinds: each (type, version) is a contract with a parameter JSON schema,
and declares what is particular to it, so that call sites ask the kind instead of comparing type
strings (``docs/architecture.md``, "Analysis kinds").

The schemas are generated from the agent's own parameter models (``optima_node.schemas``), so the
portal and the nodes can never disagree on what a valid request is. The kinds' own code lives in
:mod:`federation.kinds` (one module per kind).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

import jsonschema
from django.core.exceptions import ValidationError
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from optima_node.circe.model import EMPTY_VALUE_SCHEMA
from optima_node.schemas import FL_PARAMS_MODELS, PARAMS_MODELS, RESULT_MODELS, AnalysisType

from . import aggregate
from .kinds import counts, glm, learning, profile, survival

if TYPE_CHECKING:
    from optima_node.schemas import CohortSpec

GLM = AnalysisType.LOGISTIC_REGRESSION.value  # the iterative kind (one round per Fisher step)
FL_TYPE, FL_VERSION = ("federated_learning", 1)  # a FLARE training job (federation.flare)
FEDERATED_ANALYTICS = "federated_analytics"  # the access modes an entitlement grants
FEDERATED_LEARNING = "federated_learning"

Rows = tuple[list[str], list[list[Any]]]


class Typed(Protocol):
    """An analysis row as the registry sees it (``federation.models`` imports this module, not
    the other way round)."""

    type: str
    version: int


def _nothing(*_args: Any) -> dict[str, Any]:
    return {}


def _no_rows(_result: dict[str, Any]) -> Rows:
    return [], []


def _no_populations(*_args: Any) -> list[dict[str, Any]]:
    return []


def _no_problem(*_args: Any) -> str:
    return ""


def _no_page(_analysis: Any) -> str | None:
    return None


@dataclass(frozen=True)
class AnalysisKind:
    """One kind of analysis. The callables default to "nothing particular"."""

    type: str
    version: int
    label: str
    description: str
    rounds: str  # "one" or "iterative"
    # Who computes it: "nodes" (runs the agents claim) or "flare" (a federated-learning job).
    engine: str = "nodes"
    access_mode: str = FEDERATED_ANALYTICS  # the entitlement every dataset needs
    keep_none: bool = False  # keep parameters whose value is None in the normalised JSON
    uses_cohort: bool = True  # its parameters start with a cohort (the analysis form asks for one)
    # The first round's state (sent with every run of it).
    initial_state: Callable[[dict[str, Any]], dict[str, Any]] = _nothing
    # One-round kinds: node results + params -> the pooled result.
    pool: Callable[[list[dict[str, Any]], dict[str, Any]], dict[str, Any]] | None = None
    # (result model, params, run state) -> what is wrong with a node's answer beyond its schema.
    check_result: Callable[[Any, dict[str, Any], dict[str, Any] | None], str] = _no_problem
    form_params: Callable[[dict[str, Any]], dict[str, Any]] = _nothing  # fields of AnalysisForm
    csv_rows: Callable[[dict[str, Any]], Rows] = _no_rows  # the CSV download's table
    plot_context: Callable[[dict[str, Any]], dict[str, Any]] = _nothing  # page and PDF figures
    # (cohort, result model, params) -> the populations whose totals a result releases.
    populations: Callable[[CohortSpec, Any, dict[str, Any]], list[dict[str, Any]]] = _no_populations
    page: Callable[[Any], str | None] = _no_page  # its own page instead of the analysis'
    cancel_refusal: str = ""  # why the analysis page cannot cancel it (it has its own way)
    # Its node results are count vectors the nodes may sum under pairwise masks (issue: secure
    # aggregation); the pooled numbers then pass federation.pooled_disclosure at the portal.
    secure_aggregation: bool = False

    @property
    def key(self) -> tuple[str, int]:
        return (self.type, self.version)

    @property
    def iterative(self) -> bool:
        return self.rounds == "iterative"

    @property
    def runs_on_nodes(self) -> bool:
        return self.engine == "nodes"

    @property
    def params_model(self) -> type[BaseModel]:
        return PARAMS_MODELS.get(self.key) or FL_PARAMS_MODELS[self.key]

    @property
    def result_model(self) -> type[BaseModel]:
        return RESULT_MODELS[self.key]

    @property
    def result_template(self) -> str:
        return f"federation/partials/result_{self.type}.html"

    def params_schema(self) -> dict[str, Any]:
        return _schema(self.key)


KINDS: dict[tuple[str, int], AnalysisKind] = {
    k.key: k
    for k in (
        AnalysisKind(
            AnalysisType.COHORT_COUNT.value,
            1,
            "Cohort count",
            "Persons in the cohort, optionally by sex, age group and index year. With secure "
            "aggregation (three or more nodes) small pooled cells are suppressed; otherwise small "
            "cells are suppressed at each node and pooled cells that include them are lower bounds.",
            "one",
            secure_aggregation=True,
            pool=aggregate.pool_cohort_count,
            form_params=counts.cohort_count_form_params,
            csv_rows=counts.cohort_count_csv,
            populations=counts.cohort_count_populations,
        ),
        AnalysisKind(
            AnalysisType.CHARACTERISATION.value,
            1,
            "Characterisation",
            "Person count, sex, age group, index year, deaths and follow-up bands.",
            "one",
            secure_aggregation=True,
            pool=aggregate.pool_characterisation,
            csv_rows=counts.characterisation_csv,
            populations=counts.characterisation_populations,
        ),
        AnalysisKind(
            AnalysisType.KAPLAN_MEIER.value,
            1,
            "Kaplan–Meier survival",
            "Overall survival from the index date, pooled across nodes, with Greenwood "
            "confidence intervals, median survival, number at risk and a log-rank test between "
            "strata.",
            "one",
            secure_aggregation=True,
            pool=aggregate.pool_kaplan_meier,
            form_params=survival.form_params,
            csv_rows=survival.csv_rows,
            plot_context=survival.plot_context,
            populations=survival.populations,
        ),
        AnalysisKind(
            GLM,
            1,
            "Logistic regression",
            "Death within N days on age, sex and index year, fitted exactly across nodes by "
            "Fisher scoring (the DataSHIELD ds.glm method).",
            "iterative",
            initial_state=glm.initial_state,
            check_result=glm.check_result,
            form_params=glm.form_params,
            csv_rows=glm.csv_rows,
            plot_context=glm.plot_context,
            populations=glm.populations,
        ),
        AnalysisKind(
            AnalysisType.DATABASE_PROFILE.value,
            1,
            "Database profile",
            "The CDM behind the dataset: versions, persons by sex and age band, records and the "
            "newest date per table, persons per cancer; for the catalogue's dataset page.",
            "one",
            uses_cohort=False,
            pool=profile.pool,
            csv_rows=profile.csv_rows,
        ),
        AnalysisKind(
            FL_TYPE,
            FL_VERSION,
            "Federated learning",
            "A model trained by federated averaging on NVIDIA FLARE across the sites whose "
            "policy takes part; released into the model registry by a site admin.",
            "iterative",
            engine="flare",
            access_mode=FEDERATED_LEARNING,
            keep_none=True,
            page=learning.page,
            cancel_refusal=learning.CANCEL_REFUSAL,
        ),
    )
}


def node_kinds() -> list[AnalysisKind]:
    """The kinds the nodes compute (the analysis form, the API's analysis catalogue)."""
    return [k for k in KINDS.values() if k.runs_on_nodes]


TYPE_CHOICES = sorted({(k.type, k.label) for k in node_kinds()})


@cache
def _schema(key: tuple[str, int]) -> dict[str, Any]:
    return KINDS[key].params_model.model_json_schema()


def get_kind(analysis_type: str, version: int) -> AnalysisKind | None:
    return KINDS.get((analysis_type, int(version)))


def require_kind(analysis_type: str, version: int) -> AnalysisKind:
    """The kind, or 400 (ValidationError on ``type``) for an unknown (type, version)."""
    kind = get_kind(analysis_type, version)
    if kind is None:
        raise ValidationError({"type": [f"Unknown analysis {analysis_type!r} version {version}."]})
    return kind


def kind_of(analysis: Typed) -> AnalysisKind | None:
    return get_kind(analysis.type, analysis.version)


def _path(parts: Iterable[Any]) -> str:
    return ".".join(str(p) for p in parts)


def _intended_branch(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """For a value matching no alternative (a cohort that is neither the form nor a Circe
    definition), the errors of the alternative that got furthest: those name the real problem."""
    if error.validator != "anyOf" or not error.context:
        return [error]
    if error.validator_value == EMPTY_VALUE_SCHEMA["anyOf"]:
        error.message = "not supported (the node runs the subset in docs/cohorts.md)"
        return [error]
    branches: dict[Any, list[jsonschema.ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.schema_path[0], []).append(sub)
    best = max(branches.values(), key=lambda subs: max(len(s.absolute_path) for s in subs))
    return [leaf for sub in best for leaf in _intended_branch(sub)]


def parse_params(
    model: type[BaseModel], schema: dict[str, Any], params: Any, *, exclude_none: bool
) -> dict[str, Any]:
    """Check ``params`` against ``schema`` (JSON schema, one message per problem naming its
    location), then ``model``'s own rules; return them as JSON with defaults filled in.

    Raises ``ValidationError({"params": [...]})``."""
    if not isinstance(params, dict):
        raise ValidationError({"params": ["Parameters must be a JSON object."]})
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(
        (leaf for e in validator.iter_errors(params) for leaf in _intended_branch(e)),
        key=lambda e: [str(p) for p in e.absolute_path],
    )
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
    """The one parameter check of every kind (federated learning included): the kind's JSON
    schema first, then its model's own rules; return the parameters with defaults filled in.

    Raises ``ValidationError({"params": [...]})`` with one message per problem, each naming its
    location (``cohort.condition_concept_ids: [] should be non-empty``), or on ``type`` for an
    unknown kind.
    """
    kind = require_kind(analysis_type, version)
    return parse_params(
        kind.params_model, kind.params_schema(), params, exclude_none=not kind.keep_none
    )


terms_for = glm.terms_for  # logistic regression model terms in contract order
