"""Check a database against the vendored OMOP CDM v5.4 field specification, and derive DDL from it."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from optima_node.db import Database

FIELD_SPEC = "OMOP_CDMv5.4_Field_Level.csv"
TABLE_SPEC = "OMOP_CDMv5.4_Table_Level.csv"

# The tables the agent's cohort and analyses read; cdm_source and concept_ancestor are optional.
AGENT_TABLES: tuple[str, ...] = ("person", "observation_period", "condition_occurrence", "death")


@dataclass(frozen=True)
class FieldSpec:
    table: str
    name: str
    required: bool
    datatype: str  # as in the spec, lower case: integer, date, datetime, float, varchar(n)


def _read_spec_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("optima_node").joinpath("spec", name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@cache
def field_spec() -> dict[str, tuple[FieldSpec, ...]]:
    """CDM table -> its fields, in specification order."""
    tables: dict[str, list[FieldSpec]] = {}
    for row in _read_spec_csv(FIELD_SPEC):
        table = row["cdmTableName"].strip().lower()
        tables.setdefault(table, []).append(
            FieldSpec(
                table=table,
                name=row["cdmFieldName"].strip().lower(),
                required=row["isRequired"].strip().lower() == "yes",
                datatype=row["cdmDatatype"].strip().lower(),
            )
        )
    return {table: tuple(fields) for table, fields in tables.items()}


@cache
def required_tables() -> frozenset[str]:
    """Tables the specification marks required, plus those the agent cannot work without."""
    spec_required = {
        r["cdmTableName"].strip().lower()
        for r in _read_spec_csv(TABLE_SPEC)
        if r["isRequired"].strip().lower() == "yes"
    }
    return frozenset(spec_required | set(AGENT_TABLES))


def family(datatype: str) -> str:
    """Collapse a spec or database type name to integer/float/date/datetime/text/unknown."""
    t = datatype.strip().lower()
    if t in {"date"}:
        return "date"
    if t.startswith(("datetime", "timestamp")):
        return "datetime"
    if "int" in t:  # integer, bigint, smallint
        return "integer"
    if t.startswith(("float", "real", "double", "numeric", "decimal")):
        return "float"
    if "char" in t or t in {"text", "clob", "string"}:
        return "text"
    return "unknown"


# Database families each spec family accepts. NUMERIC is a common, harmless choice for integers.
ACCEPTED: dict[str, set[str]] = {
    "integer": {"integer", "float"},
    "float": {"float", "integer"},
    "date": {"date", "datetime"},
    "datetime": {"datetime"},
    "text": {"text"},
}


def column_type(spec_type: str, dialect: str) -> str:
    fam = family(spec_type)
    if fam == "integer":
        # bigint on PostgreSQL: concept ids of local vocabularies reach 2 000 000 000 and beyond.
        return "BIGINT" if dialect == "postgresql" else "INTEGER"
    if fam == "float":
        return "DOUBLE PRECISION" if dialect == "postgresql" else "REAL"
    if fam == "date":
        return "DATE"
    if fam == "datetime":
        return "TIMESTAMP"
    if spec_type.endswith("(max)"):
        return "TEXT"
    return spec_type.upper()


def create_table_sql(table: str, dialect: str, qualified_name: str | None = None) -> str:
    """CREATE TABLE for one CDM table, columns and nullability from the specification."""
    fields = field_spec()[table]
    columns = ",\n  ".join(
        f"{f.name} {column_type(f.datatype, dialect)}{' NOT NULL' if f.required else ''}"
        for f in fields
    )
    return f"CREATE TABLE {qualified_name or table} (\n  {columns}\n)"


@dataclass
class CheckReport:
    present_tables: list[str] = field(default_factory=list)
    missing_tables: list[str] = field(default_factory=list)
    missing_required_tables: list[str] = field(default_factory=list)
    missing_required_fields: list[tuple[str, str]] = field(default_factory=list)
    mistyped_columns: list[tuple[str, str, str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing_required_tables and not self.missing_required_fields

    def lines(self) -> list[str]:
        out = [f"CDM v5.4 tables present: {len(self.present_tables)} of {len(field_spec())}"]
        if self.missing_required_tables:
            out.append("MISSING required tables: " + ", ".join(self.missing_required_tables))
        optional = [t for t in self.missing_tables if t not in self.missing_required_tables]
        if optional:
            out.append("missing optional tables: " + ", ".join(optional))
        for table, name in self.missing_required_fields:
            out.append(f"MISSING required field: {table}.{name}")
        for table, name, expected, actual in self.mistyped_columns:
            out.append(
                f"mistyped column: {table}.{name} is {actual or '(no type)'}, spec says {expected}"
            )
        out.append(
            "result: OK" if self.ok else "result: FAILED (required tables or fields missing)"
        )
        return out


def check_tables(columns_of: Mapping[str, Mapping[str, str]], *, typed: bool = True) -> CheckReport:
    """Check tables (name -> column -> declared type) against the specification.

    ``typed=False`` for sources without declared types (the header row of a CSV file per table):
    tables and columns are checked, types are left to a check of the values themselves."""
    report = CheckReport()
    present = {name.lower(): columns for name, columns in columns_of.items()}
    for table, fields in field_spec().items():
        if table not in present:
            report.missing_tables.append(table)
            if table in required_tables():
                report.missing_required_tables.append(table)
            continue
        report.present_tables.append(table)
        columns = {name.lower(): kind for name, kind in present[table].items()}
        for f in fields:
            if f.name not in columns:
                if f.required:
                    report.missing_required_fields.append((table, f.name))
                continue
            expected = family(f.datatype)
            if typed and family(columns[f.name]) not in ACCEPTED.get(expected, {expected}):
                report.mistyped_columns.append((table, f.name, f.datatype, columns[f.name]))
    return report


def check_database(db: Database) -> CheckReport:
    spec = field_spec()
    return check_tables({table: db.columns(table) for table in db.tables() if table in spec})
