"""How released counts and scrolling tables read on the analysis pages."""

from __future__ import annotations

import re
from pathlib import Path

from django.template.loader import render_to_string

from federation.templatetags.federation_tags import released_count

TEMPLATES = Path(__file__).resolve().parents[2] / "federation" / "templates"


def test_a_fully_suppressed_cell_reads_suppressed_never_at_least_zero():
    assert released_count(0, True) == "suppressed (small count)"
    assert released_count(12, True) == "≥ 12"
    assert released_count(12, False) == "12"
    html = render_to_string(
        "federation/partials/result_cohort_count.html",
        {
            "result": {
                "total": 31,
                "total_lower_bound": True,
                "stratify_by": ["age_group"],
                "rows": [
                    {"age_group": "20-29", "count": 0, "lower_bound": True},
                    {"age_group": "30-39", "count": 31, "lower_bound": False},
                ],
            }
        },
    )
    assert "≥ 0" not in html
    assert re.search(r"20-29</td><td>suppressed \(small count\)", html)
    assert "≥ 31" in html


def test_every_scrolling_box_is_a_focusable_labelled_region():
    """axe's scrollable-region-focusable (serious): keyboard users must be able to scroll it."""
    opening = re.compile(r'<(div|pre)\b[^>]*class="(table-scroll|release-payload)"[^>]*>')
    found = 0
    for path in TEMPLATES.rglob("*.html"):
        for match in opening.finditer(path.read_text()):
            found += 1
            tag = match.group(0)
            assert 'tabindex="0"' in tag and "aria-label=" in tag, f"{path.name}: {tag}"
    assert found >= 10
