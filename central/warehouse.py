"""The central analysis database: one schema per dataset version.

With ``CENTRAL_OMOP_DATABASE_URL`` (PostgreSQL) each version is the schema ``ds_<dataset>_v<n>``;
with nothing configured, each version is a SQLite file ``CENTRAL_DIR/omop/ds_<dataset>_v<n>.sqlite3``.
Tables are created from the CDM v5.4 specification (``optima_node.check.create_table_sql``), the
same DDL the node agent's synthetic data uses, so the node agent reads a version as it reads any CDM.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from django.conf import settings

from optima_node.check import create_table_sql, field_spec
from optima_node.db import Database, connect, quote_identifier

from .extract import Extract, parse

BATCH_ROWS = 5000


def is_postgresql() -> bool:
    return settings.CENTRAL_OMOP_DATABASE_URL.startswith(("postgresql://", "postgres://"))


def location_for(dataset_id: int, number: int) -> str:
    name = f"ds_{int(dataset_id)}_v{int(number)}"
    if is_postgresql():
        return name
    return str(Path(settings.CENTRAL_DIR) / "omop" / f"{name}.sqlite3")


def served_location(dataset_id: int) -> str:
    """The stable name of a dataset's served version, which the central node reads: a schema of
    views ``ds_<dataset>`` (PostgreSQL) or a symbolic link ``ds_<dataset>.sqlite3`` (SQLite)."""
    name = f"ds_{int(dataset_id)}"
    if is_postgresql():
        return name
    return str(Path(settings.CENTRAL_DIR) / "omop" / f"{name}.sqlite3")


def connection_for(location: str) -> tuple[str, str | None]:
    """(database URL, CDM schema) under which the node agent reads ``location``."""
    if is_postgresql():
        return settings.CENTRAL_OMOP_DATABASE_URL, location
    return f"sqlite:///{location}", None


def serve(dataset_id: int, location: str | None) -> None:
    """Point the dataset's stable name at ``location`` in one step (``None``: serve nothing).

    PostgreSQL: the views of ``ds_<dataset>`` are replaced in one transaction, so a reader sees
    the old version or the new one. SQLite: the link is replaced by a rename; an agent holding the
    old file open reads the old version until it reopens it (the central node's supervisor has its
    agent reopen when the listing shows a new version)."""
    served = served_location(dataset_id)
    if is_postgresql():
        db = connect(settings.CENTRAL_OMOP_DATABASE_URL)
        try:
            statements = [f"DROP SCHEMA IF EXISTS {served} CASCADE"]
            if location is not None:
                quote_identifier(location)
                tables = sorted(t for t in _tables_of(db, location) if t in field_spec())
                statements.append(f"CREATE SCHEMA {served}")
                statements += [
                    f"CREATE VIEW {served}.{t} AS SELECT * FROM {location}.{t}"  # noqa: S608
                    for t in tables
                ]
            db.execute_script(statements)
            db.commit()
        finally:
            db.close()
        return
    link = Path(served)
    if location is None:
        link.unlink(missing_ok=True)
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    staged = link.with_suffix(".next")
    staged.unlink(missing_ok=True)
    staged.symlink_to(Path(location).name)
    os.replace(staged, link)


def _tables_of(db: Database, schema: str) -> set[str]:
    rows = db.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", (schema,)
    )
    return {str(r[0]).lower() for r in rows}


def _sqlite_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return value


def load(
    extract: Extract,
    location: str,
    *,
    total_rows: int,
    progress: Callable[[int], None],
    attempt: int = 1,
):
    """Create the version's tables and copy every CDM table of ``extract`` into them, all or
    nothing. ``progress(percent)`` is called as rows go in (it may raise to stop the load).
    Returns rows loaded per table. With SQLite each ``attempt`` writes its own partial file, so a
    worker given up for lost cannot touch the file of the attempt that replaced it."""
    if is_postgresql():
        db = connect(settings.CENTRAL_OMOP_DATABASE_URL, schema=location)
        target = None
    else:
        target = Path(location)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = _partial(target, attempt)
        partial.unlink(missing_ok=True)
        db = connect(f"sqlite:///{partial}")
    counts: dict[str, int] = {}
    try:
        statements = []
        if db.dialect == "postgresql":
            statements += [
                f"DROP SCHEMA IF EXISTS {location} CASCADE",
                f"CREATE SCHEMA {location}",
            ]
        tables = sorted(extract.cdm_tables)
        statements += [create_table_sql(t, db.dialect, db.t(t)) for t in tables]
        db.execute_script(statements)
        done = 0
        for table in tables:
            counts[table] = 0
            specs = {f.name: f.datatype for f in field_spec()[table]}
            columns = [c for c in extract.header(table) if c in specs]
            batch: list[tuple] = []
            for row in extract.rows(table):
                values = tuple(parse(row.get(c, ""), specs[c]) for c in columns)
                if db.dialect == "sqlite":
                    values = tuple(_sqlite_value(v) for v in values)
                batch.append(values)
                if len(batch) >= BATCH_ROWS:
                    db.insert_many(table, columns, batch)
                    counts[table] += len(batch)
                    done += len(batch)
                    batch = []
                    progress(min(99, int(100 * done / max(total_rows, 1))))
            db.insert_many(table, columns, batch)
            counts[table] += len(batch)
            done += len(batch)
            progress(min(99, int(100 * done / max(total_rows, 1))))
        db.commit()
    except BaseException:
        db.rollback()
        db.close()
        if target is not None:
            partial.unlink(missing_ok=True)
        raise
    db.close()
    if target is not None:
        os.replace(partial, target)
    return counts


def _partial(target: Path, attempt: int) -> Path:
    return target.with_name(f"{target.stem}.attempt{int(attempt)}.partial")


def discard(location: str) -> None:
    """Remove whatever an unfinished load left at ``location``: its schema, or its SQLite file and
    the partial files of every attempt (idempotent; for a location no version uses)."""
    drop(location)
    if not is_postgresql():
        target = Path(location)
        for partial in target.parent.glob(f"{target.stem}.attempt*.partial"):
            partial.unlink(missing_ok=True)


def drop(location: str) -> None:
    """Remove a version's data (idempotent)."""
    if is_postgresql():
        db: Database = connect(settings.CENTRAL_OMOP_DATABASE_URL)
        try:
            db.execute_script([f"DROP SCHEMA IF EXISTS {location} CASCADE"])
            db.commit()
        finally:
            db.close()
        return
    Path(location).unlink(missing_ok=True)
