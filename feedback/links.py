"""Links from feedback to the object it is about, checked through the target app's choke point.

Only objects the author may see can be linked: the target app's ``<app>.permissions.restrict``
decides. Apps above this one (catalogue datasets, federation analyses, CDS evaluations) are looked
up by name when a link is made, never imported at import time. An app without a ``restrict`` yet
cannot be linked to (fail closed).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError

# "app_label.model" → what the form calls it.
LINKABLE = {
    "catalogue.dataset": "Dataset",
    "federation.analysis": "Analysis",
    "cds.evaluation": "CDS evaluation",
}


def linkable_models() -> dict[str, str]:
    """The linkable models that exist in this installation."""
    present = {}
    for label, name in LINKABLE.items():
        app_label, model_name = label.split(".")
        try:
            apps.get_model(app_label, model_name)
        except LookupError:
            continue
        present[label] = name
    return present


def restrict_for(app_label: str) -> Callable | None:
    try:
        module = importlib.import_module(f"{app_label}.permissions")
    except ImportError:
        return None
    restrict = getattr(module, "restrict", None)
    return restrict if callable(restrict) else None


def visible_object(model, object_id, user):
    """The object if ``user`` may view it through its app's choke point, else None."""
    restrict = restrict_for(model._meta.app_label)
    if restrict is None:
        return None
    try:
        return restrict(model._default_manager.all(), user, "view").filter(pk=object_id).first()
    except (ValueError, TypeError, ValidationError):
        return None


def resolve_link(*, user, target: str, object_id: str):
    """Validate a link given as ``"app_label.model"`` and an id; returns the object."""
    target = (target or "").strip().lower()
    if target not in LINKABLE:
        raise ValidationError({"link_type": [f"Feedback cannot be linked to “{target}”."]})
    app_label, model_name = target.split(".")
    try:
        model = apps.get_model(app_label, model_name)
    except LookupError:
        raise ValidationError(
            {"link_type": [f"{LINKABLE[target]}s do not exist in this portal yet."]}
        ) from None
    obj = visible_object(model, str(object_id).strip(), user)
    if obj is None:
        raise ValidationError(
            {"link_id": [f"No {LINKABLE[target].lower()} with this id that you may see."]}
        )
    return obj


def link_fields(obj) -> dict:
    """Model fields that store a link to ``obj`` (with a label frozen at link time)."""
    if obj is None:
        return {"link_type": None, "link_id": "", "link_label": ""}
    return {
        "link_type": ContentType.objects.get_for_model(obj),
        "link_id": str(obj.pk),
        "link_label": str(obj)[:200],
    }


def link_target_label(item) -> str:
    if not item.link_type_id:
        return ""
    ct = ContentType.objects.get_for_id(item.link_type_id)
    return LINKABLE.get(f"{ct.app_label}.{ct.model}", ct.name)


def link_url(item, user) -> str:
    """The linked object's page, if it has one and ``user`` may still see it."""
    if not item.link_type_id:
        return ""
    ct = ContentType.objects.get_for_id(item.link_type_id)
    model = ct.model_class()
    if model is None or not hasattr(model, "get_absolute_url"):
        return ""
    obj = visible_object(model, item.link_id, user)
    return obj.get_absolute_url() if obj is not None else ""
