"""kaplan_meier v1: per stratum and time unit, the number of deaths and censorings.

Disclosure rule (fail closed, see docs/node-agent.md): a released cell of events or censorings is
either 0 or at least min_cell_count. Small cells are merged forward in time: their counts move to
the next time unit that has counts of the same kind, until the accumulated count is releasable
(events and censorings separately). A remainder left at the horizon is merged backward into the
last released time of its kind. What is released is therefore an exact table of *coarsened* binned
times: KM on the pooled coarsened tables equals KM on the pooled coarsened person-level times.
A stratum whose totals themselves are small is not released at all.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import numpy as np

from optima_node.analyses.common import AnalysisRefused, load_cohort
from optima_node.cohort import Cohort
from optima_node.db import Database
from optima_node.policy import Policy
from optima_node.schemas import KaplanMeierParams, ReasonCode


def binned_times(
    cohort: Cohort, time_unit_days: int, max_time_units: int
) -> tuple[np.ndarray, np.ndarray]:
    """(time in whole units, event flag); times beyond the horizon are censored at the horizon."""
    time = cohort.follow_up_days // time_unit_days
    event = cohort.event.copy()
    beyond = time > max_time_units
    event[beyond] = False
    time[beyond] = max_time_units
    return time, event


def event_table(
    time: np.ndarray, event: np.ndarray, max_time_units: int
) -> tuple[np.ndarray, np.ndarray]:
    """Events and censorings per time unit 0..max_time_units."""
    events = np.bincount(time[event], minlength=max_time_units + 1)
    censored = np.bincount(time[~event], minlength=max_time_units + 1)
    return events, censored


def coarsen_counts(counts: np.ndarray, k: int) -> tuple[dict[int, int], bool] | None:
    """Merge small cells of one count series forward (remainder backward); None if impossible.

    Returns {time: count} with every count >= k, and whether any count moved.
    """
    released: dict[int, int] = {}
    carry, moved = 0, False
    for t in np.flatnonzero(counts).tolist():
        moved |= carry > 0
        carry += int(counts[t])
        if carry >= k:
            released[t] = carry
            carry = 0
    if carry:
        # A remainder at the horizon joins the last released time: those persons were at risk then.
        if not released:
            return None
        released[max(released)] += carry
        moved = True
    return released, moved


def coarsen(
    events: np.ndarray, censored: np.ndarray, k: int
) -> tuple[list[tuple[int, int, int]], bool] | None:
    """Rows (time, events, censored) where every count is 0 or >= k, or None if the stratum's
    total events or censorings are themselves in 1..k-1. Events and censorings coarsen separately."""
    coarse_events = coarsen_counts(events, k)
    coarse_censored = coarsen_counts(censored, k)
    if coarse_events is None or coarse_censored is None:
        return None
    (ev, ev_moved), (ce, ce_moved) = coarse_events, coarse_censored
    times = sorted(set(ev) | set(ce))
    return [(t, ev.get(t, 0), ce.get(t, 0)) for t in times], ev_moved or ce_moved


def strata_labels(cohort: Cohort, stratify_by: str) -> np.ndarray:
    if stratify_by == "sex":
        return cohort.sex_label.astype(object)
    if stratify_by == "age_group":
        return cohort.age_group
    return np.full(len(cohort), "all", dtype=object)


def raw_table(
    db: Database,
    params: KaplanMeierParams,
    policy: Policy | None = None,
    cache: MutableMapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Events and censorings per stratum and time unit before any coarsening (zero rows left
    out): secure aggregation's input, never released as it is. The site's minimum time unit
    still applies."""
    if policy is not None and params.time_unit_days < policy.km_min_time_unit_days:
        raise AnalysisRefused(ReasonCode.TIME_UNIT_BELOW_MINIMUM)
    cohort = load_cohort(db, params.cohort, cache)
    time, event = binned_times(cohort, params.time_unit_days, params.max_time_units)
    labels = strata_labels(cohort, params.stratify_by)
    strata = []
    for label in sorted(set(labels.tolist())):
        sel = labels == label
        events, censored = event_table(time[sel], event[sel], params.max_time_units)
        rows = [
            {"time": t, "events": int(events[t]), "censored": int(censored[t])}
            for t in np.flatnonzero(events + censored).tolist()
        ]
        strata.append({"stratum": str(label), "rows": rows})
    return {
        "time_unit_days": params.time_unit_days,
        "max_time_units": params.max_time_units,
        "stratify_by": params.stratify_by,
        "strata": strata,
    }


def _arrays(rows: list[dict[str, int]], max_time_units: int) -> tuple[np.ndarray, np.ndarray]:
    events = np.zeros(max_time_units + 1, dtype=np.int64)
    censored = np.zeros(max_time_units + 1, dtype=np.int64)
    for row in rows:
        events[row["time"]], censored[row["time"]] = row["events"], row["censored"]
    return events, censored


def run(
    db: Database,
    params: KaplanMeierParams,
    state: dict[str, Any],
    policy: Policy,
    cache: MutableMapping[str, Any] | None = None,
) -> dict[str, Any]:
    raw = raw_table(db, params, policy, cache)
    k = policy.min_cell_count
    persons = sum(r["events"] + r["censored"] for s in raw["strata"] for r in s["rows"])
    if persons < k:
        raise AnalysisRefused(ReasonCode.TOO_FEW_PERSONS)
    strata, suppressed, coarsened = [], [], False
    for stratum in raw["strata"]:
        events, censored = _arrays(stratum["rows"], params.max_time_units)
        released = coarsen(events, censored, k)
        if released is None:
            suppressed.append(stratum["stratum"])
            continue
        rows, moved = released
        coarsened |= moved
        strata.append(
            {
                "stratum": stratum["stratum"],
                "rows": [{"time": t, "events": e, "censored": c} for t, e, c in rows],
            }
        )
    if not strata:
        raise AnalysisRefused(ReasonCode.TOO_FEW_PERSONS)
    return {
        "time_unit_days": params.time_unit_days,
        "max_time_units": params.max_time_units,
        "stratify_by": params.stratify_by,
        "strata": strata,
        "suppressed_strata": suppressed,
        "coarsened": coarsened,
    }
