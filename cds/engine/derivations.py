"""Named functions that pathway files may use to derive a value from inputs.

Each function takes already validated input values and raises ``ValueError`` with a message fit
for the person entering the data when the inputs cannot be mapped. The registry is closed on
purpose: a pathway file can name these functions but cannot run code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_GLEASON = re.compile(r"^\s*([1-5])\s*\+\s*([1-5])\s*(?:=\s*(\d{1,2}))?\s*$")


def parse_gleason(text: str) -> tuple[int, int]:
    """``"4+3"`` or ``"4+3=7"`` -> (4, 3)."""
    match = _GLEASON.match(text)
    if match is None:
        raise ValueError(f"'{text}' is not a Gleason score written as primary+secondary, e.g. 3+4.")
    primary, secondary = int(match[1]), int(match[2])
    if match[3] is not None and int(match[3]) != primary + secondary:
        raise ValueError(f"'{text}': the total does not equal {primary}+{secondary}.")
    return primary, secondary


def gleason_to_isup(text: str) -> int:
    """ISUP 2014 grade group (Epstein et al., Am J Surg Pathol 2016;40:244-52).

    Gleason <=6 -> 1, 3+4 -> 2, 4+3 -> 3, 8 (4+4, 3+5, 5+3) -> 4, 9-10 -> 5.
    """
    primary, secondary = parse_gleason(text)
    total = primary + secondary
    if total <= 6:
        return 1
    if total == 7:
        if (primary, secondary) == (3, 4):
            return 2
        if (primary, secondary) == (4, 3):
            return 3
        raise ValueError(f"Gleason {primary}+{secondary} has no ISUP grade group; give isup_grade.")
    if total == 8:
        return 4
    return 5


def gleason_primary_pattern(text: str) -> int:
    return parse_gleason(text)[0]


def percentage(part: float, whole: float) -> float:
    if whole <= 0:
        raise ValueError("The total must be greater than zero.")
    if part > whole:
        raise ValueError("The part cannot exceed the total.")
    return 100.0 * part / whole


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "gleason_to_isup": gleason_to_isup,
    "gleason_primary_pattern": gleason_primary_pattern,
    "percentage": percentage,
}
