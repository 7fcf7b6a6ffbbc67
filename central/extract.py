"""Read an OMOP extract: a zip of one CSV per CDM table, named as the OHDSI ETL tools write them
(``PERSON.csv`` or ``person.csv``, at the top or in one folder; macOS ``__MACOSX/`` entries skipped).
Values are parsed by the family of their specification type (``optima_node.check.family``)."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

from optima_node.check import family, field_spec

# A CSV field may be as long as a note's text; Python's default (128 KiB) is too short for some.
csv.field_size_limit(16 * 1024 * 1024)


class ExtractError(ValueError):
    """Not a zip, or a zip without CSV files."""


@dataclass(frozen=True)
class Extract:
    archive: zipfile.ZipFile
    members: dict[str, str]  # lower-case table name -> member name in the zip

    @property
    def cdm_tables(self) -> list[str]:
        spec = field_spec()
        return [t for t in self.members if t in spec]

    @property
    def other_files(self) -> list[str]:
        spec = field_spec()
        return [self.members[t] for t in self.members if t not in spec]

    def header(self, table: str) -> list[str]:
        with self._open(table) as text:
            return [name.strip().lower() for name in next(csv.reader(text), [])]

    def rows(self, table: str) -> Iterator[dict[str, str]]:
        """Rows as column -> text (lower-case column names, empty text for a missing value)."""
        with self._open(table) as text:
            reader = csv.reader(text)
            columns = [name.strip().lower() for name in next(reader, [])]
            for values in reader:
                if values:
                    yield dict(zip(columns, values, strict=False))

    def _open(self, table: str) -> IO[str]:
        raw = self.archive.open(self.members[table])
        return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def open_extract(plain: IO[bytes]) -> Extract:
    if not zipfile.is_zipfile(plain):
        raise ExtractError("the file is not a zip archive")
    plain.seek(0)
    try:
        archive = zipfile.ZipFile(plain)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ExtractError(f"the zip archive cannot be read: {exc}") from exc
    members: dict[str, str] = {}
    for info in archive.infolist():
        name = info.filename
        base = name.rsplit("/", 1)[-1]
        if info.is_dir() or name.startswith("__MACOSX/") or base.startswith("._"):
            continue
        if base.lower().endswith(".csv"):
            members.setdefault(base[:-4].strip().lower(), name)
    if not members:
        raise ExtractError("the zip archive holds no CSV files (one per OMOP CDM table)")
    return Extract(archive, members)


class BadValue(ValueError):
    pass


def parse(text: str, datatype: str) -> Any:
    """A CSV value as the Python value of its spec type; ``None`` when empty; BadValue otherwise."""
    text = text.strip()
    if text == "" or (text == "NA" and family(datatype) != "text"):
        return None
    kind = family(datatype)
    try:
        if kind == "integer":
            number = float(text) if any(c in text for c in ".eE") else int(text)
            if isinstance(number, float):
                if not number.is_integer():
                    raise BadValue(text)
                number = int(number)
            return number
        if kind == "float":
            return float(text)
        if kind == "date":
            if len(text) < 10:
                raise BadValue(text)
            return date.fromisoformat(text[:10])
        if kind == "datetime":
            return datetime.fromisoformat(text.replace(" UTC", "").replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadValue(text) from exc
    return text
