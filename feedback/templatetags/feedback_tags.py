from __future__ import annotations

from django import template
from django.conf import settings

from .. import permissions
from ..markdown import render
from ..versions import component_for_path

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str):
    return render(text)


@register.inclusion_tag("feedback/partials/widget_button.html", takes_context=True)
def feedback_button(context):
    request = context.get("request")
    user = getattr(request, "user", None)
    show = bool(user and permissions.can_give_feedback(user))
    path = request.path if request is not None else "/"
    return {
        "show": show,
        "page": path,
        "component": component_for_path(path),
        "version": settings.PORTAL_VERSION,
    }
