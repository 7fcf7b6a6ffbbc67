"""database_profile: each node's CDM profile, pooled into what the catalogue shows of a dataset.

Counts add up across nodes (a cell is a lower bound when any node suppressed its part); the
versions are listed; the observation span is the widest; the source release date and each table's
newest date are the *oldest* node's, since a dataset is only as fresh as its stalest node.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import stats

Rows = tuple[list[str], list[list[Any]]]


def _cell(rows: list[dict[str, Any]]) -> dict[str, Any]:
    pooled = stats.pool_counts([[row] for row in rows])
    return {"count": pooled["total"], "lower_bound": pooled["total_lower_bound"]}


def _dates(results: Sequence[dict[str, Any]], key: str) -> list[str]:
    return sorted(str(r[key]) for r in results if r.get(key))


def pool(results: Sequence[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    tables: dict[str, dict[str, Any]] = {}
    for result in results:
        for t in result.get("tables", []):
            entry = tables.setdefault(t["table"], {"rows": [], "dates": [], "missing_date": False})
            entry["rows"].append(t["records"])
            if t.get("newest_date"):
                entry["dates"].append(str(t["newest_date"]))
            else:
                entry["missing_date"] = True
    starts, ends = _dates(results, "observation_start"), _dates(results, "observation_end")
    releases = _dates(results, "source_release_date")
    return {
        "cdm_versions": sorted({r["cdm_version"] for r in results if r.get("cdm_version")}),
        "vocabulary_versions": sorted(
            {r["vocabulary_version"] for r in results if r.get("vocabulary_version")}
        ),
        "source_release_date": releases[0] if len(releases) == len(results) else None,
        "observation_start": starts[0] if starts else None,
        "observation_end": ends[-1] if ends else None,
        "person_count": _cell([r["person_count"] for r in results]),
        "by_sex_age": stats.pool_counts(r["by_sex_age"] for r in results)["rows"],
        "tables": [
            {
                "table": name,
                "records": (cell := _cell(entry["rows"]))["count"],
                "lower_bound": cell["lower_bound"],
                "newest_date": min(entry["dates"]) if entry["dates"] else None,
            }
            for name, entry in tables.items()
        ],
        "cancers": stats.pool_counts(r["cancers"] for r in results)["rows"],
    }


def csv_rows(result: dict[str, Any]) -> Rows:
    header = ["section", "stratum", "count", "lower_bound", "newest_date"]
    person = result.get("person_count", {})
    rows: list[list[Any]] = [["persons", "", person.get("count"), person.get("lower_bound"), ""]]
    for r in result.get("by_sex_age", []):
        stratum = f"{r.get('sex')} {r.get('age_group')}"
        rows.append(["sex_age", stratum, r["count"], r["lower_bound"], ""])
    for t in result.get("tables", []):
        rows.append(["table", t["table"], t["records"], t["lower_bound"], t["newest_date"] or ""])
    for c in result.get("cancers", []):
        rows.append(["cancer", c.get("cancer"), c["count"], c["lower_bound"], ""])
    return header, rows
