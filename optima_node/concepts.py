"""Standard OMOP concept ids the agent itself relies on."""

from __future__ import annotations

MALE = 8507
FEMALE = 8532
EHR = 32817  # Type Concept "EHR"
