"""The condition language: compiled once at load, evaluated with three-valued logic.

A compiled condition is a function ``env -> (result, deciders)``. ``result`` is True, False or
None (unknown: an input it needs is missing or was recorded as not assessed) and ``deciders`` are
the names of the variables that settled the result, which the trace reports. Unknown follows
Kleene's logic: ``all`` is False as soon as one part is False whatever the missing values are,
``any`` is True as soon as one part is True, so a rule is only unknown when a missing value
really could change it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import PathwayFormatError

Result = tuple[bool | None, tuple[str, ...]]
Condition = Callable[[Mapping[str, Any]], Result]

COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}
ORDERING = {"lt", "le", "gt", "ge"}
LEAF_OPS = {*COMPARISONS, "in", "not_in", "between", "present", "missing"}


@dataclass(frozen=True)
class Variable:
    """What the compiler needs to know about an input or a derived value."""

    type: str
    values: tuple[Any, ...] | None = None
    refinements: Mapping[Any, tuple[Any, ...]] = field(default_factory=dict)


@dataclass
class Compiler:
    variables: Mapping[str, Variable]
    definitions: Mapping[str, Any]
    source: str = ""
    _compiled_definitions: dict[str, Condition] = field(default_factory=dict)
    _resolving: set[str] = field(default_factory=set)

    def error(self, message: str, location: str) -> PathwayFormatError:
        return PathwayFormatError(message, location=location, source=self.source)

    def compile(self, node: Any, location: str) -> Condition:
        if not isinstance(node, dict) or not node:
            raise self.error(
                "a condition is a mapping such as {input: psa, op: gt, value: 20}", location
            )
        for key in ("all", "any"):
            if key in node:
                self._only(node, {key}, location)
                parts = node[key]
                if not isinstance(parts, list) or not parts:
                    raise self.error(f"'{key}' takes a non-empty list of conditions", location)
                compiled = [self.compile(p, f"{location}.{key}[{i}]") for i, p in enumerate(parts)]
                return _all(compiled) if key == "all" else _any(compiled)
        if "not" in node:
            self._only(node, {"not"}, location)
            return _not(self.compile(node["not"], f"{location}.not"))
        if "count" in node:
            return self._count(node, location)
        if "ref" in node:
            self._only(node, {"ref"}, location)
            return self._ref(node["ref"], location)
        if "always" in node:
            self._only(node, {"always"}, location)
            if node["always"] is not True:
                raise self.error("'always' must be true", location)
            return _always
        if "input" in node:
            return self._leaf(node, location)
        raise self.error(
            f"unknown condition keys {sorted(node)}; use all, any, not, count, ref, always or input",
            location,
        )

    def _only(self, node: dict[str, Any], keys: set[str], location: str) -> None:
        extra = set(node) - keys
        if extra:
            raise self.error(f"unexpected keys {sorted(extra)} beside {sorted(keys)}", location)

    def _ref(self, name: Any, location: str) -> Condition:
        if name not in self.definitions:
            raise self.error(f"'ref' names an unknown definition {name!r}", location)
        if name not in self._compiled_definitions:
            if name in self._resolving:
                raise self.error(f"definition {name!r} refers to itself", location)
            self._resolving.add(name)
            self._compiled_definitions[name] = self.compile(
                self.definitions[name], f"definitions.{name}"
            )
            self._resolving.discard(name)
        return self._compiled_definitions[name]

    def _count(self, node: dict[str, Any], location: str) -> Condition:
        self._only(node, {"count", "op", "value"}, location)
        parts = node["count"]
        if not isinstance(parts, list) or not parts:
            raise self.error("'count' takes a non-empty list of conditions", location)
        op = node.get("op")
        if op not in COMPARISONS:
            raise self.error(f"'count' needs op one of {sorted(COMPARISONS)}", f"{location}.op")
        target = node.get("value")
        if not isinstance(target, int) or isinstance(target, bool):
            raise self.error("'count' needs an integer value", f"{location}.value")
        compiled = [self.compile(p, f"{location}.count[{i}]") for i, p in enumerate(parts)]
        return _count(compiled, COMPARISONS[op], target)

    def _leaf(self, node: dict[str, Any], location: str) -> Condition:
        self._only(node, {"input", "op", "value", "other"}, location)
        name = node["input"]
        variable = self.variables.get(name)
        if variable is None:
            raise self.error(f"unknown input {name!r}", f"{location}.input")
        op = node.get("op")
        if op not in LEAF_OPS:
            raise self.error(
                f"unknown operator {op!r}; expected one of {sorted(LEAF_OPS)}", f"{location}.op"
            )
        if op in ("present", "missing"):
            self._only(node, {"input", "op"}, location)
            return _presence(name, want_present=op == "present")
        if "other" in node:
            return self._compare_other(node, name, variable, op, location)
        if "value" not in node:
            raise self.error(f"operator {op!r} needs a 'value'", location)
        value = node["value"]
        numeric = variable.type in ("number", "integer")
        if (op in ORDERING or op == "between") and not numeric:
            raise self.error(
                f"operator {op!r} needs a number input; {name!r} is {variable.type}", location
            )
        if op == "between":
            if not (
                isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value)
            ):
                raise self.error(
                    "'between' takes [low, high] (both inclusive)", f"{location}.value"
                )
            if value[0] > value[1]:
                raise self.error("'between' low bound is above the high bound", f"{location}.value")
            return _between(name, value[0], value[1])
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                raise self.error(f"operator {op!r} takes a non-empty list", f"{location}.value")
            for i, item in enumerate(value):
                self._check_value(variable, item, name, f"{location}.value[{i}]")
            members = frozenset(value)
            return _membership(name, members, variable.refinements, negate=op == "not_in")
        self._check_value(variable, value, name, f"{location}.value")
        if op in ("eq", "ne"):
            return _membership(name, frozenset([value]), variable.refinements, negate=op == "ne")
        return _compare(name, COMPARISONS[op], value)

    def _compare_other(
        self, node: dict[str, Any], name: str, variable: Variable, op: str, location: str
    ) -> Condition:
        if "value" in node:
            raise self.error("give either 'value' or 'other', not both", location)
        other = node["other"]
        other_variable = self.variables.get(other)
        if other_variable is None:
            raise self.error(f"unknown input {other!r}", f"{location}.other")
        numeric = {"number", "integer"}
        if (
            op not in COMPARISONS
            or variable.type not in numeric
            or other_variable.type not in numeric
        ):
            raise self.error(
                "'other' compares two number inputs with eq, ne, lt, le, gt or ge", location
            )
        return _compare_two(name, COMPARISONS[op], other)

    def _check_value(self, variable: Variable, value: Any, name: str, location: str) -> None:
        if variable.type in ("number", "integer"):
            if not _is_number(value):
                raise self.error(
                    f"{name!r} is a {variable.type}; {value!r} is not a number", location
                )
        elif variable.type == "enum":
            if value not in (variable.values or ()):
                raise self.error(
                    f"{value!r} is not an allowed value of {name!r} ({list(variable.values or ())})",
                    location,
                )
        elif not isinstance(value, str):
            raise self.error(f"{name!r} is a string; {value!r} is not", location)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _always(env: Mapping[str, Any]) -> Result:
    return True, ()


def _all(parts: list[Condition]) -> Condition:
    def evaluate(env: Mapping[str, Any]) -> Result:
        unknown: list[str] = []
        decided: list[str] = []
        for part in parts:
            result, deciders = part(env)
            if result is False:
                return False, deciders
            (unknown if result is None else decided).extend(deciders)
        if unknown:
            return None, tuple(unknown)
        return True, tuple(decided)

    return evaluate


def _any(parts: list[Condition]) -> Condition:
    def evaluate(env: Mapping[str, Any]) -> Result:
        unknown: list[str] = []
        decided: list[str] = []
        for part in parts:
            result, deciders = part(env)
            if result is True:
                return True, deciders
            (unknown if result is None else decided).extend(deciders)
        if unknown:
            return None, tuple(unknown)
        return False, tuple(decided)

    return evaluate


def _not(part: Condition) -> Condition:
    def evaluate(env: Mapping[str, Any]) -> Result:
        result, deciders = part(env)
        return (None if result is None else not result), deciders

    return evaluate


def _count(parts: list[Condition], compare: Callable[[Any, Any], bool], target: int) -> Condition:
    def evaluate(env: Mapping[str, Any]) -> Result:
        true = unknown = 0
        deciders: list[str] = []
        unknown_deciders: list[str] = []
        for part in parts:
            result, names = part(env)
            if result is None:
                unknown += 1
                unknown_deciders.extend(names)
            else:
                true += result
                deciders.extend(names)
        outcomes = {compare(n, target) for n in range(true, true + unknown + 1)}
        if len(outcomes) == 2:
            return None, tuple(unknown_deciders)
        return outcomes.pop(), tuple(deciders + unknown_deciders)

    return evaluate


def _presence(name: str, *, want_present: bool) -> Condition:
    deciders = (name,)

    def evaluate(env: Mapping[str, Any]) -> Result:
        return (name in env) is want_present, deciders

    return evaluate


def _compare(name: str, compare: Callable[[Any, Any], bool], value: Any) -> Condition:
    deciders = (name,)

    def evaluate(env: Mapping[str, Any]) -> Result:
        given = env.get(name)
        if given is None:
            return None, deciders
        return compare(given, value), deciders

    return evaluate


def _compare_two(name: str, compare: Callable[[Any, Any], bool], other: str) -> Condition:
    deciders = (name, other)

    def evaluate(env: Mapping[str, Any]) -> Result:
        left, right = env.get(name), env.get(other)
        if left is None or right is None:
            return None, deciders
        return compare(left, right), deciders

    return evaluate


def _between(name: str, low: float, high: float) -> Condition:
    deciders = (name,)

    def evaluate(env: Mapping[str, Any]) -> Result:
        given = env.get(name)
        if given is None:
            return None, deciders
        return low <= given <= high, deciders

    return evaluate


def _membership(
    name: str, members: frozenset[Any], refinements: Mapping[Any, tuple[Any, ...]], *, negate: bool
) -> Condition:
    """``in``/``eq`` (or their negation), aware of broad values such as cT2 (= cT2a, cT2b or cT2c)."""
    deciders = (name,)

    def evaluate(env: Mapping[str, Any]) -> Result:
        given = env.get(name)
        if given is None:
            return None, deciders
        if given in members:
            result: bool | None = True
        elif given in refinements:
            hits = {fine in members for fine in refinements[given]}
            result = hits.pop() if len(hits) == 1 else None
        else:
            result = False
        if negate and result is not None:
            result = not result
        return result, deciders

    return evaluate
