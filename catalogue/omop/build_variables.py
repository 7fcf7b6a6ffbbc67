"""Build ``cdm_variables.json`` (the OMOP CDM tables and columns a dataset describes with
``healthdcatap:hasVariables``) from the OHDSI specification CSVs.

Run from the project root with the OHDSI CSVs beside the project (see PROVENANCE.md):
    python catalogue/omop/build_variables.py ../shared/omop
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

# The clinical tables of the CDM schema an OPTIMA node exposes (the vocabulary, health-system and
# derived-element tables are the same for every dataset and are not described per dataset).
TABLES = (
    "person",
    "observation_period",
    "visit_occurrence",
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "device_exposure",
    "measurement",
    "observation",
    "death",
    "specimen",
    "episode",
    "episode_event",
)
# Tables and fields that CDM 5.4 added (not in a 5.3 database).
NEW_IN_54 = {
    "episode": None,
    "episode_event": None,
    "visit_occurrence": {
        "admitted_from_concept_id",
        "admitted_from_source_value",
        "discharged_to_concept_id",
        "discharged_to_source_value",
    },
    "procedure_occurrence": {"procedure_end_date", "procedure_end_datetime"},
    "device_exposure": {
        "production_id",
        "unit_concept_id",
        "unit_source_value",
        "unit_source_concept_id",
    },
    "measurement": {
        "unit_source_concept_id",
        "measurement_event_id",
        "meas_event_field_concept_id",
    },
    "observation": {"value_source_value", "observation_event_id", "obs_event_field_concept_id"},
}


def first_sentence(text: str, limit: int = 240) -> str:
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text or "")  # markdown links → their text
    text = re.sub(r"<br>|\s+", " ", text).strip()
    if text in ("", "NA"):
        return ""
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    text = match.group(1) if match else text
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def datatype(cdm: str) -> str:
    cdm = cdm.lower()
    if cdm.startswith("varchar"):
        return "string"
    return {
        "integer": "integer",
        "bigint": "integer",
        "float": "double",
        "date": "date",
        "datetime": "dateTime",
    }.get(cdm, "string")


def build(folder: Path) -> dict:
    tables: dict[str, dict] = {}
    for path in ("OMOP_CDMv5.4_Table_Level.csv", "OMOP_CDM_Oncology_Ex_Table_Level.csv"):
        for row in csv.DictReader((folder / path).open(encoding="utf-8")):
            name = row["cdmTableName"].strip().lower()
            if name in TABLES and name not in tables:
                tables[name] = {
                    "description": first_sentence(row["tableDescription"]),
                    "columns": [],
                }
    for path in ("OMOP_CDMv5.4_Field_Level.csv", "OMOP_CDM_Oncology_Ex_Field_Level.csv"):
        for row in csv.DictReader((folder / path).open(encoding="utf-8")):
            table = row["cdmTableName"].strip().lower()
            name = row["cdmFieldName"].strip().lower()
            if table not in tables or any(c["name"] == name for c in tables[table]["columns"]):
                continue
            description = first_sentence(row["userGuidance"]) or (
                f"The {name.replace('_', ' ')} of the {table.replace('_', ' ')} record."
            )
            tables[table]["columns"].append(
                {"name": name, "datatype": datatype(row["cdmDatatype"]), "description": description}
            )
    return {
        "tables": [{"name": t, **tables[t]} for t in TABLES if t in tables],
        "new_in_5.4": {t: sorted(f) if f else None for t, f in NEW_IN_54.items()},
    }


if __name__ == "__main__":
    out = Path(__file__).with_name("cdm_variables.json")
    out.write_text(json.dumps(build(Path(sys.argv[1])), indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {out}")
