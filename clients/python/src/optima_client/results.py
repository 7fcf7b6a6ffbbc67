"""The portal's analysis results as pandas DataFrames (pure parsing, no HTTP).

Each function takes the ``result`` object of an analysis as ``GET /api/analyses/{id}/`` returns
it and gives one DataFrame; what is not tabular (totals, the log-rank test, the deviance, which
nodes contributed) travels in ``DataFrame.attrs``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

KM_COLUMNS = (
    "stratum",
    "time",
    "time_days",
    "n_at_risk",
    "n_events",
    "n_censored",
    "survival",
    "std_error",
    "ci_low",
    "ci_high",
)
COEFFICIENT_COLUMNS = (
    "estimate",
    "std_error",
    "z",
    "p_value",
    "ci_low",
    "ci_high",
    "odds_ratio",
)
CHARACTERISATION_SECTIONS = ("by_sex", "by_age_group", "by_index_year", "by_follow_up")
_PROVENANCE = ("partial", "nodes", "missing_nodes", "aggregation", "aggregation_reason")


def _provenance(result: dict[str, Any]) -> dict[str, Any]:
    return {key: result[key] for key in _PROVENANCE if key in result}


def kaplan_meier_frame(result: dict[str, Any]) -> pd.DataFrame:
    """One row per stratum and time unit with an event or a censoring.

    Columns: ``stratum``, ``time`` (in the analysis' time units), ``time_days``, ``n_at_risk``,
    ``n_events``, ``n_censored``, ``survival``, ``std_error`` and the 95% interval
    ``ci_low``/``ci_high``. ``attrs``: ``time_unit_days``, ``stratify_by``, ``median_survival``
    (stratum -> time unit, or None when not reached), ``log_rank`` (statistic, df, p_value, or None
    with one stratum), ``suppressed_strata``, ``coarsened`` and the provenance (``nodes``, …).
    """
    unit = int(result.get("time_unit_days") or 1)
    rows = [
        {"stratum": stratum["stratum"], **row, "time_days": int(row["time"]) * unit}
        for stratum in result.get("strata", [])
        for row in stratum.get("table", [])
    ]
    frame = pd.DataFrame(rows, columns=list(KM_COLUMNS))
    frame.attrs = {
        "analysis_type": "kaplan_meier",
        "time_unit_days": unit,
        "stratify_by": result.get("stratify_by", "none"),
        "median_survival": {
            s["stratum"]: s.get("median_survival") for s in result.get("strata", [])
        },
        "log_rank": result.get("log_rank"),
        "suppressed_strata": list(result.get("suppressed_strata", [])),
        "coarsened": bool(result.get("coarsened", False)),
        **_provenance(result),
    }
    return frame


def coefficients_frame(result: dict[str, Any]) -> pd.DataFrame:
    """The logistic regression's coefficients, indexed by ``term``.

    Columns: ``estimate`` (log-odds), ``std_error``, ``z``, ``p_value``, ``ci_low``/``ci_high``
    (95%, log-odds) and ``odds_ratio``. ``attrs``: ``n``, ``deviance``, ``aic``, ``rounds``,
    ``converged``, ``centring`` (the value each continuous covariate was centred at),
    ``n_per_node`` and the provenance.
    """
    frame = pd.DataFrame(result.get("coefficients", []))
    if frame.empty:
        frame = pd.DataFrame(columns=["term", *COEFFICIENT_COLUMNS])
    frame = frame.set_index("term")[list(COEFFICIENT_COLUMNS)]
    frame.attrs = {
        "analysis_type": "logistic_regression",
        **{k: result.get(k) for k in ("n", "deviance", "aic", "rounds", "converged")},
        "centring": dict(result.get("centring", {})),
        "n_per_node": list(result.get("n_per_node", [])),
        **_provenance(result),
    }
    return frame


def count_frame(result: dict[str, Any]) -> pd.DataFrame:
    """One row per stratum (a column per stratification variable), ``count`` and ``lower_bound``
    (True where a node suppressed a small part, so the true count is larger). ``attrs``:
    ``total``, ``total_lower_bound``, ``stratify_by``, ``attrition`` (a DataFrame for a Circe
    cohort, else None) and the provenance."""
    strata = list(result.get("stratify_by", []))
    frame = pd.DataFrame(result.get("rows", []))
    if frame.empty:
        frame = pd.DataFrame(columns=[*strata, "count", "lower_bound"])
    attrition = result.get("attrition")
    frame.attrs = {
        "analysis_type": "cohort_count",
        "total": result.get("total"),
        "total_lower_bound": bool(result.get("total_lower_bound", False)),
        "stratify_by": strata,
        "attrition": pd.DataFrame(attrition) if attrition else None,
        **_provenance(result),
    }
    return frame


def characterisation_frame(result: dict[str, Any]) -> pd.DataFrame:
    """One row per category of each section (``by_sex``, ``by_age_group``, ``by_index_year``,
    ``by_follow_up``): columns ``section``, ``category``, ``count``, ``lower_bound``. ``attrs``:
    ``person_count``, ``deaths`` (each ``{"count", "lower_bound"}``) and the provenance."""
    rows = []
    for section in CHARACTERISATION_SECTIONS:
        for row in result.get(section, []):
            labels = [str(v) for k, v in row.items() if k not in ("count", "lower_bound")]
            rows.append(
                {
                    "section": section,
                    "category": ", ".join(labels),
                    "count": row.get("count"),
                    "lower_bound": bool(row.get("lower_bound", False)),
                }
            )
    frame = pd.DataFrame(rows, columns=["section", "category", "count", "lower_bound"])
    frame.attrs = {
        "analysis_type": "characterisation",
        "person_count": result.get("person_count"),
        "deaths": result.get("deaths"),
        **_provenance(result),
    }
    return frame


FRAMES = {
    "kaplan_meier": kaplan_meier_frame,
    "logistic_regression": coefficients_frame,
    "cohort_count": count_frame,
    "characterisation": characterisation_frame,
}


def result_frame(analysis_type: str, result: dict[str, Any]) -> pd.DataFrame:
    """The DataFrame of ``result`` for ``analysis_type`` (one of :data:`FRAMES`)."""
    try:
        parse = FRAMES[analysis_type]
    except KeyError:
        raise ValueError(f"No table for analysis type {analysis_type!r}.") from None
    return parse(result)


def number_at_risk(table: pd.DataFrame, times: list[float]) -> list[int]:
    """Persons still at risk at each of ``times`` in one stratum's rows (as the portal's page)."""
    out = []
    for t in times:
        later = table[table["time"] >= t]
        out.append(int(later["n_at_risk"].iloc[0]) if len(later) else 0)
    return out
