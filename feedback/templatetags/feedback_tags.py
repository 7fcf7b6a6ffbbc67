from __future__ import annotations

from django import template
from django.conf import settings

from accounts import permissions as base

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
    # No extra query on every page: memberships are already cached on the user by the navigation;
    # whether one of them is a test site is checked when the button is pressed.
    show = bool(
        user is not None
        and user.is_authenticated
        and (base.is_platform_admin(user) or base.member_org_ids(user))
    )
    path = request.path if request is not None else "/"
    return {
        "show": show,
        "page": path,
        "component": component_for_path(path),
        "version": settings.PORTAL_VERSION,
    }


ACTION_LABELS = {
    "feedback.submitted": "submitted",
    "feedback.updated": "edited",
    "feedback.shared": "shared with the test sites",
    "feedback.unshared": "stopped sharing",
    "feedback.triaged": "triaged",
    "feedback.started": "started work",
    "feedback.resolved": "resolved",
    "feedback.closed_wont_fix": "closed as won't fix",
    "feedback.marked_duplicate": "marked as duplicate",
    "feedback.reopened": "reopened",
    "feedback.commented": "commented",
    "feedback.voted": "voted",
    "feedback.unvoted": "withdrew a vote",
    "feedback.attachment_added": "added an attachment",
    "feedback.cds_disagreement_recorded": "recorded a CDS disagreement",
}


@register.filter
def audit_label(action: str) -> str:
    return ACTION_LABELS.get(action, action)


@register.filter
def hours(value) -> str:
    """20.5 → "20.5 h"; 216 → "9.0 days"."""
    if value is None:
        return "—"
    value = float(value)
    return f"{value / 24:.1f} days" if value >= 48 else f"{value:.1f} h"
