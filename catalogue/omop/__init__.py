"""The OMOP CDM tables and columns a dataset describes (``healthdcatap:hasVariables``).

``cdm_variables.json`` is derived from the OHDSI specification CSVs by ``build_variables.py``
(see PROVENANCE.md): the clinical tables of the CDM schema with a one-sentence description of each
column. CDM 5.3 lists the same tables without what 5.4 added.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class Column:
    name: str
    datatype: str  # a csvw built-in datatype: integer, double, date, dateTime, string
    description: str

    @property
    def title(self) -> str:
        return self.name.replace("_", " ").capitalize()


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]


@cache
def _spec() -> dict:
    return json.loads(Path(__file__).with_name("cdm_variables.json").read_text(encoding="utf-8"))


@cache
def tables(cdm_version: str = "5.4") -> tuple[Table, ...]:
    spec = _spec()
    new = spec["new_in_5.4"] if cdm_version == "5.3" else {}
    result = []
    for t in spec["tables"]:
        if t["name"] in new and new[t["name"]] is None:
            continue
        dropped = set(new.get(t["name"]) or ())
        columns = tuple(Column(**c) for c in t["columns"] if c["name"] not in dropped)
        result.append(Table(t["name"], t["description"], columns))
    return tuple(result)
