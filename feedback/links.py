"""Links from feedback to the object it is about, checked through the target app's choke point.

Only objects the author may see can be linked: the target app's one choke point decides, always
``<app>.permissions.restrict(queryset, user, "view")`` (every app has exactly that entry, dispatching
on the model). Apps above this one are looked up by name when a link is made, never imported at
import time. A model whose app has no ``restrict``, or whose ``restrict`` has no rules for it,
cannot be linked to (fail closed).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.urls import NoReverseMatch, reverse


@dataclass(frozen=True)
class LinkTarget:
    name: str
    lookup: str = "pk"  # the field people type in the form ("identifier" for datasets)
    url_name: str = ""  # the object's page, when the model has no get_absolute_url
    url_field: str = "pk"


LINKABLE: dict[str, LinkTarget] = {
    "catalogue.dataset": LinkTarget("Dataset", "identifier", "catalogue:detail", "identifier"),
    "federation.analysis": LinkTarget("Analysis", "pk", "federation:analysis", "pk"),
    "cds.evaluation": LinkTarget("CDS evaluation", "pk", "cds:evaluation", "pk"),
}


def linkable_models() -> dict[str, str]:
    """The linkable models that exist in this installation: {"app.model": name}."""
    present = {}
    for label, target in LINKABLE.items():
        app_label, model_name = label.split(".")
        try:
            apps.get_model(app_label, model_name)
        except LookupError:
            continue
        present[label] = target.name
    return present


def restrict_for(model) -> Callable | None:
    """The target app's ``restrict`` if it has rules for ``model``, else None."""
    try:
        module = importlib.import_module(f"{model._meta.app_label}.permissions")
    except ImportError:
        return None
    restrict = getattr(module, "restrict", None)
    if not callable(restrict) or model not in getattr(restrict, "models", ()):
        return None
    return restrict


def visible_object(model, user, **lookup):
    """The object if ``user`` may view it through its app's choke point, else None."""
    restrict = restrict_for(model)
    if restrict is None:
        return None
    try:
        return restrict(model._default_manager.all(), user, "view").filter(**lookup).first()
    except (ValueError, TypeError, LookupError, ValidationError):
        return None


def resolve_link(*, user, target: str, object_id: str):
    """Validate a link given as ``"app_label.model"`` and the id people know; returns the object."""
    target = (target or "").strip().lower()
    spec = LINKABLE.get(target)
    if spec is None:
        raise ValidationError({"link_type": [f"Feedback cannot be linked to “{target}”."]})
    app_label, model_name = target.split(".")
    try:
        model = apps.get_model(app_label, model_name)
    except LookupError:
        raise ValidationError(
            {"link_type": [f"{spec.name}s do not exist in this portal yet."]}
        ) from None
    obj = visible_object(model, user, **{spec.lookup: str(object_id).strip()})
    if obj is None:
        raise ValidationError(
            {"link_id": [f"No {spec.name.lower()} with this id that you may see."]}
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


def _target(item) -> tuple[str, LinkTarget | None]:
    ct = ContentType.objects.get_for_id(item.link_type_id)
    label = f"{ct.app_label}.{ct.model}"
    return label, LINKABLE.get(label)


def link_target_label(item) -> str:
    if not item.link_type_id:
        return ""
    label, spec = _target(item)
    return spec.name if spec else label


def link_url(item, user) -> str:
    """The linked object's page, if it has one and ``user`` may still see it."""
    if not item.link_type_id:
        return ""
    model = ContentType.objects.get_for_id(item.link_type_id).model_class()
    if model is None:
        return ""
    obj = visible_object(model, user, pk=item.link_id)
    if obj is None:
        return ""
    if hasattr(obj, "get_absolute_url"):
        return obj.get_absolute_url()
    _, spec = _target(item)
    if spec and spec.url_name:
        try:
            return reverse(spec.url_name, args=[getattr(obj, spec.url_field)])
        except NoReverseMatch:
            return ""
    return ""
