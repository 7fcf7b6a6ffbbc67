"""Writes: submitting feedback, the triage workflow, comments, votes, attachments, CDS disagreements.

Every function is keyword-only, runs in one transaction and writes its audit event there. Authors
are notified of status changes and replies (``notifications``: in-app and by e-mail, through
``accounts.notifications``). One module per idea; import them from here.
"""

from .cds import (
    cds_disagreement_record,
    evaluation_snapshot,
)
from .comments import (
    attachment_add,
    comment_add,
    vote_add,
    vote_remove,
)
from .items import (
    EDITABLE_FIELDS,
    clean_page_path,
    default_persona,
    feedback_submit,
    feedback_update,
    sites_for,
)
from .workflow import (
    REFUSED_ROLE,
    TRANSITIONS,
    VERSION_RE,
    Transition,
    available_transitions,
    feedback_mark_duplicate,
    feedback_reopen,
    feedback_resolve,
    feedback_start,
    feedback_transition,
    feedback_triage,
    feedback_wont_fix,
    label_objects,
    platform_team_users,
)

__all__ = [
    "EDITABLE_FIELDS",
    "REFUSED_ROLE",
    "TRANSITIONS",
    "VERSION_RE",
    "Transition",
    "attachment_add",
    "available_transitions",
    "cds_disagreement_record",
    "clean_page_path",
    "comment_add",
    "default_persona",
    "evaluation_snapshot",
    "feedback_mark_duplicate",
    "feedback_reopen",
    "feedback_resolve",
    "feedback_start",
    "feedback_submit",
    "feedback_transition",
    "feedback_triage",
    "feedback_update",
    "feedback_wont_fix",
    "label_objects",
    "platform_team_users",
    "sites_for",
    "vote_add",
    "vote_remove",
]
