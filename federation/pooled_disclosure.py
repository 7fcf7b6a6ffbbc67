"""Disclosure control on pooled counts, for results made by secure aggregation.

Under secure aggregation the portal learns only the pooled raw table
(:func:`optima_node.secagg_layout.decode`), so the small-cell rule applies to pooled numbers, with
the strictest threshold ``t`` of the participating sites and the datasets' terms of use. This runs
after unmasking and before anything is stored or shown; its output has the shape of today's pooled
results (:mod:`federation.aggregate`) plus ``secure_aggregation``, ``threshold`` and, for
Kaplan-Meier, ``exact_until``:

* counts: a cell of 1..t-1 is released as ``count: None, suppressed: True`` (no lower bounds: no
  node suppressed anything). A characterisation section adds up to the released person count, so
  while its suppressed cells add up to 1..t-1 the smallest released cell is suppressed too.
* Kaplan-Meier: per stratum, the curve is exact up to the time unit before the first pooled event
  or censoring cell of 1..t-1 and truncated there; ``exact_until`` names that unit. If the persons
  still at risk after it are themselves 1..t-1, the last released time goes as well (they could be
  read off the curve). A stratum of fewer than t persons, or with no exact part, is suppressed.

Pure Python on plain data; no Django.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import stats

SECTIONS: tuple[str, ...] = ("by_sex", "by_age_group", "by_index_year", "by_follow_up")


def control(
    analysis_type: str, params: Mapping[str, Any], pooled_table: Mapping[str, Any], threshold: int
) -> dict[str, Any]:
    """The releasable result of ``pooled_table`` under minimum cell count ``threshold``."""
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise ValueError("threshold must be an integer >= 1")
    if analysis_type == "cohort_count":
        body = _cohort_count(params, pooled_table, threshold)
    elif analysis_type == "characterisation":
        body = _characterisation(pooled_table, threshold)
    elif analysis_type == "kaplan_meier":
        body = _kaplan_meier(params, pooled_table, threshold)
    else:
        raise ValueError(f"no pooled disclosure control for {analysis_type!r}")
    return {**body, "secure_aggregation": True, "threshold": threshold}


# --- counts -----------------------------------------------------------------------------------


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("a pooled count is not a non-negative integer")
    return value


def _cell(count: int, t: int) -> dict[str, Any]:
    if 0 < count < t:
        return {"count": None, "suppressed": True, "lower_bound": False}
    return {"count": count, "suppressed": False, "lower_bound": False}


def _rows(rows: Sequence[Mapping[str, Any]], t: int) -> tuple[list[dict[str, Any]], list[int]]:
    """Released rows, flat as :func:`federation.stats.pool_counts` makes them (zeros left out),
    and the pooled count behind each."""
    cells = []
    for row in rows:
        count = _count(row["count"])
        if count:
            strata = {str(k): str(v) for k, v in (row.get("strata") or {}).items()}
            cells.append((tuple(sorted(strata.items())), strata, count))
    cells.sort()
    return [{**strata, **_cell(count, t)} for _, strata, count in cells], [c for *_, c in cells]


def _cohort_count(params: Mapping[str, Any], table: Mapping[str, Any], t: int) -> dict[str, Any]:
    rows, _ = _rows(table["rows"], t)
    # No total is counted beyond the released cells: a total would give away the suppressed sum.
    return {
        "stratify_by": list(params.get("stratify_by") or table.get("stratify_by") or []),
        "total": sum(r["count"] for r in rows if not r["suppressed"]),
        "total_lower_bound": any(r["suppressed"] for r in rows),
        "rows": rows,
    }


def _protect_section(rows: list[dict[str, Any]], counts: list[int], t: int) -> None:
    """Suppress the smallest released cells until the section's suppressed cells add up to 0 or
    at least t, since the released person count minus the released cells gives their sum."""
    while True:
        hidden = sum(c for r, c in zip(rows, counts, strict=True) if r["suppressed"])
        released = [i for i, r in enumerate(rows) if not r["suppressed"]]
        if not 0 < hidden < t or not released:
            return
        smallest = min(released, key=lambda i: (counts[i], i))
        rows[smallest].update(count=None, suppressed=True)


def _characterisation(table: Mapping[str, Any], t: int) -> dict[str, Any]:
    person_count = _count(table["person_count"])
    out: dict[str, Any] = {
        "person_count": _cell(person_count, t),
        "deaths": _cell(_count(table["deaths"]), t),
    }
    for section in SECTIONS:
        rows, counts = _rows(table[section], t)
        if not out["person_count"]["suppressed"]:
            _protect_section(rows, counts, t)
        out[section] = rows
    return out


# --- Kaplan-Meier -----------------------------------------------------------------------------


def _exact_part(
    rows: list[dict[str, int]], t: int
) -> tuple[list[dict[str, int]], int | None, int] | None:
    """(released rows, exact_until, persons at risk after them) for one stratum's pooled rows
    (sorted, non-zero), or None when nothing of the stratum can be released."""
    total = sum(r["events"] + r["censored"] for r in rows)
    if total < t:
        return None
    small = [i for i, r in enumerate(rows) if 0 < r["events"] < t or 0 < r["censored"] < t]
    if not small:
        return rows, None, 0
    kept = rows[: small[0]]
    remaining = total - sum(r["events"] + r["censored"] for r in kept)
    if kept and 0 < remaining < t:
        # Every released time removes 0 or >= t persons, so dropping one makes the rest >= t.
        last = kept.pop()
        remaining += last["events"] + last["censored"]
    if not kept:
        return None
    return kept, rows[len(kept)]["time"] - 1, remaining


def _administratively_censored(
    rows: list[dict[str, int]], until: int, remaining: int
) -> list[dict[str, int]]:
    """Rows up to ``until``, with everyone still at risk censored just after it: KM and log-rank
    on this table equal those on the full table at every time up to ``until``."""
    kept = [r for r in rows if r["time"] <= until]
    rest = remaining + sum(r["events"] + r["censored"] for r in rows if r["time"] > until)
    return kept + ([{"time": until + 1, "events": 0, "censored": rest}] if rest else [])


def _kaplan_meier(params: Mapping[str, Any], table: Mapping[str, Any], t: int) -> dict[str, Any]:
    unit = int(table.get("time_unit_days") or params["time_unit_days"])
    strata_out: list[dict[str, Any]] = []
    suppressed: list[str] = []
    released: dict[str, tuple[list[dict[str, int]], int | None, int]] = {}
    for stratum in table["strata"]:
        name = str(stratum["stratum"])
        rows = sorted(
            (
                {
                    "time": _count(r["time"]),
                    "events": _count(r["events"]),
                    "censored": _count(r["censored"]),
                }
                for r in stratum["rows"]
            ),
            key=lambda r: r["time"],
        )
        rows = [r for r in rows if r["events"] or r["censored"]]
        part = _exact_part(rows, t) if rows else None
        if part is None:
            if rows:
                suppressed.append(name)
            continue
        released[name] = part
    for name in sorted(released):
        kept, until, remaining = released[name]
        horizon = until if until is not None else kept[-1]["time"]
        curve = stats.kaplan_meier({name: _administratively_censored(kept, horizon, remaining)})
        only = curve["strata"][0]
        only["table"] = [row for row in only["table"] if row["time"] <= horizon]
        strata_out.append({**only, "exact_until": until, "truncated": until is not None})
    truncated = [u for _, u, _ in released.values() if u is not None]
    exact_until = min(truncated) if truncated else None
    # The log-rank test uses the follow-up every released stratum shows exactly.
    common = (
        exact_until
        if exact_until is not None
        else max((kept[-1]["time"] for kept, _, _ in released.values()), default=0)
    )
    log_rank = stats.log_rank(
        {
            name: _administratively_censored(kept, common, remaining)
            for name, (kept, _, remaining) in released.items()
        }
    )
    return {
        "time_unit_days": unit,
        "max_time_units": int(table.get("max_time_units") or params["max_time_units"]),
        "stratify_by": params.get("stratify_by") or table.get("stratify_by") or "none",
        "strata": strata_out,
        "log_rank": log_rank,
        "suppressed_strata": sorted(suppressed),
        "coarsened": False,
        "exact_until": exact_until,
        "exact_until_days": exact_until * unit if exact_until is not None else None,
    }
