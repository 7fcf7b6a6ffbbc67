"""Check an extract before it is loaded: the node's CDM conformance check on the CSV headers
(``optima_node.check.check_tables``) and data-quality checks in the spirit of OHDSI's Data Quality
Dashboard, each with a severity. Any failed ``error`` check stops the load; warnings do not.

The report is plain JSON: ``{"checks": [...], "tables": {table: rows}, "errors": n,
"warnings": n, "passed": bool}``; each check has ``check``, ``table``, ``field``, ``severity``,
``description``, ``failed`` (rows or items failing), ``rows`` (rows looked at) and ``examples``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from optima_node.check import check_tables, field_spec

from .extract import BadValue, Extract, parse

ERROR = "error"
WARNING = "warning"
EXAMPLES = 5
HEARTBEAT_ROWS = 10_000
# DQD's plausibleBeforeDeath allows records up to 60 days after death (late administrative entries).
AFTER_DEATH_GRACE_DAYS = 60
# Vocabulary tables hold concept ids by design; they are not checked against CONCEPT.
VOCABULARY_TABLES = {
    "concept",
    "vocabulary",
    "domain",
    "concept_class",
    "concept_relationship",
    "relationship",
    "concept_synonym",
    "concept_ancestor",
    "source_to_concept_map",
    "drug_strength",
}
# Value ranges (DQD plausibleValueLow/High), inclusive.
RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("person", "year_of_birth"): (1850, date.today().year),
    ("person", "month_of_birth"): (1, 12),
    ("person", "day_of_birth"): (1, 31),
    ("drug_exposure", "quantity"): (0, float("inf")),
    ("drug_exposure", "days_supply"): (0, 365 * 5),
    ("drug_exposure", "refills"): (0, float("inf")),
    ("visit_occurrence", "visit_start_date"): (date(1850, 1, 1), date(2100, 1, 1)),
}


@dataclass
class Finding:
    check: str
    table: str
    field: str
    severity: str
    description: str
    failed: int = 0
    rows: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, example: str) -> None:
        self.failed += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "table": self.table,
            "field": self.field,
            "severity": self.severity,
            "description": self.description,
            "failed": self.failed,
            "rows": self.rows,
            "examples": self.examples,
        }


@dataclass
class _People:
    birth_year: dict[int, int] = field(default_factory=dict)
    death: dict[int, date] = field(default_factory=dict)


class Checker:
    def __init__(self, extract: Extract, heartbeat: Callable[[], None] | None = None) -> None:
        self.extract = extract
        self.heartbeat = heartbeat or (lambda: None)
        self.findings: dict[tuple[str, str, str], Finding] = {}
        self.rows: dict[str, int] = {}
        self.people = _People()
        self.concepts: set[int] | None = None

    def finding(self, check: str, table: str, column: str, severity: str, text: str) -> Finding:
        key = (check, table, column)
        if key not in self.findings:
            self.findings[key] = Finding(check, table, column, severity, text)
        return self.findings[key]

    # --- structure: the node's conformance check on the headers ---------------------------------

    def structure(self) -> bool:
        headers = {t: self.extract.header(t) for t in self.extract.cdm_tables}
        report = check_tables(
            {t: dict.fromkeys(cols, "") for t, cols in headers.items()}, typed=False
        )
        for table in report.missing_required_tables:
            self.finding(
                "cdm_table_missing", table, "", ERROR, f"Required CDM table {table} is missing."
            ).add(f"{table}.csv")
        for table, name in report.missing_required_fields:
            self.finding(
                "cdm_field_missing", table, name, ERROR, f"Required column {name} is missing."
            ).add(f"{table}.csv")
        spec = field_spec()
        for table, columns in headers.items():
            known = {f.name for f in spec[table]}
            for name in columns:
                if name not in known:
                    self.finding(
                        "cdm_field_unknown",
                        table,
                        name,
                        WARNING,
                        "Column not in the CDM v5.4 specification; it is not loaded.",
                    ).add(name)
        for name in self.extract.other_files:
            self.finding(
                "cdm_file_unknown", "", "", WARNING, "File not a CDM v5.4 table; not loaded."
            ).add(name)
        return not report.missing_required_tables and not report.missing_required_fields

    # --- values ----------------------------------------------------------------------------------

    def values(self) -> None:
        tables = self.extract.cdm_tables
        if "concept" in tables:
            concepts = {
                int(v)
                for r in self.extract.rows("concept")
                if (v := r.get("concept_id", "")).isdigit()
            }
            self.concepts = concepts or None
        ordered = [t for t in ("person", "death") if t in tables]
        ordered += [t for t in tables if t not in ordered]
        for table in ordered:
            self._table(table)

    def _table(self, table: str) -> None:
        specs = {f.name: f for f in field_spec()[table]}
        header = [c for c in self.extract.header(table) if c in specs]
        event_date = next((c for c in header if c.endswith("_date")), None)
        end_pairs = [
            (c, c.replace("_start_", "_end_"))
            for c in header
            if "_start_date" in c and c.replace("_start_", "_end_") in header
        ]
        check_concepts = self.concepts is not None and table not in VOCABULARY_TABLES
        count = 0
        for number, row in enumerate(self.extract.rows(table), start=2):
            count += 1
            if count % HEARTBEAT_ROWS == 0:
                self.heartbeat()
            values: dict[str, Any] = {}
            for name in header:
                spec = specs[name]
                try:
                    value = parse(row.get(name, ""), spec.datatype)
                except BadValue as exc:
                    self.finding(
                        "cdm_datatype",
                        table,
                        name,
                        ERROR,
                        f"Values are not of the specified type ({spec.datatype}).",
                    ).add(f"line {number}: {exc}")
                    continue
                values[name] = value
                if value is None:
                    if spec.required:
                        self.finding(
                            "is_required", table, name, ERROR, "A required value is empty."
                        ).add(f"line {number}")
                    continue
                bounds = RANGES.get((table, name))
                if bounds and not bounds[0] <= value <= bounds[1]:
                    self.finding(
                        "plausible_value_range",
                        table,
                        name,
                        WARNING,
                        f"Value outside {bounds[0]}…{bounds[1]}.",
                    ).add(f"line {number}: {value}")
                if (
                    check_concepts
                    and name.endswith("_concept_id")
                    and value
                    and value not in self.concepts
                ):
                    self.finding(
                        "concept_in_vocabulary",
                        table,
                        name,
                        WARNING,
                        "Concept id not in the CONCEPT table shipped with the extract.",
                    ).add(f"line {number}: {value}")
            self._row_rules(table, number, values, event_date, end_pairs)
        self.rows[table] = count

    def _row_rules(self, table, number, values, event_date, end_pairs) -> None:
        person = values.get("person_id")
        if table == "person":
            if person is not None and values.get("year_of_birth") is not None:
                self.people.birth_year[person] = values["year_of_birth"]
            return
        if table == "death" and person is not None and values.get("death_date"):
            self.people.death[person] = values["death_date"]
        if person is not None and self.people.birth_year and person not in self.people.birth_year:
            self.finding(
                "person_exists", table, "person_id", ERROR, "person_id not in the PERSON table."
            ).add(f"line {number}: {person}")
            return
        when = values.get(event_date) if event_date else None
        if person is not None and isinstance(when, date):
            born = self.people.birth_year.get(person)
            if born is not None and when.year < born:
                self.finding(
                    "plausible_after_birth",
                    table,
                    event_date,
                    ERROR,
                    "Event before the person's year of birth.",
                ).add(f"line {number}: {when} < {born}")
            died = self.people.death.get(person)
            if table != "death" and died and (when - died).days > AFTER_DEATH_GRACE_DAYS:
                self.finding(
                    "plausible_before_death",
                    table,
                    event_date,
                    WARNING,
                    f"Event more than {AFTER_DEATH_GRACE_DAYS} days after death.",
                ).add(f"line {number}: {when} > {died}")
        for start, end in end_pairs:
            if values.get(start) and values.get(end) and values[end] < values[start]:
                severity = ERROR if table == "observation_period" else WARNING
                self.finding(
                    "plausible_start_before_end", table, end, severity, f"{end} before {start}."
                ).add(f"line {number}")


def run_checks(extract: Extract, *, heartbeat: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run every check and return the report (see the module's docstring). ``heartbeat()`` is
    called as rows are read, so a long check shows that it is alive."""
    checker = Checker(extract, heartbeat)
    if checker.structure():
        checker.values()
    for finding in checker.findings.values():
        finding.rows = checker.rows.get(finding.table, finding.rows)
    return report_from(checker.findings.values(), checker.rows)


def report_from(findings: Iterable[Finding], rows: dict[str, int]) -> dict[str, Any]:
    checks = sorted(
        (f.as_dict() for f in findings),
        key=lambda c: (c["severity"] != ERROR, c["table"], c["field"], c["check"]),
    )
    errors = sum(1 for c in checks if c["severity"] == ERROR)
    return {
        "checks": checks,
        "tables": dict(sorted(rows.items())),
        "errors": errors,
        "warnings": len(checks) - errors,
        "passed": errors == 0,
        "persons": rows.get("person", 0),
    }
