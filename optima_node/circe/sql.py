# ruff: noqa: S608 - integer/float literals and Database.t names only (see the docstring)
"""Compile a :class:`CohortExpression` to one read-only SELECT for SQLite or PostgreSQL.

The node's database user only reads, so unlike Circe's own SQL (temporary tables and an INSERT into
a cohort table) everything is one statement of common table expressions. The text holds integer and
float literals only, each produced here by ``int()`` / ``float()`` from a validated model, plus table
names passed through :meth:`Database.t`; no string from a definition reaches the SQL, hence S608.

One row per qualified event: the event, its observation period, the person's birth year, sex and
first death, one 0/1 column per inclusion rule and the first censoring event. The rest (limits, end
dates, eras, attrition) is done on those rows in :mod:`optima_node.circe.build`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from optima_node.circe.model import (
    CohortExpression,
    CorrelatedCriteria,
    CriteriaGroup,
    CriteriaSpec,
    DemographicCriteria,
    NumericRange,
)
from optima_node.db import Database


@dataclass(frozen=True)
class Domain:
    table: str
    id_column: str
    concept_column: str
    start_column: str
    end_column: str | None  # None: the end is the start plus one day, as Circe has it


DOMAINS: dict[str, Domain] = {
    "ConditionOccurrence": Domain(
        "condition_occurrence",
        "condition_occurrence_id",
        "condition_concept_id",
        "condition_start_date",
        "condition_end_date",
    ),
    "DrugExposure": Domain(
        "drug_exposure",
        "drug_exposure_id",
        "drug_concept_id",
        "drug_exposure_start_date",
        "drug_exposure_end_date",
    ),
    "ProcedureOccurrence": Domain(
        "procedure_occurrence",
        "procedure_occurrence_id",
        "procedure_concept_id",
        "procedure_date",
        None,
    ),
    "Measurement": Domain(
        "measurement", "measurement_id", "measurement_concept_id", "measurement_date", None
    ),
    "Observation": Domain(
        "observation", "observation_id", "observation_concept_id", "observation_date", None
    ),
    "Death": Domain("death", "person_id", "cause_concept_id", "death_date", None),
}

RULE_PREFIX = "rule_"
COLUMNS = (
    "person_id",
    "event_id",
    "start_date",
    "end_date",
    "op_start",
    "op_end",
    "year_of_birth",
    "gender_concept_id",
    "death_date",
    "censor_date",
)


class Dialect:
    def __init__(self, name: str) -> None:
        self.name = name

    def day(self, column: str) -> str:
        # SQLite keeps dates as text, sometimes with a time part; date() makes them day-exact.
        return f"date({column})" if self.name == "sqlite" else column

    def add_days(self, expression: str, days: int) -> str:
        days = int(days)
        if days == 0:
            return expression
        if self.name == "sqlite":
            return f"date({expression}, '{days:+d} days')"
        return f"({expression} + {days})"

    def year(self, expression: str) -> str:
        if self.name == "sqlite":
            return f"CAST(strftime('%Y', {expression}) AS INTEGER)"
        return f"CAST(EXTRACT(YEAR FROM {expression}) AS INTEGER)"


def _ids(ids: set[int] | list[int]) -> str:
    return ", ".join(str(int(i)) for i in sorted(ids))


def _in(column: str, ids: set[int]) -> str:
    return f"{column} IN ({_ids(ids)})" if ids else "1 = 0"


def numeric_condition(expression: str, value_range: NumericRange) -> str:
    value = repr(float(value_range.Value))
    extent = repr(float(value_range.Extent)) if value_range.Extent is not None else None
    ops = {"lt": "<", "lte": "<=", "eq": "=", "!eq": "<>", "gt": ">", "gte": ">="}
    if value_range.Op in ops:
        return f"{expression} {ops[value_range.Op]} {value}"
    between = f"({expression} >= {value} AND {expression} <= {extent})"
    return between if value_range.Op == "bt" else f"({expression} IS NOT NULL AND NOT {between})"


class Compiler:
    def __init__(
        self, db: Database, expression: CohortExpression, codesets: dict[int, set[int]]
    ) -> None:
        self.db = db
        self.d = Dialect(db.dialect)
        self.expression = expression
        self.codesets = codesets
        self.ctes: list[tuple[str, str]] = []

    # --- events of one criterion --------------------------------------------------------------

    def events(self, criteria: CriteriaSpec) -> str:
        """A CTE name whose rows are (person_id, source_id, start_date, end_date)."""
        domain = DOMAINS[criteria.domain]
        spec = criteria.spec
        start = self.d.day(domain.start_column)
        plus_one = self.d.add_days(start, 1)
        end = (
            f"COALESCE({self.d.day(domain.end_column)}, {plus_one})"
            if domain.end_column
            else plus_one
        )
        where = []
        if spec.CodesetId is not None:
            where.append(_in(domain.concept_column, self.codesets[spec.CodesetId]))
        base = (
            f"SELECT person_id, {domain.id_column} AS source_id, {start} AS start_date, "
            f"{end} AS end_date"
            + (", value_as_number" if hasattr(spec, "ValueAsNumber") else "")
            + f" FROM {self.db.t(domain.table)}"
            + (f" WHERE {' AND '.join(where)}" if where else "")
        )
        outer = []
        if getattr(spec, "First", False):
            base = (
                "SELECT *, ROW_NUMBER() OVER (PARTITION BY person_id "
                f"ORDER BY start_date, source_id) AS occurrence FROM ({base}) f"
            )
            outer.append("occurrence = 1")
        if getattr(spec, "ValueAsNumber", None) is not None:
            outer.append(numeric_condition("value_as_number", spec.ValueAsNumber))
        sql = f"SELECT person_id, source_id, start_date, end_date FROM ({base}) e" + (
            f" WHERE {' AND '.join(outer)}" if outer else ""
        )
        name = f"criteria_{len(self.ctes)}"
        self.ctes.append((name, sql))
        return name

    # --- inclusion rules ----------------------------------------------------------------------

    def correlated(self, item: CorrelatedCriteria) -> str:
        source = self.events(item.Criteria)
        conditions = ["a.person_id = q.person_id"]
        start, end = item.StartWindow.Start.offset, item.StartWindow.End.offset
        if start is not None:
            conditions.append(f"a.start_date >= {self.d.add_days('q.start_date', start)}")
        if end is not None:
            conditions.append(f"a.start_date <= {self.d.add_days('q.start_date', end)}")
        if not item.IgnoreObservationPeriod:
            conditions += ["a.start_date >= q.op_start", "a.start_date <= q.op_end"]
        op = {0: "=", 1: "<=", 2: ">="}[item.Occurrence.Type]
        count = f"(SELECT COUNT(*) FROM {source} a WHERE {' AND '.join(conditions)})"
        return f"{count} {op} {int(item.Occurrence.Count)}"

    def demographic(self, item: DemographicCriteria) -> str:
        conditions = []
        if item.Age is not None:
            age = f"({self.d.year('q.start_date')} - p.year_of_birth)"
            conditions.append(numeric_condition(age, item.Age))
        if item.Gender:
            conditions.append(_in("p.gender_concept_id", {g.CONCEPT_ID for g in item.Gender}))
        return " AND ".join(conditions) or "1 = 1"

    def group(self, group: CriteriaGroup) -> str:
        parts = [self.correlated(c) for c in group.CriteriaList]
        parts += [self.demographic(c) for c in group.DemographicCriteriaList]
        parts += [self.group(g) for g in group.Groups]
        if not parts:
            return "1 = 1"
        total = " + ".join(f"(CASE WHEN {p} THEN 1 ELSE 0 END)" for p in parts)
        needed: dict[str, Callable[[], str]] = {
            "ALL": lambda: f"= {len(parts)}",
            "ANY": lambda: ">= 1",
            "AT_LEAST": lambda: f">= {int(group.Count or 0)}",
            "AT_MOST": lambda: f"<= {int(group.Count or 0)}",
        }
        return f"({total}) {needed[group.Type]()}"

    # --- the whole statement ------------------------------------------------------------------

    def compile(self) -> str:
        primary = self.expression.PrimaryCriteria
        sources = [self.events(c) for c in primary.CriteriaList]
        union = " UNION ALL ".join(
            f"SELECT person_id, source_id, start_date, end_date, {i} AS criterion FROM {s}"
            for i, s in enumerate(sources)
        )
        op_start = self.d.day("op.observation_period_start_date")
        op_end = self.d.day("op.observation_period_end_date")
        window = primary.ObservationWindow
        ranked = (
            "SELECT e.person_id, e.start_date, e.end_date, "
            f"{op_start} AS op_start, {op_end} AS op_end, "
            "ROW_NUMBER() OVER (ORDER BY e.person_id, e.start_date, e.criterion, e.source_id) "
            "AS event_id, ROW_NUMBER() OVER (PARTITION BY e.person_id "
            "ORDER BY e.start_date, e.criterion, e.source_id) AS ordinal "
            f"FROM ({union}) e JOIN {self.db.t('observation_period')} op "
            f"ON op.person_id = e.person_id AND {op_start} <= e.start_date "
            f"AND e.start_date <= {op_end} "
            f"WHERE {self.d.add_days(op_start, window.PriorDays)} <= e.start_date "
            f"AND {self.d.add_days('e.start_date', window.PostDays)} <= {op_end}"
        )
        keep = " WHERE ordinal = 1" if primary.PrimaryCriteriaLimit.Type == "First" else ""
        self.ctes.append(("primary_events", f"SELECT * FROM ({ranked}) r{keep}"))
        qualified = (
            "SELECT person_id, event_id, start_date, end_date, op_start, op_end, "
            "ROW_NUMBER() OVER (PARTITION BY person_id ORDER BY start_date, event_id) AS ordinal "
            "FROM primary_events"
        )
        keep = " WHERE ordinal = 1" if self.expression.QualifiedLimit.Type == "First" else ""
        self.ctes.append(("qualified_events", f"SELECT * FROM ({qualified}) r{keep}"))

        rules = [
            f"CASE WHEN {self.group(rule.expression)} THEN 1 ELSE 0 END AS {RULE_PREFIX}{i}"
            for i, rule in enumerate(self.expression.InclusionRules)
        ]
        censor = "NULL"
        if self.expression.CensoringCriteria:
            names = [self.events(c) for c in self.expression.CensoringCriteria]
            union = " UNION ALL ".join(f"SELECT person_id, start_date FROM {n}" for n in names)
            censor = (
                f"(SELECT MIN(c.start_date) FROM ({union}) c WHERE c.person_id = q.person_id "
                "AND c.start_date >= q.start_date AND c.start_date <= q.op_end)"
            )
        death = (
            f"(SELECT MIN({self.d.day('d.death_date')}) FROM {self.db.t('death')} d "
            "WHERE d.person_id = q.person_id)"
        )
        select = ", ".join(
            [
                "q.person_id, q.event_id, q.start_date, q.end_date, q.op_start, q.op_end",
                "p.year_of_birth, p.gender_concept_id",
                f"{death} AS death_date",
                f"{censor} AS censor_date",
                *rules,
            ]
        )
        with_clause = ",\n".join(f"{name} AS ({sql})" for name, sql in self.ctes)
        return (
            f"WITH {with_clause}\nSELECT {select}\nFROM qualified_events q "
            f"JOIN {self.db.t('person')} p ON p.person_id = q.person_id\n"
            "ORDER BY q.person_id, q.start_date, q.event_id"
        )
