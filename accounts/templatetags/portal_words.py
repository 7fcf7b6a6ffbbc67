"""Words for people where the database keeps codes: role names and audit actions."""

from __future__ import annotations

from django import template

from ..models import Role

register = template.Library()


@register.filter
def role_labels(codes) -> str:
    """["data_steward", "researcher"] → "Data steward, Researcher"."""
    labels = dict(Role.choices)
    return ", ".join(str(labels.get(code, code)) for code in codes or [])


@register.filter
def audit_verb(action: str) -> str:
    """ "access_request.updated" → "Access request updated" (the code stays in the audit trail)."""
    words = " ".join(part.replace("_", " ") for part in str(action).split(".") if part)
    return words[:1].upper() + words[1:]
