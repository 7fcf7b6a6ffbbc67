"""Run a compiled Circe definition on the node's CDM and turn its rows into a cohort.

Concept sets are resolved first with the node's ``concept_ancestor`` and ``concept_relationship``;
the compiled statement then yields qualified events with a 0/1 flag per inclusion rule, and the
rest follows Circe's order: inclusion rules (with attrition), the expression limit, the end
strategy capped at the end of the observation period, censoring, and eras collapsed with the era
pad. Person-level rows live only in this process's memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from optima_node.circe.model import CohortExpression, ConceptSet
from optima_node.circe.sql import COLUMNS, RULE_PREFIX, Compiler
from optima_node.cohort import Cohort
from optima_node.cohort import _datetime64 as datetime64  # one date parser for both cohorts
from optima_node.db import Database, to_date


class CirceError(ValueError):
    """The definition cannot run on this node (e.g. a vocabulary table it needs is missing)."""


@dataclass(frozen=True)
class Entry:
    person_id: int
    start_date: date
    end_date: date


@dataclass(frozen=True)
class CirceCohort:
    entries: list[Entry]  # every era, ordered by person and start date
    attrition: list[tuple[str, int]]  # ("qualifying events", n), then persons left after each rule
    cohort: Cohort  # the first era of each person, for the analyses


def _descendants(db: Database, ancestors: set[int]) -> set[int]:
    if not db.has_table("concept_ancestor"):
        raise CirceError("includeDescendants needs the concept_ancestor table")
    marks = ", ".join("?" for _ in ancestors)
    sql = (
        f"SELECT descendant_concept_id FROM {db.t('concept_ancestor')} "  # noqa: S608
        f"WHERE ancestor_concept_id IN ({marks})"
    )
    return {int(r[0]) for r in db.execute(sql, sorted(ancestors))}


def resolve_concept_set(db: Database, concept_set: ConceptSet) -> set[int]:
    """Circe's rule: (included items, with descendants and mapped source codes where asked) minus
    (excluded items, expanded the same way)."""
    result: dict[bool, set[int]] = {}
    for excluded in (False, True):
        items = [i for i in concept_set.expression.items if i.isExcluded == excluded]
        resolved: set[int] = set()
        for item in items:
            one = {item.concept.CONCEPT_ID}
            expanded = one | (_descendants(db, one) if item.includeDescendants else set())
            if item.includeMapped:
                expanded |= _maps_to(db, expanded)
            resolved |= expanded
        result[excluded] = resolved
    return result[False] - result[True]


def _maps_to(db: Database, targets: set[int]) -> set[int]:
    if not db.has_table("concept_relationship"):
        raise CirceError("includeMapped needs the concept_relationship table")
    marks = ", ".join("?" for _ in targets)
    sql = (
        f"SELECT concept_id_1 FROM {db.t('concept_relationship')} "  # noqa: S608
        f"WHERE relationship_id = 'Maps to' AND concept_id_2 IN ({marks})"
    )
    return {int(r[0]) for r in db.execute(sql, sorted(targets))}


def compile_sql(db: Database, expression: CohortExpression) -> str:
    codesets = {cs.id: resolve_concept_set(db, cs) for cs in expression.ConceptSets}
    return Compiler(db, expression, codesets).compile()


def _collapse(rows: list[tuple[int, date, date]], pad: int) -> list[Entry]:
    entries: list[Entry] = []
    for person, start, end in sorted(rows):
        last = entries[-1] if entries else None
        if last and last.person_id == person and start <= last.end_date + timedelta(days=pad):
            entries[-1] = Entry(person, last.start_date, max(last.end_date, end))
        else:
            entries.append(Entry(person, start, end))
    return entries


def build_circe_cohort(db: Database, expression: CohortExpression) -> CirceCohort:
    rows = db.execute(compile_sql(db, expression))
    rules = len(expression.InclusionRules)
    events = [dict(zip(COLUMNS, row[: len(COLUMNS)], strict=True)) for row in rows]
    flags = [row[len(COLUMNS) :] for row in rows]
    attrition = [("qualifying events", len({e["person_id"] for e in events}))]
    for i, rule in enumerate(expression.InclusionRules):
        left = {e["person_id"] for e, f in zip(events, flags, strict=True) if all(f[: i + 1])}
        attrition.append((rule.name or f"{RULE_PREFIX}{i}", len(left)))
    included = [e for e, f in zip(events, flags, strict=True) if all(f[:rules])]
    if expression.ExpressionLimit.Type == "First":
        seen: set[int] = set()
        first = []
        for e in included:  # rows come ordered by person, start date, event
            if e["person_id"] not in seen:
                seen.add(e["person_id"])
                first.append(e)
        included = first

    strategy = expression.EndStrategy.DateOffset if expression.EndStrategy else None
    ends: list[tuple[int, date, date]] = []
    person_rows: dict[int, dict] = {}
    for e in included:
        start, op_end = to_date(e["start_date"]), to_date(e["op_end"])
        end = op_end
        if strategy is not None:
            anchor = start if strategy.DateField == "StartDate" else to_date(e["end_date"])
            end = min(anchor + timedelta(days=strategy.Offset), op_end)
        censor = to_date(e["censor_date"])
        if censor is not None:
            end = min(end, censor)
        ends.append((int(e["person_id"]), start, end))
        person_rows.setdefault(int(e["person_id"]), e)
    entries = _collapse(ends, expression.CollapseSettings.EraPad)
    return CirceCohort(entries, attrition, _first_era_cohort(entries, person_rows))


def _first_era_cohort(entries: list[Entry], person_rows: dict[int, dict]) -> Cohort:
    first: dict[int, Entry] = {}
    for entry in entries:
        first.setdefault(entry.person_id, entry)
    people = sorted(first)
    return Cohort(
        person_id=np.asarray(people, dtype=np.int64),
        index_date=datetime64([first[p].start_date for p in people]),
        year_of_birth=np.asarray([person_rows[p]["year_of_birth"] for p in people], dtype=np.int64),
        gender_concept_id=np.asarray(
            [person_rows[p]["gender_concept_id"] for p in people], dtype=np.int64
        ),
        # Follow-up ends with the cohort era (the end strategy, censoring and observation end).
        period_end=datetime64([first[p].end_date for p in people]),
        death_date=datetime64([person_rows[p]["death_date"] for p in people]),
    )
