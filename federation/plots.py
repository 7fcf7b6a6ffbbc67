"""Server-rendered SVG plots (no JavaScript; the same markup goes into the PDF report).

Every text is escaped; the SVGs carry ``role="img"`` with a title and description for screen
readers, and the numbers they show are also in the tables next to them.
"""

from __future__ import annotations

import math
from typing import Any
from xml.sax.saxutils import escape

PALETTE = ("#1f5fa8", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#a16207", "#4b5563")


def _f(value: float) -> str:
    return f"{value:.2f}"


def _ticks(upper: float, count: int = 6) -> list[float]:
    if upper <= 0:
        return [0.0]
    raw = upper / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks, t = [], 0.0
    while t <= upper + 1e-9:
        ticks.append(t)
        t += step
    return ticks


def number_at_risk(table: list[dict[str, Any]], times: list[float]) -> list[int]:
    """Persons still at risk at each of ``times`` (from the pooled KM table)."""
    out = []
    for t in times:
        row = next((r for r in table if r["time"] >= t), None)
        out.append(int(row["n_at_risk"]) if row else 0)
    return out


def km_ticks(result: dict[str, Any]) -> list[float]:
    horizon = max((r["time"] for s in result.get("strata", []) for r in s["table"]), default=0)
    return _ticks(max(horizon, 1))


def kaplan_meier_svg(result: dict[str, Any], *, width: int = 680, height: int = 380) -> str:
    strata = result.get("strata", [])
    unit = result.get("time_unit_days", 30)
    left, right, top, bottom = 56, 150, 20, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    ticks = km_ticks(result)
    x_max = ticks[-1] if ticks[-1] > 0 else 1

    def x(t: float) -> float:
        return left + plot_w * t / x_max

    def y(s: float) -> float:
        return top + plot_h * (1 - s)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="km-title km-desc" '
        'class="plot plot-km">',
        '<title id="km-title">Kaplan–Meier survival curve</title>',
        f'<desc id="km-desc">Survival probability over time in units of {unit} days, '
        f"{len(strata)} stratum/strata, with 95% confidence bands.</desc>",
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fff" '
        'stroke="#9ca3af"/>',
    ]
    for s in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{_f(y(s))}" y2="{_f(y(s))}" '
            'stroke="#e5e7eb"/>'
            f'<text x="{left - 6}" y="{_f(y(s) + 4)}" text-anchor="end" font-size="11">{s:g}</text>'
        )
    for t in ticks:
        parts.append(
            f'<line x1="{_f(x(t))}" x2="{_f(x(t))}" y1="{top + plot_h}" y2="{top + plot_h + 4}" '
            'stroke="#374151"/>'
            f'<text x="{_f(x(t))}" y="{top + plot_h + 16}" text-anchor="middle" '
            f'font-size="11">{t:g}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle" font-size="12">'
        f"Time (units of {escape(str(unit))} days)</text>"
        f'<text x="14" y="{top + plot_h / 2}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 14 {top + plot_h / 2})">Survival probability</text>'
    )
    for i, stratum in enumerate(strata):
        colour = PALETTE[i % len(PALETTE)]
        table = [r for r in stratum["table"] if r["time"] <= x_max]
        # Step function starting at S(0) = 1; each row drops at its time.
        line = [(0.0, 1.0)]
        upper = [(0.0, 1.0)]
        lower = [(0.0, 1.0)]
        for row in table:
            t = float(row["time"])
            line += [(t, line[-1][1]), (t, row["survival"])]
            upper += [(t, upper[-1][1]), (t, row["ci_high"])]
            lower += [(t, lower[-1][1]), (t, row["ci_low"])]
        end = float(table[-1]["time"]) if table else 0.0
        line.append((end, line[-1][1]))
        band = upper + list(reversed(lower))
        parts.append(
            '<polygon points="'
            + " ".join(f"{_f(x(t))},{_f(y(s))}" for t, s in band)
            + f'" fill="{colour}" fill-opacity="0.15" stroke="none"/>'
        )
        parts.append(
            '<polyline points="'
            + " ".join(f"{_f(x(t))},{_f(y(s))}" for t, s in line)
            + f'" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        ly = top + 14 + 18 * i
        parts.append(
            f'<line x1="{left + plot_w + 12}" x2="{left + plot_w + 32}" y1="{ly - 4}" '
            f'y2="{ly - 4}" stroke="{colour}" stroke-width="3"/>'
            f'<text x="{left + plot_w + 38}" y="{ly}" font-size="12">'
            f"{escape(str(stratum['stratum']))}</text>"
        )
    exact_until = result.get("exact_until")
    if isinstance(exact_until, int) and 0 <= exact_until <= x_max:
        # Secure aggregation: the pooled curve is exact up to here, then truncated.
        parts.append(
            f'<line x1="{_f(x(exact_until))}" x2="{_f(x(exact_until))}" y1="{top}" '
            f'y2="{top + plot_h}" stroke="#6b7280" stroke-dasharray="4 3"/>'
            f'<text x="{_f(x(exact_until) - 4)}" y="{top + 12}" text-anchor="end" '
            f'font-size="11">exact until {exact_until}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def forest_svg(result: dict[str, Any], *, width: int = 680) -> str:
    """Odds ratios with 95% confidence intervals on a log axis (the intercept is left out)."""
    rows = [c for c in result.get("coefficients", []) if c["term"] != "intercept"]
    left, right, top, row_h = 150, 170, 24, 30
    height = top + row_h * max(len(rows), 1) + 44
    plot_w = width - left - right
    lows = [math.exp(c["ci_low"]) for c in rows] or [0.5]
    highs = [math.exp(c["ci_high"]) for c in rows] or [2.0]
    lo = min(min(lows), 1.0) / 1.1
    hi = max(max(highs), 1.0) * 1.1
    log_lo, log_hi = math.log(lo), math.log(hi)

    def x(value: float) -> float:
        return left + plot_w * (math.log(value) - log_lo) / (log_hi - log_lo)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="forest-title forest-desc" '
        'class="plot plot-forest">',
        '<title id="forest-title">Forest plot of odds ratios</title>',
        '<desc id="forest-desc">Odds ratio and 95% confidence interval per model term, on a '
        "logarithmic axis; the vertical line marks an odds ratio of 1.</desc>",
    ]
    axis_y = top + row_h * max(len(rows), 1)
    parts.append(
        f'<line x1="{_f(x(1.0))}" x2="{_f(x(1.0))}" y1="{top - 8}" y2="{axis_y}" '
        'stroke="#6b7280" stroke-dasharray="4 3"/>'
        f'<line x1="{left}" x2="{left + plot_w}" y1="{axis_y}" y2="{axis_y}" stroke="#374151"/>'
    )
    candidates = [0.1, 0.2, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 3, 4, 5, 10, 20, 50, 100]
    for tick in [t for t in candidates if lo <= t <= hi]:
        parts.append(
            f'<line x1="{_f(x(tick))}" x2="{_f(x(tick))}" y1="{axis_y}" y2="{axis_y + 4}" '
            'stroke="#374151"/>'
            f'<text x="{_f(x(tick))}" y="{axis_y + 16}" text-anchor="middle" font-size="11">'
            f"{tick:g}</text>"
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{axis_y + 34}" text-anchor="middle" font-size="12">'
        "Odds ratio (95% CI, log scale)</text>"
    )
    for i, c in enumerate(rows):
        cy = top + row_h * i + row_h / 2
        odds, low, high = c["odds_ratio"], math.exp(c["ci_low"]), math.exp(c["ci_high"])
        parts.append(
            f'<text x="{left - 10}" y="{_f(cy + 4)}" text-anchor="end" font-size="12">'
            f"{escape(c['term'])}</text>"
            f'<line x1="{_f(x(low))}" x2="{_f(x(high))}" y1="{_f(cy)}" y2="{_f(cy)}" '
            'stroke="#1f5fa8" stroke-width="2"/>'
            f'<rect x="{_f(x(odds) - 5)}" y="{_f(cy - 5)}" width="10" height="10" fill="#1f5fa8"/>'
            f'<text x="{left + plot_w + 10}" y="{_f(cy + 4)}" font-size="12">'
            f"{odds:.3f} ({low:.3f}–{high:.3f})</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
