"""Small template helpers of the catalogue."""

from __future__ import annotations

from django import template
from django.urls import NoReverseMatch, reverse

from catalogue.models import AccessMode

register = template.Library()

_MODES = dict(AccessMode.choices)


@register.filter
def mode_label(code: str) -> str:
    return str(_MODES.get(code, code))


@register.filter
def get_item(mapping, key):
    return (mapping or {}).get(key, [])


@register.simple_tag
def request_access_url(dataset) -> str:
    """The governance basket URL for a dataset, or "" while governance has no such view."""
    for args in ([dataset.pk], [dataset.identifier]):
        try:
            return reverse("governance:basket_add", args=args)
        except NoReverseMatch:
            continue
    try:
        return reverse("governance:basket_add") + f"?dataset={dataset.pk}"
    except NoReverseMatch:
        return ""


@register.simple_tag(takes_context=True)
def toggle_url(context, name: str, value: str) -> str:
    """The current search URL with one facet value switched on or off (page reset)."""
    query = context["request"].GET.copy()
    values = query.getlist(name)
    if value in values:
        values.remove(value)
    else:
        values.append(value)
    query.setlist(name, values)
    query.pop("page", None)
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.simple_tag(takes_context=True)
def page_url(context, number: int) -> str:
    query = context["request"].GET.copy()
    query["page"] = number
    return f"?{query.urlencode()}"


@register.simple_tag
def freshness_of(dataset):
    """How fresh the data behind a dataset is (its database profile and agreed interval)."""
    from catalogue import profiles

    return profiles.freshness(dataset)
