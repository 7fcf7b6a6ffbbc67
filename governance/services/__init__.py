"""Writes of the governance app, one module per idea; import them from here."""

from .agreements import (
    agreement_create,
    agreement_expire,
    agreement_new_version,
    agreement_send,
    agreement_sign,
    agreement_template_publish,
    agreement_terminate,
    agreement_update,
    latest_template,
)

__all__ = [
    "agreement_create",
    "agreement_expire",
    "agreement_new_version",
    "agreement_send",
    "agreement_sign",
    "agreement_template_publish",
    "agreement_terminate",
    "agreement_update",
    "latest_template",
]
from .decisions import (
    agreement_gaps,
    decision_approve,
    decision_reject,
    decision_request_changes,
    decision_start_review,
)
from .entitlements import (
    end_of_day,
    entitlement_accept_terms,
    entitlement_expire,
    entitlement_revoke,
    entitlements_check_terms,
)
from .requests import (
    access_request_create,
    access_request_resubmit,
    access_request_submit,
    access_request_update,
    access_request_withdraw,
    attachment_add,
    basket_add,
    basket_remove,
    comment_post,
    derive_status,
    entitlement_renew,
    submission_errors,
)

__all__ += [
    "access_request_create",
    "access_request_resubmit",
    "access_request_submit",
    "access_request_update",
    "access_request_withdraw",
    "agreement_gaps",
    "attachment_add",
    "basket_add",
    "basket_remove",
    "comment_post",
    "decision_approve",
    "decision_reject",
    "decision_request_changes",
    "decision_start_review",
    "derive_status",
    "end_of_day",
    "entitlement_accept_terms",
    "entitlement_expire",
    "entitlement_renew",
    "entitlement_revoke",
    "entitlements_check_terms",
    "submission_errors",
]
