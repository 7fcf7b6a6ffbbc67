"""Where each count of an analysis sits in the vector that secure aggregation sums.

Every node must put the same count in the same place, and none may reveal which strata it has,
so the layout is a function of the analysis parameters alone: fixed label sets (sex, age groups,
follow-up bands, the index years the cohort's date range allows plus ``"other"``, KM time units
0..max_time_units) and every cell present, zero or not.

The raw tables read and written here are the analyses' unsuppressed tables
(``optima_node.analyses.*.raw_table``), JSON-shaped:

* cohort_count: ``{"stratify_by": [...], "rows": [{"strata": {name: label}, "count": n}]}``
* characterisation: ``{"person_count": n, "deaths": n, "by_sex": [rows], "by_age_group": [rows],
  "by_index_year": [rows], "by_follow_up": [rows]}`` with rows as above (one stratum each)
* kaplan_meier: ``{"time_unit_days", "max_time_units", "stratify_by",
  "strata": [{"stratum": label, "rows": [{"time", "events", "censored"}]}]}``

Rows with a zero count are left out, in what nodes encode and in what :func:`decode` returns, and
rows and strata come sorted by label text, as the analyses sort them.
Plain Python: the portal imports this module too (through the agent's schemas only).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from optima_node.schemas import AGE_GROUPS, DATE_MAX, DATE_MIN, FOLLOW_UP_BANDS, PARAMS_MODELS

OTHER = "other"
SEX_LABELS: tuple[str, ...] = ("female", "male", "unknown")
COUNT_SECTIONS: tuple[str, ...] = ("by_sex", "by_age_group", "by_index_year", "by_follow_up")
SECTION_STRATUM = {
    "by_sex": "sex",
    "by_age_group": "age_group",
    "by_index_year": "index_year",
    "by_follow_up": "follow_up",
}
KM_COLUMNS: tuple[str, ...] = ("events", "censored")


class LayoutError(ValueError):
    """A raw table does not fit the layout, or a vector has the wrong length."""


@dataclass(frozen=True)
class Layout:
    """The cells of one analysis, in vector order.

    Each cell is a tuple naming it: cohort_count ``(label, ...)`` in ``stratify_by`` order;
    characterisation ``(section, label)`` with label ``""`` for person_count and deaths;
    kaplan_meier ``(stratum, time, column)`` with column "events" or "censored".
    """

    analysis_type: str
    cells: tuple[tuple[Any, ...], ...]
    labels: Mapping[str, tuple[str, ...]]  # the fixed label set of each stratifying variable

    def __len__(self) -> int:
        return len(self.cells)

    def index(self) -> dict[tuple[Any, ...], int]:
        return {cell: i for i, cell in enumerate(self.cells)}


def index_years(cohort: Mapping[str, Any]) -> tuple[str, ...]:
    """Index years the cohort's date range allows (the parameter limits when open), as text."""
    low = _year(cohort.get("index_date_min")) or DATE_MIN.year
    high = _year(cohort.get("index_date_max")) or DATE_MAX.year
    return tuple(str(y) for y in range(low, high + 1))


def stratum_labels(name: str, params: Mapping[str, Any]) -> tuple[str, ...]:
    """The fixed label set of one stratifying variable; index_year ends with ``"other"``."""
    if name == "sex":
        return SEX_LABELS
    if name == "age_group":
        return AGE_GROUPS
    if name == "index_year":
        return (*index_years(params.get("cohort") or {}), OTHER)
    if name == "follow_up":
        return FOLLOW_UP_BANDS
    if name == "none":
        return ("all",)
    raise LayoutError(f"unknown stratifying variable {name!r}")


def layout(analysis_type: str, params: Mapping[str, Any]) -> Layout:
    """The layout of ``analysis_type`` for ``params`` (identical at every node)."""
    params = _params(analysis_type, params)
    if analysis_type == "cohort_count":
        names = list(params["stratify_by"])
        labels = {name: stratum_labels(name, params) for name in names}
        cells = tuple(itertools.product(*(labels[name] for name in names)))
        return Layout(analysis_type, cells, labels)
    if analysis_type == "characterisation":
        labels = {
            SECTION_STRATUM[s]: stratum_labels(SECTION_STRATUM[s], params) for s in COUNT_SECTIONS
        }
        cells: list[tuple[Any, ...]] = [("person_count", ""), ("deaths", "")]
        for section in COUNT_SECTIONS:
            cells += [(section, label) for label in labels[SECTION_STRATUM[section]]]
        return Layout(analysis_type, tuple(cells), labels)
    if analysis_type == "kaplan_meier":
        stratify_by = params["stratify_by"]
        strata = stratum_labels(stratify_by, params)
        n_times = params["max_time_units"] + 1
        cells = [
            (stratum, time, column)
            for stratum in strata
            for time in range(n_times)
            for column in KM_COLUMNS
        ]
        return Layout(analysis_type, tuple(cells), {stratify_by: strata})
    raise LayoutError(f"no secure-aggregation layout for {analysis_type!r}")  # pragma: no cover


def encode(
    analysis_type: str, params: Mapping[str, Any], raw_counts: Mapping[str, Any]
) -> list[int]:
    """The node's unsuppressed ``raw_counts`` as a vector in the layout's order.

    A label outside a fixed set goes to ``"other"`` where the variable has one (index years
    outside the cohort's range); anywhere else it is a :class:`LayoutError`, as is a negative count.
    """
    return encode_array(analysis_type, params, raw_counts).tolist()


def encode_array(
    analysis_type: str, params: Mapping[str, Any], raw_counts: Mapping[str, Any]
) -> np.ndarray:
    """:func:`encode` as a numpy int64 array, which :func:`optima_node.secagg.mask` takes as it is
    (a Kaplan-Meier vector of 200,000 cells is not turned into Python ints and back)."""
    if analysis_type == "kaplan_meier":
        return _encode_km(_params(analysis_type, params), raw_counts)
    lay = layout(analysis_type, params)
    where = lay.index()
    vector = [0] * len(lay)

    def put(cell: tuple[Any, ...], count: Any) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise LayoutError(f"count of {cell!r} is not a non-negative integer")
        if cell not in where:
            raise LayoutError(f"cell {cell!r} is not in the layout")
        vector[where[cell]] += count

    if analysis_type == "cohort_count":
        names = list(lay.labels)
        for row in raw_counts["rows"]:
            strata = row.get("strata") or {}
            if set(strata) != set(names):
                raise LayoutError("a row's strata are not the analysis' stratify_by")
            put(tuple(_fit(lay, name, strata[name]) for name in names), row["count"])
    else:
        put(("person_count", ""), raw_counts["person_count"])
        put(("deaths", ""), raw_counts["deaths"])
        for section in COUNT_SECTIONS:
            name = SECTION_STRATUM[section]
            for row in raw_counts[section]:
                put((section, _fit(lay, name, (row.get("strata") or {}).get(name))), row["count"])
    try:
        return np.array(vector, dtype=np.int64)
    except OverflowError as exc:
        raise LayoutError("a count is too large") from exc


def decode(analysis_type: str, params: Mapping[str, Any], vector: Sequence[int]) -> dict[str, Any]:
    """The pooled raw table (same shape as a node's raw table) from the unmasked sum."""
    plain = _params(analysis_type, params)
    if analysis_type == "kaplan_meier":
        return _decode_km(plain, vector)
    lay = layout(analysis_type, plain)
    if len(vector) != len(lay):
        raise LayoutError(f"vector has {len(vector)} elements, the layout {len(lay)}")
    if analysis_type == "cohort_count":
        counts = dict(zip(lay.cells, (int(v) for v in vector), strict=True))
        names = list(plain["stratify_by"])
        rows = [
            {"strata": dict(zip(names, cell, strict=True)), "count": n}
            for cell, n in sorted(counts.items())
            if n
        ]
        return {"stratify_by": names, "rows": rows}
    if analysis_type == "characterisation":
        counts = dict(zip(lay.cells, (int(v) for v in vector), strict=True))
        out: dict[str, Any] = {
            "person_count": counts[("person_count", "")],
            "deaths": counts[("deaths", "")],
        }
        for section in COUNT_SECTIONS:
            name = SECTION_STRATUM[section]
            out[section] = [
                {"strata": {name: label}, "count": n}
                for (sec, label), n in sorted(counts.items())
                if sec == section and n
            ]
        return out
    raise LayoutError(f"no secure-aggregation layout for {analysis_type!r}")  # pragma: no cover


def _decode_km(params: dict[str, Any], vector: Sequence[int]) -> dict[str, Any]:
    labels = stratum_labels(params["stratify_by"], params)
    n_times = params["max_time_units"] + 1
    if len(vector) != 2 * n_times * len(labels):
        raise LayoutError(
            f"vector has {len(vector)} elements, the layout {2 * n_times * len(labels)}"
        )
    strata = []
    for i, label in sorted(enumerate(labels), key=lambda pair: pair[1]):
        cells = vector[2 * i * n_times : 2 * (i + 1) * n_times]
        rows = [
            {"time": time, "events": int(cells[2 * time]), "censored": int(cells[2 * time + 1])}
            for time in range(n_times)
            if cells[2 * time] or cells[2 * time + 1]
        ]
        if rows:
            strata.append({"stratum": label, "rows": rows})
    return {
        "time_unit_days": params["time_unit_days"],
        "max_time_units": params["max_time_units"],
        "stratify_by": params["stratify_by"],
        "strata": strata,
    }


def _encode_km(params: dict[str, Any], raw_counts: Mapping[str, Any]) -> np.ndarray:
    # Cell (stratum i, time, column c) sits at 2 · (i · (T + 1) + time) + c, the layout's order;
    # arithmetic on whole columns instead of a lookup per cell keeps a 200,000-cell vector fast.
    labels = stratum_labels(params["stratify_by"], params)
    n_times = params["max_time_units"] + 1
    first = {label: i * n_times for i, label in enumerate(labels)}
    vector = np.zeros(2 * n_times * len(labels), dtype=np.int64)
    for stratum in raw_counts["strata"]:
        label = str(stratum["stratum"])
        if label not in first:
            raise LayoutError(f"stratum {label!r} is not in the layout")
        rows = stratum["rows"]
        if not rows:
            continue
        at = _int_column([row["time"] for row in rows], f"a time of stratum {label!r}")
        if not (at.min() >= 0 and at.max() < n_times):
            raise LayoutError(f"a time of stratum {label!r} is outside the layout")
        at = 2 * (first[label] + at)
        for offset, column in enumerate(KM_COLUMNS):
            counts = _int_column([row[column] for row in rows], f"a {column} count of {label!r}")
            if counts.min() < 0:
                raise LayoutError(f"a {column} count of {label!r} is negative")
            np.add.at(vector, at + offset, counts)  # repeated times add up
    return vector


def _int_column(values: Sequence[Any], what: str) -> np.ndarray:
    # type() rather than isinstance(): bool is an int subclass, and True must not pass as 1.
    if not set(map(type, values)) <= {int}:
        raise LayoutError(f"{what} is not an integer")
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError as exc:
        raise LayoutError(f"{what} is too large") from exc


def _fit(lay: Layout, name: str, label: Any) -> str:
    labels = lay.labels.get(name, ())
    text = str(label)
    if text in labels:
        return text
    if OTHER in labels:
        return OTHER
    raise LayoutError(f"{name} label {text!r} is not in the fixed label set")


def _year(value: Any) -> int | None:
    if value is None:
        return None
    if hasattr(value, "year"):
        return int(value.year)
    return int(str(value)[:4])


def _params(analysis_type: str, params: Any) -> dict[str, Any]:
    """Validated params with the defaults filled in, as every node's analysis sees them."""
    model = PARAMS_MODELS.get((analysis_type, 1))
    if model is None:
        raise LayoutError(f"no secure-aggregation layout for {analysis_type!r}")
    if isinstance(params, model):
        return params.model_dump(mode="json")
    try:
        return model.model_validate(dict(params)).model_dump(mode="json")
    except ValidationError as exc:
        raise LayoutError(f"invalid {analysis_type} parameters") from exc
