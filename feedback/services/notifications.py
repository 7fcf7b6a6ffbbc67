"""Who is told about feedback: the author, of status changes and replies made by someone else.

The message goes through ``accounts.notifications.notify``: it appears in the author's in-app
notifications and is e-mailed (with retries and a resend sweep) when the author has an address.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.template.loader import render_to_string

from accounts import notifications

from ..models import Comment, FeedbackItem, Status

if TYPE_CHECKING:
    from django.contrib.auth.models import User

STATUS_CHANGED = "feedback.status_changed"
REPLIED = "feedback.replied"


def _author_to_notify(item: FeedbackItem, actor):
    author = item.author
    if author is None or not author.is_active:
        return None
    if actor is not None and author.pk == getattr(actor, "pk", None):
        return None
    return author


def notify_author_of_status(*, item: FeedbackItem, actor: User, before: str, note: str) -> None:
    author = _author_to_notify(item, actor)
    if author is None:
        return
    context = {
        "item": item,
        "before": Status(before).label,
        "after": item.get_status_display(),
        "note": note,
    }
    notifications.notify(
        recipients=[author],
        verb=STATUS_CHANGED,
        subject=f"Feedback #{item.pk} is now {item.get_status_display()}: {item.title}",
        body=render_to_string("feedback/notifications/status.txt", context).strip(),
        url=item.get_absolute_url(),
        organisation=item.site,
        obj=item,
    )


def notify_author_of_reply(*, item: FeedbackItem, comment: Comment, actor: User) -> None:
    author = _author_to_notify(item, actor)
    if author is None:
        return
    notifications.notify(
        recipients=[author],
        verb=REPLIED,
        subject=f"New reply to your feedback #{item.pk}: {item.title}",
        body=render_to_string(
            "feedback/notifications/reply.txt", {"item": item, "comment": comment, "actor": actor}
        ).strip(),
        url=item.get_absolute_url(),
        organisation=item.site,
        obj=item,
    )
