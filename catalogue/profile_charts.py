"""Server-rendered SVG charts of a database profile (no JavaScript, no inline styles: CSP).

Every text is escaped; each SVG has ``role="img"`` with a title and a description, and the numbers
it draws are in the tables beside it. A count that is a lower bound (some node suppressed a small
cell) is drawn lighter and labelled "≥".
"""

from __future__ import annotations

from datetime import date
from typing import Any
from xml.sax.saxutils import escape

from optima_node.schemas import AGE_GROUPS as AGE_BANDS  # the node's bands, one contract

MALE, FEMALE, BAR, LIGHT = "#1f5fa8", "#c2410c", "#15803d", "#9ca3af"


def _f(value: float) -> str:
    return f"{value:.1f}"


def _label(count: int, lower_bound: bool) -> str:
    return f"≥{count}" if lower_bound else str(count)


def _open(key: str, title: str, desc: str, width: int, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="{key}-title {key}-desc" '
        f'class="plot plot-{key}">',
        f'<title id="{key}-title">{escape(title)}</title>',
        f'<desc id="{key}-desc">{escape(desc)}</desc>',
    ]


def age_pyramid_svg(by_sex_age: list[dict[str, Any]], *, width: int = 560) -> str:
    """Men to the left, women to the right, one row per 10-year band at first observation."""
    cells = {
        (r.get("sex"), r.get("age_group")): (int(r.get("count") or 0), bool(r.get("lower_bound")))
        for r in by_sex_age
    }
    row_h, top, mid_gap = 20, 28, 56
    height = top + row_h * len(AGE_BANDS) + 10
    half = (width - mid_gap) / 2 - 40
    biggest = max((c for c, _ in cells.values()), default=0) or 1
    parts = _open(
        "pyramid",
        "Age pyramid at first observation",
        "Persons by sex and 10-year age band at the start of their first observation period; "
        "men on the left, women on the right.",
        width,
        height,
    )
    centre = width / 2
    parts.append(
        f'<text x="{_f(centre - mid_gap / 2 - 4)}" y="16" text-anchor="end" font-size="12" '
        f'fill="{MALE}">Men</text><text x="{_f(centre + mid_gap / 2 + 4)}" y="16" '
        f'font-size="12" fill="{FEMALE}">Women</text>'
    )
    for i, band in enumerate(reversed(AGE_BANDS)):
        y = top + i * row_h
        parts.append(
            f'<text x="{_f(centre)}" y="{y + 14}" text-anchor="middle" font-size="11">'
            f"{escape(band)}</text>"
        )
        for sex, colour, sign in (("male", MALE, -1), ("female", FEMALE, 1)):
            count, lower = cells.get((sex, band), (0, False))
            if not count and not lower:
                continue
            length = half * count / biggest
            x0 = centre + sign * mid_gap / 2
            x = x0 - length if sign < 0 else x0
            parts.append(
                f'<rect x="{_f(x)}" y="{y + 3}" width="{_f(length)}" height="{row_h - 6}" '
                f'fill="{LIGHT if lower else colour}"/>'
            )
            tx = x - 4 if sign < 0 else x + length + 4
            anchor = "end" if sign < 0 else "start"
            parts.append(
                f'<text x="{_f(tx)}" y="{y + 14}" text-anchor="{anchor}" font-size="10">'
                f"{escape(_label(count, lower))}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _bars(
    key: str, title: str, desc: str, rows: list[tuple[str, float, str, bool]], width: int
) -> str:
    """Horizontal bars: (label, value, text shown, light)."""
    left, right, top, row_h = 170, 80, 8, 22
    height = top + row_h * max(len(rows), 1) + 8
    biggest = max((v for _, v, _, _ in rows), default=0) or 1
    parts = _open(key, title, desc, width, height)
    for i, (label, value, text, light) in enumerate(rows):
        y = top + i * row_h
        length = (width - left - right) * value / biggest
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" font-size="11">'
            f"{escape(label)}</text>"
            f'<rect x="{left}" y="{y + 4}" width="{_f(length)}" height="{row_h - 8}" '
            f'fill="{LIGHT if light else BAR}"/>'
            f'<text x="{_f(left + length + 4)}" y="{y + 15}" font-size="10">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def records_svg(tables: list[dict[str, Any]], *, width: int = 560) -> str:
    rows = [
        (
            t["table"],
            float(t.get("records") or 0),
            _label(int(t.get("records") or 0), bool(t.get("lower_bound"))),
            bool(t.get("lower_bound")),
        )
        for t in tables
    ]
    return _bars("records", "Records per table", "Rows in each OMOP CDM table.", rows, width)


def freshness_svg(tables: list[dict[str, Any]], today: date, *, width: int = 560) -> str:
    rows = []
    for t in tables:
        newest = t.get("newest_date")
        if not newest:
            continue
        days = (today - date.fromisoformat(str(newest)[:10])).days
        rows.append((t["table"], float(max(days, 0)), f"{days} days", False))
    return _bars(
        "freshness",
        "Freshness per table",
        "Days since the newest record of each OMOP CDM table (shorter is fresher).",
        rows,
        width,
    )


def chart_context(data: dict[str, Any], today: date) -> dict[str, str]:
    return {
        "pyramid_svg": age_pyramid_svg(data.get("by_sex_age", [])),
        "records_svg": records_svg(data.get("tables", [])),
        "freshness_svg": freshness_svg(data.get("tables", []), today),
    }
