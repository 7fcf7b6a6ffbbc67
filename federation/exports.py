"""Downloads of a pooled result: CSV (one flat table per type), JSON and a PDF report."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from django.template.loader import render_to_string

from . import plots
from .models import Analysis


def result_rows(analysis: Analysis) -> tuple[list[str], list[list[Any]]]:
    result = analysis.result or {}
    if analysis.type == "cohort_count":
        strata = list(result.get("stratify_by", []))
        header = [*strata, "count", "lower_bound"]
        rows = [
            [r.get(s, "") for s in strata] + [r["count"], r["lower_bound"]]
            for r in result.get("rows", [])
        ]
        if strata:
            blanks = [""] * (len(strata) - 1)
            rows.append(["total", *blanks, result.get("total"), result.get("total_lower_bound")])
        return header, rows
    if analysis.type == "characterisation":
        header = ["section", "stratum", "count", "lower_bound"]
        rows = []
        for key in ("person_count", "deaths"):
            cell = result.get(key, {})
            rows.append([key, "", cell.get("count"), cell.get("lower_bound")])
        for section in ("by_sex", "by_age_group", "by_index_year", "by_follow_up"):
            for r in result.get(section, []):
                label = ", ".join(
                    f"{k}={v}"
                    for k, v in r.items()
                    if k not in ("count", "lower_bound", "suppressed")
                )
                rows.append([section, label, r["count"], r["lower_bound"]])
        return header, rows
    if analysis.type == "kaplan_meier":
        header = [
            "stratum",
            "time",
            "n_at_risk",
            "n_events",
            "n_censored",
            "survival",
            "std_error",
            "ci_low",
            "ci_high",
        ]
        rows = [
            [s["stratum"]] + [r[h] for h in header[1:]]
            for s in result.get("strata", [])
            for r in s["table"]
        ]
        return header, rows
    header = ["term", "estimate", "std_error", "z", "p_value", "ci_low", "ci_high", "odds_ratio"]
    rows = [[c[h] for h in header] for c in result.get("coefficients", [])]
    return header, rows


def to_csv(analysis: Analysis) -> str:
    header, rows = result_rows(analysis)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    if analysis.partial:
        writer.writerow([])
        writer.writerow(["# partial result: not every node contributed"])
    return buffer.getvalue()


def to_json(analysis: Analysis) -> str:
    return json.dumps(
        {
            "id": analysis.pk,
            "type": analysis.type,
            "version": analysis.version,
            "status": analysis.status,
            "partial": analysis.partial,
            "params": analysis.params,
            "result": analysis.result,
        },
        indent=2,
    )


def plot_context(analysis: Analysis) -> dict[str, Any]:
    result = analysis.result or {}
    context: dict[str, Any] = {}
    if analysis.type == "kaplan_meier" and result.get("strata"):
        ticks = plots.km_ticks(result)
        context["km_svg"] = plots.kaplan_meier_svg(result)
        context["risk_ticks"] = ticks
        context["risk_rows"] = [
            {"stratum": s["stratum"], "counts": plots.number_at_risk(s["table"], ticks)}
            for s in result["strata"]
        ]
    if analysis.type == "logistic_regression" and result.get("coefficients"):
        context["forest_svg"] = plots.forest_svg(result)
    return context


def to_pdf(analysis: Analysis, runs) -> bytes:
    from accounts.pdf import render_pdf  # imported lazily: loading WeasyPrint costs a second

    html = render_to_string(
        "federation/report.html",
        {"analysis": analysis, "runs": runs, "result": analysis.result, **plot_context(analysis)},
    )
    return render_pdf(html, stylesheets=[Path(__file__).with_name("report.css")])
