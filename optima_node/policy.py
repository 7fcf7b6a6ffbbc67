"""The site's disclosure policy: a TOML file the hospital controls, never set by the portal."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from optima_node.schemas import AnalysisType, PolicySummary


class PolicyError(ValueError):
    """The policy file is missing, unreadable or invalid."""


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_analysis_types: list[AnalysisType] = Field(default_factory=lambda: list(AnalysisType))
    min_cell_count: Annotated[int, Field(ge=1, le=1000)] = 5
    glm_max_params_ratio: Annotated[float, Field(gt=0, le=1)] = 0.33
    km_min_time_unit_days: Annotated[int, Field(ge=1, le=3660)] = 30
    # The database profile's released counts are rounded to a multiple of this (1: not rounded).
    profile_rounding: Annotated[int, Field(ge=1, le=1000)] = 1
    require_approval: bool = False
    review_before_release: bool = False
    federated_learning: bool = False
    allowed_model_templates: list[str] = Field(default_factory=list)
    # The release ledger compares a release with earlier ones to the same requester ("requester"),
    # to the same requester or anyone in a shared project ("project"), or to anyone ("all").
    differencing_scope: Literal["requester", "project", "all"] = "project"
    # Secure aggregation (docs/federation.md): count, characterisation and Kaplan–Meier tables
    # leave the node masked, and the portal learns only the pooled sums of at least
    # ``secure_aggregation_min_nodes`` nodes (never fewer than 3). Off: per-site release.
    secure_aggregation: bool = True
    secure_aggregation_min_nodes: Annotated[int, Field(ge=3, le=1000)] = 3

    @field_validator("allowed_analysis_types")
    @classmethod
    def _unique(cls, value: list[AnalysisType]) -> list[AnalysisType]:
        return list(dict.fromkeys(value))

    def allows(self, analysis_type: str) -> bool:
        return analysis_type in {t.value for t in self.allowed_analysis_types}

    def summary(self) -> PolicySummary:
        return PolicySummary(
            require_approval=self.require_approval,
            review_before_release=self.review_before_release,
            min_cell_count=self.min_cell_count,
            allowed_types=[t.value for t in self.allowed_analysis_types],
            federated_learning=self.federated_learning,
            allowed_model_templates=list(self.allowed_model_templates),
            differencing_scope=self.differencing_scope,
            secure_aggregation=self.secure_aggregation,
            secure_aggregation_min_nodes=self.secure_aggregation_min_nodes,
        )

    def allows_model_template(self, template: str) -> bool:
        """Federated learning needs both the switch and the template on the site's list."""
        return self.federated_learning and template in self.allowed_model_templates

    def to_toml(self) -> str:
        def fmt(value: object) -> str:
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, list):
                return "[" + ", ".join(f'"{v}"' for v in value) + "]"
            if isinstance(value, str):
                return f'"{value}"'
            return str(value)

        data = self.model_dump(mode="json")
        return "[policy]\n" + "".join(f"{key} = {fmt(value)}\n" for key, value in data.items())


def load_policy(path: str | Path | None) -> Policy:
    """Read a policy file (keys at top level or under ``[policy]``); no file means the defaults."""
    if path is None or str(path) == "":
        return Policy()
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise PolicyError(f"policy file not found: {path}") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc}") from exc
    return policy_from_mapping(data, f"policy file {path}")


def policy_from_text(text: str, source: str = "policy") -> Policy:
    """A policy written as TOML (as in a policy file), e.g. typed into the portal's form."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: not valid TOML: {exc}") from exc
    return policy_from_mapping(data, source)


def policy_from_mapping(data: object, source: str = "policy") -> Policy:
    """Validate a policy given as a mapping (keys at top level or under ``policy``)."""
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: a policy is a table of keys")
    if "policy" in data:
        if set(data) != {"policy"}:
            raise PolicyError(f"{source}: put every key under [policy]")
        data = data["policy"]
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "policy"
        raise PolicyError(f"invalid {source}: {where}: {first['msg']}") from exc
