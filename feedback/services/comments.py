"""Comments, votes and attachments on a feedback item."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import transaction

from accounts import audit
from accounts import permissions as base
from accounts.models import Organisation, OrganisationKind

from .. import permissions, uploads
from ..models import Attachment, Comment, FeedbackItem, Vote
from .notifications import notify_author_of_reply

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import UploadedFile


def _comment_org(user, item: FeedbackItem):
    member = base.member_org_ids(user)
    if item.site_id in member:
        return item.site_id
    sites = sorted(permissions.test_site_ids(user))
    if sites:
        return sites[0]
    platform = Organisation.objects.filter(pk__in=member, kind=OrganisationKind.PLATFORM).first()
    return platform.pk if platform else None


def _comment_create(*, user, item: FeedbackItem, body: str, notify: bool = True) -> Comment:
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": ["Write a comment."]})
    if len(body) > 10_000:
        raise ValidationError({"body": ["Keep a comment under 10,000 characters."]})
    comment = Comment.objects.create(
        item=item, author=user, organisation_id=_comment_org(user, item), body=body
    )
    audit.record(
        "feedback.commented",
        actor=user,
        obj=item,
        organisation=item.site,
        payload={"comment": comment.pk},
    )
    if notify:
        notify_author_of_reply(item=item, comment=comment, actor=user)
    return comment


@transaction.atomic
def comment_add(*, user: User, item: FeedbackItem, body: str) -> Comment:
    if not permissions.allows(item, user, "comment"):
        raise PermissionDenied("You cannot comment on this item.")
    return _comment_create(user=user, item=item, body=body)


@transaction.atomic
def vote_add(*, user: User, item: FeedbackItem) -> bool:
    """Add ``user``'s vote; False if they had voted already."""
    if not permissions.allows(item, user, "vote"):
        raise PermissionDenied("You cannot vote for this item.")
    if item.author_id == user.pk:
        raise ValidationError({"vote": ["You cannot vote for your own feedback."]})
    if not item.is_open:
        raise ValidationError({"vote": ["Votes are for open items; this one is closed."]})
    _, created = Vote.objects.get_or_create(item=item, user=user)
    if created:
        audit.record("feedback.voted", actor=user, obj=item, organisation=item.site)
    return created


@transaction.atomic
def vote_remove(*, user: User, item: FeedbackItem) -> bool:
    if not permissions.allows(item, user, "vote"):
        raise PermissionDenied("You cannot vote for this item.")
    deleted, _ = Vote.objects.filter(item=item, user=user).delete()
    if deleted:
        audit.record("feedback.unvoted", actor=user, obj=item, organisation=item.site)
    return bool(deleted)


def _attachment_create(*, user, item: FeedbackItem, upload) -> Attachment:
    if item.attachments.count() >= uploads.MAX_ATTACHMENTS_PER_ITEM:
        raise ValidationError(
            {"file": [f"An item holds at most {uploads.MAX_ATTACHMENTS_PER_ITEM} attachments."]}
        )
    checked = uploads.check_upload(upload)
    attachment = Attachment(
        item=item,
        original_name=checked.name,
        content_type=checked.content_type,
        size=checked.size,
        sha256=checked.sha256,
        uploaded_by=user,
    )
    attachment.file.save(checked.name, ContentFile(checked.data), save=False)
    attachment.save()
    audit.record(
        "feedback.attachment_added",
        actor=user,
        obj=item,
        organisation=item.site,
        payload={
            "attachment": attachment.pk,
            "name": checked.name,
            "content_type": checked.content_type,
            "size": checked.size,
            "sha256": checked.sha256,
        },
    )
    return attachment


@transaction.atomic
def attachment_add(*, user: User, item: FeedbackItem, upload: UploadedFile) -> Attachment:
    if not permissions.allows(item, user, "attach"):
        raise PermissionDenied("Only the author's site and the platform team can add attachments.")
    return _attachment_create(user=user, item=item, upload=upload)
