"""A thin DB-API wrapper so the rest of the agent writes one SQL text for SQLite and PostgreSQL.

SQL in this package uses ``?`` placeholders and ``{table}`` names passed through :meth:`Database.t`;
the wrapper rewrites placeholders for psycopg and qualifies table names with the CDM schema.
psycopg is imported only when a postgresql:// URL is used, so SQLite-only sites need no driver.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal
from urllib.parse import unquote, urlparse

Dialect = Literal["sqlite", "postgresql"]
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DatabaseError(RuntimeError):
    """The database cannot be reached or the URL is unusable."""


def quote_identifier(name: str) -> str:
    # Schema and table names come from configuration; accept plain identifiers only.
    if not _IDENTIFIER.match(name):
        raise DatabaseError(f"not a plain SQL identifier: {name!r}")
    return name


@dataclass
class Database:
    connection: Any
    dialect: Dialect
    schema: str | None = None
    _tables: set[str] | None = field(default=None, repr=False)

    def t(self, table: str) -> str:
        """Schema-qualified table name."""
        quote_identifier(table)
        return f"{quote_identifier(self.schema)}.{table}" if self.schema else table

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self.connection.cursor()
        try:
            cursor.execute(self._sql(sql), tuple(params))
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    def execute_script(self, statements: Iterable[str]) -> None:
        cursor = self.connection.cursor()
        try:
            for statement in statements:
                cursor.execute(statement)
        finally:
            cursor.close()

    def insert_many(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        if not rows:
            return
        for column in columns:
            quote_identifier(column)
        marks = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {self.t(table)} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
        cursor = self.connection.cursor()
        try:
            cursor.executemany(self._sql(sql), rows)
        finally:
            cursor.close()

    def commit(self) -> None:
        self.connection.commit()

    def rollback(self) -> None:
        # The agent only reads; ending the transaction keeps PostgreSQL from holding snapshots.
        self.connection.rollback()

    def close(self) -> None:
        with suppress(Exception):
            self.connection.close()

    def tables(self) -> set[str]:
        """Lower-case names of the tables in the CDM schema (cached)."""
        if self._tables is None:
            if self.dialect == "sqlite":
                prefix = f"{quote_identifier(self.schema)}." if self.schema else ""
                sql = f"SELECT name FROM {prefix}sqlite_master WHERE type IN ('table', 'view')"  # noqa: S608
                rows = self.execute(sql)
            else:
                rows = self.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                    (self.schema or "public",),
                )
            self._tables = {str(r[0]).lower() for r in rows}
        return self._tables

    def forget_tables(self) -> None:
        self._tables = None

    def columns(self, table: str) -> dict[str, str]:
        """Column name -> declared type (lower case) for one table."""
        if self.dialect == "sqlite":
            prefix = f"{quote_identifier(self.schema)}." if self.schema else ""
            rows = self.execute(f"PRAGMA {prefix}table_info({quote_identifier(table)})")
            return {str(r[1]).lower(): str(r[2]).lower() for r in rows}
        rows = self.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ?",
            (self.schema or "public", table),
        )
        return {str(r[0]).lower(): str(r[1]).lower() for r in rows}

    def has_table(self, table: str) -> bool:
        return table.lower() in self.tables()


def to_date(value: Any) -> date | None:
    """Dates come back as ``date`` from psycopg and as ISO text (maybe with a time) from SQLite."""
    if value is None or isinstance(value, date):
        return value
    text = str(value).strip()
    if not text:
        return None
    return date.fromisoformat(text[:10])


def connect(url: str, schema: str | None = None) -> Database:
    """Open ``sqlite:///path`` (``sqlite:///:memory:`` too) or ``postgresql://...``."""
    parsed = urlparse(url)
    if schema is not None:
        quote_identifier(schema)
    if parsed.scheme == "sqlite":
        path = unquote(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else ""
        if not path:
            raise DatabaseError("a SQLite URL looks like sqlite:///path/to/file.sqlite3")
        try:
            connection = sqlite3.connect(path)
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open SQLite database {path}: {exc}") from exc
        return Database(connection, "sqlite", schema)
    if parsed.scheme in {"postgresql", "postgres"}:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the site's install
            raise DatabaseError(
                "psycopg 3 is needed for postgresql:// URLs (pip install 'psycopg[binary]')"
            ) from exc
        try:
            connection = psycopg.connect(url, autocommit=False)
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot connect to PostgreSQL: {exc}".strip()) from exc
        return Database(connection, "postgresql", schema)
    raise DatabaseError(
        f"unsupported database URL scheme {parsed.scheme!r}; use sqlite:/// or postgresql://"
    )
