"""Loading a pathway file into an immutable, compiled :class:`Pathway`."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .conditions import Compiler, Condition, Variable
from .derivations import FUNCTIONS
from .errors import PathwayFormatError
from .schema import Constraint, Derivation, InputSpec, Outcome, PathwayModel, Rule, WarningSpec

PATHWAYS_DIR = Path(__file__).resolve().parent.parent / "pathways"


@dataclass(frozen=True)
class CompiledDerivation:
    spec: Derivation
    fills_input: bool
    cases: tuple[tuple[Condition, Any], ...] = ()


@dataclass(frozen=True, eq=False)
class Pathway:
    """A validated pathway edition. Build it with :func:`load_pathway`."""

    model: PathwayModel
    checksum: str
    rules: tuple[tuple[Rule, Condition], ...]
    warnings: tuple[tuple[WarningSpec, Condition], ...]
    constraints: tuple[tuple[Constraint, Condition], ...]
    derivations: tuple[CompiledDerivation, ...]
    source_data: Mapping[str, Any]
    source_file: str = ""
    # (outcome code, option id) -> the option's condition, for options that have one
    option_conditions: Mapping[tuple[str, str], Condition] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.model.id

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def title(self) -> str:
        return self.model.title

    @property
    def status(self) -> str:
        return self.model.status

    @property
    def inputs(self) -> Mapping[str, InputSpec]:
        return self.model.inputs

    @property
    def outcomes(self) -> Mapping[str, Outcome]:
        return self.model.outcomes

    @property
    def classifications(self) -> tuple[str, ...]:
        return tuple(self.model.outcomes)

    def raw(self) -> dict[str, Any]:
        """The pathway file's content as plain data: what the checksum covers, what to store."""
        return copy.deepcopy(dict(self.source_data))

    def input_schema(self) -> dict[str, Any]:
        """A JSON-schema-like description of the inputs, for forms and the API.

        Standard keywords where JSON schema has them; ``x-`` keys for units, value labels,
        values that mean "not assessed" and accepted aliases.
        """
        properties: dict[str, Any] = {}
        for name, spec in self.model.inputs.items():
            prop: dict[str, Any] = {"title": spec.label}
            if spec.help:
                prop["description"] = spec.help
            if spec.type in ("number", "integer"):
                prop["type"] = spec.type
                if spec.minimum is not None:
                    prop["minimum"] = spec.minimum
                if spec.maximum is not None:
                    prop["maximum"] = spec.maximum
                if spec.unit:
                    prop["x-unit"] = spec.unit
                    prop["x-accepted-units"] = [spec.unit, *spec.unit_conversions]
            elif spec.type == "enum":
                prop["enum"] = list(spec.values or ())
                if spec.value_labels:
                    prop["x-value-labels"] = dict(spec.value_labels)
                if spec.unknown_values:
                    prop["x-not-assessed-values"] = list(spec.unknown_values)
            else:
                prop["type"] = "string"
                if spec.pattern:
                    prop["pattern"] = spec.pattern
            if spec.aliases:
                prop["x-aliases"] = dict(spec.aliases)
            properties[name] = prop
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": self.model.title,
            "type": "object",
            "properties": properties,
            "required": [name for name, spec in self.model.inputs.items() if spec.required],
            "additionalProperties": False,
            "x-pathway": {"id": self.id, "version": self.version, "checksum": self.checksum},
        }


def canonical_checksum(data: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON form of a pathway file's content.

    Key order, YAML layout, comments and anchors do not count; any change of a value does. The
    file content is hashed rather than the validated model so that engine defaults added later
    do not change the checksum of an unchanged file.
    """
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_pathway(path_or_dict: str | Path | Mapping[str, Any]) -> Pathway:
    """Read, validate and compile a pathway; raise :class:`PathwayFormatError` on any defect."""
    source = ""
    if isinstance(path_or_dict, Mapping):
        data: Any = copy.deepcopy(dict(path_or_dict))
    else:
        path = Path(path_or_dict)
        source = path.name
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise PathwayFormatError(f"not valid YAML: {exc}", source=source) from exc
        except OSError as exc:
            raise PathwayFormatError(f"cannot read the file: {exc}", source=source) from exc
    if not isinstance(data, dict):
        raise PathwayFormatError("the file must hold a mapping at the top level", source=source)
    try:
        model = PathwayModel.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise PathwayFormatError(
            f"{first['msg']}{more}", location=_location(first["loc"]), source=source
        ) from None
    if source and Path(source).stem != model.id:
        raise PathwayFormatError(
            f"the file name must be the pathway id ({model.id}.yaml)", location="id", source=source
        )
    return _compile(model, data, source)


def load_builtin_pathways(directory: str | Path = PATHWAYS_DIR) -> dict[str, Pathway]:
    """Every ``*.yaml`` pathway in ``directory`` keyed by id."""
    pathways = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        pathway = load_pathway(path)
        pathways[pathway.id] = pathway
    return pathways


def _location(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _compile(model: PathwayModel, data: dict[str, Any], source: str) -> Pathway:
    def error(message: str, location: str) -> PathwayFormatError:
        return PathwayFormatError(message, location=location, source=source)

    variables: dict[str, Variable] = {}
    for name, spec in model.inputs.items():
        refinements = {_typed(spec, k): tuple(v) for k, v in spec.refinements.items()}
        values = tuple(spec.values) if spec.values is not None else None
        variables[name] = Variable(spec.type, values, refinements)
    compiler = Compiler(variables, model.definitions, source)

    derivations = []
    for i, derivation in enumerate(model.derived):
        location = f"derived[{i}]"
        fills_input = derivation.name in model.inputs
        if fills_input and derivation.type != model.inputs[derivation.name].type:
            raise error(
                f"type must match the input {derivation.name!r} it fills", f"{location}.type"
            )
        if not fills_input and derivation.name in variables:
            raise error(f"{derivation.name!r} is derived twice", f"{location}.name")
        cases: tuple[tuple[Condition, Any], ...] = ()
        if derivation.function is not None:
            if derivation.function not in FUNCTIONS:
                raise error(
                    f"unknown function {derivation.function!r}; known: {sorted(FUNCTIONS)}",
                    f"{location}.function",
                )
            for j, arg in enumerate(derivation.args):
                if arg not in variables or arg == derivation.name:
                    raise error(f"unknown or later-defined input {arg!r}", f"{location}.args[{j}]")
        else:
            if fills_input:
                raise error(
                    "a 'cases' derivation defines a new name, not an input", f"{location}.name"
                )
            cases = tuple(
                (compiler.compile(case.when, f"{location}.cases[{j}].when"), case.value)
                for j, case in enumerate(derivation.cases or ())
            )
        if not fills_input:
            values = tuple(derivation.values) if derivation.values is not None else None
            variables[derivation.name] = Variable(derivation.type, values)
        derivations.append(CompiledDerivation(derivation, fills_input, cases))

    outcomes = set(model.outcomes)
    produced = {model.undetermined_outcome}
    if model.undetermined_outcome not in outcomes:
        raise error(f"{model.undetermined_outcome!r} is not in outcomes", "undetermined_outcome")
    rules = []
    for i, rule in enumerate(model.rules):
        location = f"rules[{i}]"
        for key, code in (("outcome", rule.outcome), ("unknown_outcome", rule.unknown_outcome)):
            if code is not None and code not in outcomes:
                raise error(f"{code!r} is not in outcomes", f"{location}.{key}")
            produced.add(code)
        rules.append((rule, compiler.compile(rule.when, f"{location}.when")))
    unused = outcomes - produced
    if unused:
        raise error(f"no rule produces {sorted(unused)}", "outcomes")

    warnings = tuple(
        (spec, compiler.compile(spec.when, f"warnings[{i}].when"))
        for i, spec in enumerate(model.warnings)
    )
    constraints = []
    for i, constraint in enumerate(model.constraints):
        if constraint.field not in model.inputs:
            raise error(f"unknown input {constraint.field!r}", f"constraints[{i}].field")
        constraints.append(
            (constraint, compiler.compile(constraint.when, f"constraints[{i}].when"))
        )
    for name in model.definitions:
        compiler.compile({"ref": name}, f"definitions.{name}")

    for kind, items in (
        ("rules", model.rules),
        ("warnings", model.warnings),
        ("constraints", model.constraints),
        ("tests", model.tests),
    ):
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item.id in seen:
                raise error(f"duplicate id {item.id!r}", f"{kind}[{i}].id")
            seen.add(item.id)
    option_conditions: dict[tuple[str, str], Condition] = {}
    for code, outcome in model.outcomes.items():
        ids = [option.id for option in outcome.options]
        if len(ids) != len(set(ids)):
            raise error("duplicate option id", f"outcomes.{code}.options")
        for j, option in enumerate(outcome.options):
            if option.when is not None:
                option_conditions[(code, option.id)] = compiler.compile(
                    option.when, f"outcomes.{code}.options[{j}].when"
                )
    for i, test in enumerate(model.tests):
        if test.expect is not None and test.expect not in outcomes:
            raise error(f"{test.expect!r} is not in outcomes", f"tests[{i}].expect")

    return Pathway(
        model=model,
        checksum=canonical_checksum(data),
        rules=tuple(rules),
        warnings=warnings,
        constraints=tuple(constraints),
        derivations=tuple(derivations),
        source_data=data,
        source_file=source,
        option_conditions=option_conditions,
    )


def _typed(spec: InputSpec, key: str) -> Any:
    """Refinement keys are strings in YAML; match them to the typed value they stand for."""
    for value in spec.values or ():
        if str(value) == key:
            return value
    return key
