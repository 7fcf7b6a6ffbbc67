"""Evaluating a pathway's rules for one patient, with a full trace."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InputValidationError
from .pathway import Pathway
from .validation import Prepared, prepare

MATCHED_TEXT = {True: "matched", False: "not_matched", None: "undetermined"}


@dataclass(frozen=True)
class Recommendation:
    id: str
    label: str
    notes: str
    patient_explanation: str


@dataclass(frozen=True)
class EngineWarning:
    id: str
    message: str
    citation: str = ""


@dataclass(frozen=True)
class RuleTrace:
    """One rule as the engine considered it.

    ``matched`` is True, False or None (undetermined: a missing input could change it).
    ``reached`` is False for rules after the deciding one; they are evaluated anyway so the trace
    is complete, but they did not influence the result. ``values`` are the inputs that decided
    the rule's truth value (None for a missing input, the raw value for a "not assessed" one).
    """

    rule_id: str
    description: str
    outcome: str
    matched: bool | None
    reached: bool
    selected: bool
    values: dict[str, Any]
    citation: str


@dataclass(frozen=True)
class Evaluation:
    pathway_id: str
    pathway_version: str
    pathway_checksum: str
    classification: str
    label: str
    summary: str
    patient_explanation: str
    recommendations: tuple[Recommendation, ...]
    decided_by: str | None
    possible_classifications: tuple[str, ...]
    trace: tuple[RuleTrace, ...]
    derivations: tuple[dict[str, Any], ...]
    missing: tuple[str, ...]
    warnings: tuple[EngineWarning, ...]
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def is_determined(self) -> bool:
        return len(self.possible_classifications) == 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "pathway": {
                "id": self.pathway_id,
                "version": self.pathway_version,
                "checksum": self.pathway_checksum,
            },
            "classification": self.classification,
            "label": self.label,
            "summary": self.summary,
            "patient_explanation": self.patient_explanation,
            "recommendations": [vars(r).copy() for r in self.recommendations],
            "decided_by": self.decided_by,
            "possible_classifications": list(self.possible_classifications),
            "trace": [
                {**vars(t), "values": dict(t.values), "result": MATCHED_TEXT[t.matched]}
                for t in self.trace
            ],
            "derivations": [dict(d) for d in self.derivations],
            "missing": list(self.missing),
            "warnings": [vars(w).copy() for w in self.warnings],
            "inputs": dict(self.inputs),
        }


def evaluate(pathway: Pathway, inputs: Mapping[str, Any]) -> Evaluation:
    """Classify ``inputs`` (raw or already clean) with ``pathway``.

    Rules are tried in file order and the first one that is true decides. A rule that is
    undetermined because of missing data stops the evaluation with the rule's
    ``unknown_outcome`` (by default the pathway's ``undetermined_outcome``) unless the rule says
    ``on_unknown: continue``, in which case evaluation goes on and a warning says what was
    assumed. Raises :class:`InputValidationError` when the inputs do not validate.
    """
    prepared = prepare(pathway, inputs)
    if prepared.errors:
        raise InputValidationError(prepared.errors)
    env = prepared.env

    classification: str | None = None
    decided_by: str | None = None
    possible: list[str] = []
    missing_names: list[str] = []
    warnings: list[EngineWarning] = []
    trace: list[RuleTrace] = []
    collecting_possible = True
    for rule, condition in pathway.rules:
        matched, deciders = condition(env)
        reached = classification is None
        selected = False
        if reached:
            if matched is True:
                classification, decided_by, selected = rule.outcome, rule.id, True
            elif matched is None:
                missing_names.extend(deciders)
                if rule.on_unknown == "stop":
                    classification = rule.unknown_outcome or pathway.model.undetermined_outcome
                    decided_by, selected = rule.id, True
                elif rule.unknown_warning:
                    warnings.append(
                        EngineWarning(f"{rule.id}_assumed", rule.unknown_warning, rule.citation)
                    )
        if collecting_possible:
            if matched is not False and rule.outcome not in possible:
                possible.append(rule.outcome)
            collecting_possible = matched is not True
        trace.append(
            RuleTrace(
                rule_id=rule.id,
                description=rule.description,
                outcome=rule.outcome,
                matched=matched,
                reached=reached,
                selected=selected,
                values={name: _shown(prepared, name) for name in dict.fromkeys(deciders)},
                citation=rule.citation,
            )
        )
    if classification is None:  # a well-formed pathway ends with an 'always' rule
        classification = pathway.model.undetermined_outcome
    undetermined = pathway.model.undetermined_outcome
    if len(possible) > 1 and undetermined in possible:
        possible.remove(undetermined)
    if not possible:
        possible.append(classification)

    for spec, condition in pathway.warnings:
        if condition(env)[0] is True:
            warnings.append(EngineWarning(spec.id, spec.message, spec.citation))

    outcome = pathway.model.outcomes[classification]
    return Evaluation(
        pathway_id=pathway.id,
        pathway_version=pathway.version,
        pathway_checksum=pathway.checksum,
        classification=classification,
        label=outcome.label,
        summary=outcome.summary,
        patient_explanation=outcome.patient_explanation,
        recommendations=tuple(
            Recommendation(o.id, o.label, o.notes, o.patient_explanation)
            for o in outcome.options
            if _option_applies(pathway, classification, o.id, env)
        ),
        decided_by=decided_by,
        possible_classifications=tuple(possible),
        trace=tuple(trace),
        derivations=tuple(prepared.derivations),
        missing=tuple(_input_names(pathway, prepared, missing_names)),
        warnings=tuple(warnings),
        inputs=dict(prepared.clean),
    )


def _option_applies(pathway: Pathway, outcome: str, option_id: str, env: Mapping) -> bool:
    condition = pathway.option_conditions.get((outcome, option_id))
    return condition is None or condition(env)[0] is not False


def _shown(prepared: Prepared, name: str) -> Any:
    if name in prepared.env:
        return prepared.env[name]
    return prepared.not_assessed.get(name)


def _input_names(pathway: Pathway, prepared: Prepared, names: list[str]) -> list[str]:
    """Map the variables that left rules undetermined back to the inputs a user can supply."""
    result: dict[str, None] = {}
    pending = list(names)
    seen: set[str] = set()
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        if name in pathway.inputs:  # absent, not assessed, or too coarse (a bare cT2)
            result[name] = None
        pending.extend(prepared.unknown_sources.get(name, ()))
    return list(result)
