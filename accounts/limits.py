"""Input limits: how long a text and how large a number the portal accepts, defined once.

Every free-text and numeric input of a form or an API serializer takes its bound from here
(docs/security.md "Input limits" lists them). Use the keyword helpers so the message names the
limit and the OpenAPI schema carries it (``maxLength``, ``minimum``/``maximum``)::

    description = serializers.CharField(**limits.chars(limits.TEXT_LONG))
    body = forms.CharField(widget=forms.Textarea, **limits.chars(limits.TEXT_LONG))
    age = serializers.IntegerField(**limits.between(0, limits.AGE_MAX))

Limits of analysis parameters belong to the node's wire contract (``optima_node.schemas``), which
cannot import the portal; the shared ones are re-exported here so both sides agree.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework import serializers

from optima_node.schemas import (
    AGE_MAX,
    CONCEPT_ID_MAX,
    CONCEPT_ID_MIN,
    CONCEPT_IDS_MAX,
    DATE_MAX,
    DATE_MIN,
)

__all__ = [
    "AGE_MAX",
    "CONCEPT_IDS_MAX",
    "CONCEPT_ID_MAX",
    "CONCEPT_ID_MIN",
    "DATE_MAX",
    "DATE_MIN",
]

# --- text (characters) ------------------------------------------------------------------------
TEXT_SHORT = 200  # titles, names, references, labels, one-line fields
TITLE = 300  # dataset and project titles (their models' length)
TEXT_MEDIUM = 2_000  # reasons, version notes, short descriptions
TEXT_LONG = 20_000  # descriptions, research questions, comments, markdown bodies
TEXT_DOCUMENT = 100_000  # agreement template bodies (whole legal documents)
IDENTIFIER = 100  # slugs, pathway ids, node references
USERNAME = 150  # Django's username length
URL = 2_000
PASSWORD = 1_000
VERSION = 40  # version strings (feedback "fixed in", component versions)

# --- lists (items) ----------------------------------------------------------------------------
LIST_SHORT = 100  # keywords, labels, team members, datasets of a request
LIST_LONG = 1_000  # concept ids, datasets of an analysis

# --- numbers ----------------------------------------------------------------------------------
ID_MAX = 2**63 - 1  # database primary keys (64-bit)
PERSONS_MAX = 10**9  # persons in a dataset
RECORDS_MAX = 10**12  # records in a dataset
NODES_MAX = 1_000  # nodes an analysis may wait for
ANALYSIS_VERSION_MAX = 100

# --- dates ------------------------------------------------------------------------------------
REQUESTED_END_YEARS = 10  # an access request asks for at most ten years of access
TOKEN_YEARS = 10  # an API token expires at most ten years ahead
# Percentages and clinical ranges of CDS inputs are declared per input in cds/pathways/*.yaml.


def chars(limit: int) -> dict[str, Any]:
    """Keyword arguments of a Django form or DRF ``CharField`` limited to ``limit`` characters."""
    return {"max_length": limit, "error_messages": {"max_length": text_message(limit)}}


def text_message(limit: int) -> str:
    return f"Ensure this text has at most {limit:,} characters."


def between(low: int | float, high: int | float) -> dict[str, Any]:
    """Keyword arguments of a Django form or DRF number field bounded to ``low .. high``."""
    return {"min_value": low, "max_value": high}


def check_date(value: date | None, *, low: date = DATE_MIN, high: date = DATE_MAX) -> None:
    """A validator for any date input: it must lie in ``low .. high`` (default 1900 to 2100)."""
    if value is not None and not (low <= value <= high):
        raise ValidationError(
            f"Enter a date between {low.isoformat()} and {high.isoformat()}.", code="date_range"
        )


def requested_end_date_max() -> date:
    today = timezone.localdate()
    try:
        return today.replace(year=today.year + REQUESTED_END_YEARS)
    except ValueError:  # 29 February
        return today.replace(year=today.year + REQUESTED_END_YEARS, day=28)


def check_requested_end_date(value: date | None) -> None:
    """An access request's end date: at most REQUESTED_END_YEARS years ahead."""
    if value is None:
        return
    high = requested_end_date_max()
    if value > high:
        raise ValidationError(
            f"Access can be requested for at most {REQUESTED_END_YEARS} years: "
            f"give a date until {high.isoformat()}.",
            code="date_range",
        )
    check_date(value)


def formfield_callback(**field_limits: int | dict[str, Any]):
    """A ModelForm ``Meta.formfield_callback`` that limits the named model fields: a number is a
    text length, a dict holds form-field keyword arguments (``between(...)``, ``validators``).
    The limits live in the form, because a model ``TextField`` has no length of its own and a
    limit must not need a migration."""

    def callback(db_field, **kwargs):
        limit = field_limits.get(db_field.name)
        if isinstance(limit, dict):
            kwargs.update(limit)
        elif limit is not None:
            kwargs.update(chars(limit))
        return db_field.formfield(**kwargs)

    return callback


class LimitedManyRelatedField(serializers.ManyRelatedField):
    """``PrimaryKeyRelatedField(many=True)`` with ``max_length``: more ids are refused before any
    is looked up (DRF's ``many=True`` takes no ``max_length``). Build it with many_related()."""

    def __init__(self, *, max_length: int, **kwargs):
        self.max_length = max_length
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, list | tuple) and len(data) > self.max_length:
            raise serializers.ValidationError(
                f"Ensure this list has at most {self.max_length:,} items."
            )
        return super().to_internal_value(data)


def many_related(*, queryset, max_length: int, **kwargs) -> LimitedManyRelatedField:
    return LimitedManyRelatedField(
        child_relation=serializers.PrimaryKeyRelatedField(queryset=queryset),
        max_length=max_length,
        **kwargs,
    )


def check_concept_ids(ids: list[int]) -> None:
    """OMOP concept ids typed into a form: each a positive 32-bit integer, at most a thousand."""
    if len(ids) > CONCEPT_IDS_MAX:
        raise ValidationError(f"Give at most {CONCEPT_IDS_MAX:,} concept ids.")
    bad = [i for i in ids if not CONCEPT_ID_MIN <= i <= CONCEPT_ID_MAX]
    if bad:
        raise ValidationError(
            f"Concept ids are whole numbers from {CONCEPT_ID_MIN} to {CONCEPT_ID_MAX:,}; "
            f"not {', '.join(str(i)[:20] for i in bad[:3])}."
        )


def check_token_expiry(value) -> None:
    """An API token's expiry (a datetime): at most TOKEN_YEARS years ahead."""
    if value is None:
        return
    high = timezone.now() + timedelta(days=365 * TOKEN_YEARS + 3)
    if value > high:
        raise ValidationError(
            f"A token expires at most {TOKEN_YEARS} years ahead, by {high.date().isoformat()}.",
            code="date_range",
        )
