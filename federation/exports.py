"""Downloads of a pooled result: CSV (one flat table per type), JSON and a PDF report."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from django.template.loader import render_to_string

from .analysis_types import kind_of
from .models import Analysis


def result_rows(analysis: Analysis) -> tuple[list[str], list[list[Any]]]:
    """The CSV download's table: each kind flattens its own result."""
    kind = kind_of(analysis)
    return kind.csv_rows(analysis.result or {}) if kind else ([], [])


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
    """The figures of the result page and the PDF report (each kind draws its own)."""
    kind = kind_of(analysis)
    return kind.plot_context(analysis.result or {}) if kind else {}


def to_pdf(analysis: Analysis, runs) -> bytes:
    from accounts.pdf import render_pdf  # imported lazily: loading WeasyPrint costs a second

    html = render_to_string(
        "federation/report.html",
        {"analysis": analysis, "runs": runs, "result": analysis.result, **plot_context(analysis)},
    )
    return render_pdf(html, stylesheets=[Path(__file__).with_name("report.css")])
