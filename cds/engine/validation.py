"""Checking raw inputs (from a form, the API or FHIR) against a pathway's input definitions."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .derivations import FUNCTIONS
from .pathway import Pathway
from .schema import InputSpec

STRING_INPUT_MAX = 100  # characters of a text input (docs/security.md "Input limits")


@dataclass
class Prepared:
    """Validated inputs plus everything the rules read: derived values and what is unknown."""

    clean: dict[str, Any]
    errors: dict[str, list[str]]
    env: dict[str, Any] = field(default_factory=dict)
    not_assessed: dict[str, Any] = field(default_factory=dict)
    derivations: list[dict[str, Any]] = field(default_factory=list)
    unknown_sources: dict[str, tuple[str, ...]] = field(default_factory=dict)


def validate_inputs(
    pathway: Pathway, raw: Mapping[str, Any], *, partial: bool = True
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Return ``(clean, errors)``.

    ``clean`` holds the given inputs converted to their canonical type and unit; missing ones
    (absent, None or blank) are left out. ``errors`` maps each field to its messages; unknown
    fields are errors. With ``partial=False`` a missing required input is an error too; by
    default it is not, because :func:`evaluate` reports what is missing.
    """
    prepared = prepare(pathway, raw)
    errors = prepared.errors
    if not partial:
        for name, spec in pathway.inputs.items():
            if spec.required and name not in prepared.clean and name not in errors:
                errors[name] = ["This input is required."]
    return prepared.clean, errors


def prepare(pathway: Pathway, raw: Mapping[str, Any]) -> Prepared:
    errors: dict[str, list[str]] = defaultdict(list)
    clean: dict[str, Any] = {}
    if not isinstance(raw, Mapping):
        return Prepared({}, {"__all__": ["Inputs must be a mapping of field to value."]})
    for name, value in raw.items():
        spec = pathway.inputs.get(name)
        if spec is None:
            errors[str(name)].append("Unknown input for this pathway.")
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            clean[name] = coerce(spec, value)
        except ValueError as exc:
            errors[name].append(str(exc))

    prepared = Prepared(clean, errors)
    env = prepared.env
    for name, value in clean.items():
        if value in pathway.inputs[name].unknown_values:
            prepared.not_assessed[name] = value
        else:
            env[name] = value
    _derive(pathway, prepared)
    for constraint, condition in pathway.constraints:
        if constraint.field in errors:
            continue
        result, _ = condition(env)
        if result is False:
            errors[constraint.field].append(constraint.message)
    prepared.errors = dict(errors)
    return prepared


def _derive(pathway: Pathway, prepared: Prepared) -> None:
    env = prepared.env
    for derivation in pathway.derivations:
        spec = derivation.spec
        record: dict[str, Any] = {"name": spec.name, "label": spec.label, "method": ""}
        if spec.function is not None:
            record["method"] = f"{spec.function}({', '.join(spec.args)})"
            args = [env.get(arg) for arg in spec.args]
            record["from"] = dict(zip(spec.args, args, strict=True))
            given = env.get(spec.name) if derivation.fills_input else None
            if any(arg is None for arg in args):
                if given is None:
                    missing = tuple(a for a in spec.args if a not in env)
                    prepared.unknown_sources[spec.name] = missing
                    record.update(value=None, status="unknown")
                else:
                    record.update(value=given, status="given")
                prepared.derivations.append(record)
                continue
            try:
                value = FUNCTIONS[spec.function](*args)
            except ValueError as exc:
                prepared.errors[spec.args[0]].append(str(exc))
                prepared.unknown_sources[spec.name] = tuple(spec.args)
                record.update(value=None, status="error")
                prepared.derivations.append(record)
                continue
            if given is not None and given != value:
                prepared.errors[spec.name].append(
                    f"{given} does not match {value} derived by {record['method']}."
                )
            record.update(value=given if given is not None else value, status="derived")
            if given is not None:
                record["status"] = "given_and_consistent" if given == value else "conflict"
            env[spec.name] = record["value"]
        else:
            record["method"] = "cases"
            for index, (condition, value) in enumerate(derivation.cases):
                result, deciders = condition(env)
                if result is None:
                    prepared.unknown_sources[spec.name] = deciders
                    record.update(value=None, status="unknown", case=index)
                    break
                if result:
                    env[spec.name] = value
                    record.update(value=value, status="derived", case=index)
                    record["from"] = {n: _shown(prepared, n) for n in dict.fromkeys(deciders)}
                    break
            else:
                prepared.unknown_sources[spec.name] = ()
                record.update(value=None, status="no_case_matched")
        prepared.derivations.append(record)


def _shown(prepared: Prepared, name: str) -> Any:
    if name in prepared.env:
        return prepared.env[name]
    return prepared.not_assessed.get(name)


def coerce(spec: InputSpec, value: Any) -> Any:
    """One raw value -> its canonical form, or ``ValueError`` with a message for the user."""
    if isinstance(value, bool):
        raise ValueError("Expected a value, not true/false.")
    if isinstance(value, str | int | float) and spec.aliases:
        alias = spec.aliases.get(str(value).strip())
        if alias is not None:
            value = alias
    if spec.type in ("number", "integer"):
        return _number(spec, value)
    if spec.type == "enum":
        return _enum(spec, value)
    if not isinstance(value, str):
        raise ValueError("Expected text.")
    text = value.strip()
    if len(text) > STRING_INPUT_MAX:
        raise ValueError(f"At most {STRING_INPUT_MAX} characters.")
    if spec.pattern and not re.fullmatch(spec.pattern, text):
        raise ValueError(f"'{text}' is not in the expected form. {spec.help}".strip())
    return text


def _number(spec: InputSpec, value: Any) -> int | float:
    unit = spec.unit
    if isinstance(value, Mapping):
        if set(value) - {"value", "unit"} or "value" not in value:
            raise ValueError("Give a number, or {value, unit}.")
        given_unit = value.get("unit") or unit
        value = value["value"]
        if given_unit != unit:
            factor = spec.unit_conversions.get(given_unit)
            if factor is None:
                accepted = ", ".join([unit or "", *spec.unit_conversions])
                raise ValueError(f"Unit '{given_unit}' is not accepted; use {accepted}.")
            value = _to_float(value) * factor
    number = _to_float(value)
    if spec.type == "integer":
        if not float(number).is_integer():
            raise ValueError("Must be a whole number.")
        number = int(number)
    low, high = spec.minimum, spec.maximum
    if (low is not None and number < low) or (high is not None and number > high):
        suffix = f" {unit}" if unit else ""
        raise ValueError(f"Must be between {_fmt(low)} and {_fmt(high)}{suffix}.")
    return number


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("Not a number.")
    if isinstance(value, str):
        value = value.strip().replace(",", ".")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError("Not a number.") from None
    except OverflowError:  # float(10**400)
        raise ValueError("Not a finite number.") from None
    if not math.isfinite(number):
        raise ValueError("Not a finite number.")
    return number


def _fmt(bound: float | None) -> str:
    if bound is None:
        return "any"
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def _enum(spec: InputSpec, value: Any) -> Any:
    values = spec.values or []
    if isinstance(value, int | float | str):
        for allowed in values:
            if value == allowed and type(value) is type(allowed):
                return allowed
        text = str(value).strip()
        for allowed in values:
            if str(allowed) == text:
                return allowed
        folded = [allowed for allowed in values if str(allowed).lower() == text.lower()]
        if len(folded) == 1:
            return folded[0]
    allowed_text = ", ".join(str(v) for v in values)
    raise ValueError(f"'{value}' is not one of: {allowed_text}.")
