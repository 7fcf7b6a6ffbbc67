"""Server-rendered SVG bar charts (no JavaScript): stacked bars over weeks, one colour per series.

Colours are presentation attributes, not ``style``, so the Content Security Policy is satisfied; each
segment carries a ``<title>`` and every chart comes with a data table for screen readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

# Okabe–Ito, colour-blind safe, plus two greys.
PALETTE = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
    "#7f7f7f", "#b0b0b0",
]  # fmt: skip


@dataclass
class StackedSeries:
    title: str
    buckets: list[date]
    series: dict[str, list[int]]  # label → count per bucket

    @property
    def totals(self) -> list[int]:
        return [sum(values[i] for values in self.series.values()) for i in range(len(self.buckets))]

    @property
    def rows(self) -> list[tuple[date, list[int], int]]:
        labels = list(self.series)
        return [
            (bucket, [self.series[label][i] for label in labels], self.totals[i])
            for i, bucket in enumerate(self.buckets)
        ]


def _n(value: float) -> str:
    return f"{value:.1f}"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _nice_max(value: int) -> int:
    if value <= 5:
        return 5
    step = 5 if value <= 50 else 10 ** (len(str(value)) - 1)
    return ((value + step - 1) // step) * step


def stacked_bars(
    chart: StackedSeries, *, chart_id: str, width: int = 640, height: int = 240
) -> SafeString:
    left, right, top, bottom = 36, 8, 10, 34
    columns = 2 if max((len(label) for label in chart.series), default=0) > 22 else 4
    legend_rows = (len(chart.series) + columns - 1) // columns
    total_h = height + legend_rows * 18 + 6
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(chart.buckets), 1)
    slot = plot_w / n
    bar_w = max(slot * 0.7, 2)
    ymax = _nice_max(max(chart.totals, default=0))
    parts = [
        format_html(
            '<svg class="feedback-chart" viewBox="0 0 {} {}" width="100%" role="img" '
            'aria-labelledby="{}-title" xmlns="http://www.w3.org/2000/svg">'
            '<title id="{}-title">{}</title>',
            width,
            total_h,
            chart_id,
            chart_id,
            chart.title,
        )
    ]
    for tick in range(0, 6):
        value = ymax * tick // 5
        y = top + plot_h - plot_h * value / ymax
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#d0d7de" stroke-width="1"/>'
                '<text x="{}" y="{}" font-size="10" text-anchor="end" fill="#4f5b66">{}</text>',
                left,
                width - right,
                _n(y),
                _n(y),
                left - 4,
                _n(y + 3),
                value,
            )
        )
    colours = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(chart.series)}
    label_every = max(1, n // 8)
    for i, bucket in enumerate(chart.buckets):
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h
        for label, values in chart.series.items():
            count = values[i]
            if not count:
                continue
            h = plot_h * count / ymax
            y -= h
            parts.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}">'
                    "<title>{}: {} in week of {}</title></rect>",
                    _n(x),
                    _n(y),
                    _n(bar_w),
                    _n(h),
                    colours[label],
                    label,
                    count,
                    bucket.isoformat(),
                )
            )
        if i % label_every == 0:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" font-size="10" text-anchor="middle" fill="#4f5b66">{}</text>',
                    _n(x + bar_w / 2),
                    top + plot_h + 14,
                    bucket.strftime("%d %b"),
                )
            )
    for i, label in enumerate(chart.series):
        lx = left + (i % columns) * (plot_w / columns)
        ly = height + (i // columns) * 18
        parts.append(
            format_html(
                '<rect x="{}" y="{}" width="12" height="12" fill="{}"/>'
                '<text x="{}" y="{}" font-size="11" fill="#1b1f24">{}</text>',
                _n(lx),
                ly,
                colours[label],
                _n(lx + 16),
                ly + 10,
                _shorten(label, 22 if columns == 4 else 46),
            )
        )
    parts.append(mark_safe("</svg>"))
    # Every part above is format_html output (escaped), so the joined markup is safe.
    return mark_safe("".join(str(p) for p in parts))  # noqa: S308
