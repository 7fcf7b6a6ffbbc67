"""The permission matrix: every URL pattern of the project × eight roles → the expected answer.

The routes are read from Django's resolver, so a new URL without an entry in ``MATRIX`` fails
``test_every_url_pattern_has_an_entry``. Each entry names the objects its URL points at (real demo
objects, see ``matrix_world.py``), the method, and one expected outcome per role in the order of
``ROLES``: anonymous, researcher, steward A, steward B, DAC member A, site admin A, curator,
platform admin. Outcomes: a status code, ``L`` (302 to the login page), ``R`` (another redirect),
``*`` (any answer but a server error: the admin's own pages for staff), ``-`` (not exercised for that role: a POST that would change the owner's own data is covered by
the app's own tests).

Every request runs in a savepoint that is rolled back, so a POST changes nothing for the next one;
any answer other than 2xx/3xx must also leave the audit chain untouched (no half-done writes).
Set ``MATRIX_RECORD=1`` to print the observed table (to review it, never to paste it blindly).
"""

from __future__ import annotations

import logging
import os

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from tests.security.matrix_world import ROLES, all_routes, build_world

pytestmark = pytest.mark.django_db

GET, POST, DELETE = "GET", "POST", "DELETE"
ADMIN_PREFIX = "admin/"

# Which world object a ``pk`` means, by URL name (first match wins).
PK_KIND = [
    ("central-node-token", "dataset_pk"),
    ("central:policy", "dataset_pk"),
    ("central-upload", "central_upload"),
    ("central-version", "central_version"),
    ("central:upload", "central_upload"),
    ("central:report", "central_upload"),
    ("central:retire", "central_version"),
    ("central:dataset", "dataset_pk"),
    ("fl_", "fl_job"),
    ("fl-job", "fl_job"),
    ("model", "trained_model"),
    ("agreement-template", "template"),
    ("access-request-attachments", "request"),
    ("governance-attachment", "gov_attachment"),
    ("attachment_download", "gov_attachment"),
    ("attachment_upload", "request"),
    ("comment_create", "request"),
    ("decision_action", "request"),
    ("agreement", "agreement"),
    ("access-request", "request"),
    ("request", "request"),
    ("entitlement", "entitlement"),
    ("notification", "notification"),
    ("analysis", "analysis"),
    ("dataset_refresh", "nodedataset"),
    ("dataset_serve", "dataset_pk"),
    ("dataset_profile", "nodedataset"),
    ("node", "node"),
    ("run", "run"),
    ("evaluation", "evaluation"),
    ("manage_", "pathway_version"),
    ("feedback", "feedback"),
    ("api-token", "token"),
    ("api_token", "token"),
    ("organisation-detail", "custodian"),
]
PARAM = {
    "identifier": "dataset",
    "number": "version",
    "dataset": "dataset_pk",
    "custodian": "=de-hospital",
    "custodian_id": "custodian",
    "decision_action": "=approve",
    "action": "=approve",
    "seq": "=1",
    "pathway_id": "pathway",
    "attachment_pk": "feedback_attachment",
    "run_id": "run",
    "evaluation_id": "evaluation",
    "uidb64": "=MQ",
    "token": "invitation",
    "user_id": "member",
    "which": "=signed",
    "fmt": "=ttl",
    "name": "=triage",
    "service_id": "pathway",
    "format": "=json",
    "link": "node_link",
    "key": "=lslogin",
}


def kwargs_for(route, world, overrides: dict) -> dict:
    kwargs = {}
    for param in route.params:
        if param == "data":
            continue
        spec = overrides.get(param)
        if spec is None and param == "pk":
            spec = next(kind for fragment, kind in PK_KIND if fragment in route.key)
        if spec is None and param == "slug":
            spec = "=prostate-eau" if route.key.startswith("cds:") else "=de-hospital"
        if spec is None and param == "token" and "password_reset" in route.key:
            spec = "=set-password"
        spec = spec or PARAM[param]
        kwargs[param] = spec[1:] if spec.startswith("=") else world.ids[spec]
    return kwargs


def E(key, expected, method=GET, **overrides):
    codes = expected.split()
    assert len(codes) == len(ROLES), f"{key}: {len(codes)} outcomes for {len(ROLES)} roles"
    return key, (method, codes, overrides)


# Roles:      anon res  stA  stB  dacA siteA cur  admin
_ENTRIES = [
    E("healthz", "200 200 200 200 200 200 200 200"),
    E("readyz", "200 200 200 200 200 200 200 200"),
    E("api-schema", "401 200 200 200 200 200 200 200"),
    E("api-docs", "L 200 200 200 200 200 200 200"),
    E("api-redoc", "R R R R R R R R"),
    E("api-root", "200 200 200 200 200 200 200 200"),
    E("api-me", "401 200 200 200 200 200 200 200"),
    E("organisation-list", "200 200 200 200 200 200 200 200"),
    E("organisation-detail", "200 200 200 200 200 200 200 200"),
    E("api-token-list", "401 200 200 200 200 200 200 200"),
    E("api-token-detail", "401 204 404 404 404 404 404 404", DELETE),
    E("audit-event-list", "401 200 200 200 200 200 200 200"),
    E("audit-event-detail", "401 404 404 404 404 404 404 200"),
    E("catalogue-dataset-list", "200 200 200 200 200 200 200 200"),
    E("catalogue-dataset-detail", "200 200 200 200 200 200 200 200"),
    E("catalogue-dataset-publish", "401 404 404 404 404 404 400 400", POST),
    E("catalogue-dataset-request-changes", "401 404 404 404 404 404 400 400", POST),
    E("catalogue-dataset-restore", "401 404 200 404 404 404 404 404", POST),
    E("catalogue-dataset-retire", "401 404 404 404 404 404 200 200", POST),
    E("catalogue-dataset-submit", "401 404 400 404 404 404 404 404", POST),
    E("catalogue-dataset-versions", "200 200 200 200 200 200 200 200"),
    E("agreement-template-list", "401 200 200 200 200 200 200 200"),
    E("agreement-template-detail", "401 200 200 200 200 200 200 200"),
    E("agreement-list", "401 200 200 200 200 200 200 200"),
    E("agreement-detail", "401 200 200 404 200 200 404 200"),
    E("agreement-new-version", "401 403 403 404 201 403 404 201", POST),
    E("agreement-send", "401 403 403 404 400 403 404 400", POST),
    E("agreement-sign", "401 400 400 404 400 400 404 400", POST),
    E("agreement-terminate", "401 403 403 404 400 403 404 400", POST),
    E("basket-list", "401 200 200 200 200 200 200 200"),
    E("basket-detail", "401 204 204 204 204 204 204 204", DELETE),
    E("access-request-list", "401 200 200 200 200 200 200 200"),
    E("access-request-detail", "401 200 404 404 200 404 404 200"),
    E("access-request-attachments", "401 200 404 404 200 404 404 200"),
    E("access-request-comments", "401 200 404 404 200 404 404 200"),
    E("access-request-decide", "401 403 404 404 200 404 404 403", POST),
    E("access-request-resubmit", "401 400 404 404 403 404 404 403", POST),
    E("access-request-submit", "401 400 404 404 403 404 404 403", POST),
    E("access-request-withdraw", "401 200 404 404 403 404 404 403", POST),
    E("governance-attachment-detail", "401 200 404 404 200 404 404 200"),
    E("entitlement-list", "401 200 200 200 200 200 200 200"),
    E("entitlement-detail", "401 200 404 404 200 404 404 200"),
    E("entitlement-accept-terms", "401 200 404 404 403 404 404 403", POST),
    E("entitlement-renew", "401 201 404 404 403 404 404 403", POST),
    E("entitlement-revoke", "401 403 404 404 400 404 404 400", POST),
    E("notification-list", "401 200 200 200 200 200 200 200"),
    E("notification-detail", "401 404 404 404 200 404 404 404"),
    E("notification-unread-count", "401 200 200 200 200 200 200 200"),
    E("notification-read", "401 404 404 404 200 404 404 404", POST),
    E("notification-mark-read", "401 400 400 400 400 400 400 400", POST),
    E("data-use-register-list", "200 200 200 200 200 200 200 200"),
    E("custodian-statistics-list", "200 200 200 200 200 200 200 200"),
    E("node-heartbeat", "401 401 401 401 401 401 401 401"),
    E("node-claim", "401 401 401 401 401 401 401 401"),
    E("node-result", "401 401 401 401 401 401 401 401"),
    E("node-secure-key", "401 401 401 401 401 401 401 401", POST),
    E("node-secure-hold", "401 401 401 401 401 401 401 401", POST),
    E("node-secure-peers", "401 401 401 401 401 401 401 401"),
    E("node-secure-masked", "401 401 401 401 401 401 401 401", POST),
    E("analysis-types", "200 200 200 200 200 200 200 200"),
    E("analysis-list", "401 200 200 200 200 200 200 200"),
    E("analysis-list+fmt", "401 200 200 200 200 200 200 200"),
    E("analysis-detail", "401 200 404 404 404 404 404 200"),
    E("analysis-detail+fmt", "401 200 404 404 404 404 404 200"),
    E("analysis-cancel", "401 200 404 404 404 404 404 200", POST),
    E("analysis-cancel+fmt", "401 200 404 404 404 404 404 200", POST),
    E("node-list", "401 200 200 200 200 200 200 200"),
    E("node-list+fmt", "401 200 200 200 200 200 200 200"),
    E("node-detail", "401 404 404 404 404 200 404 200"),
    E("node-detail+fmt", "401 404 404 404 404 200 404 200"),
    E("cds-pathway-list", "401 200 200 200 200 200 200 200"),
    E("cds-pathway-detail", "401 200 200 200 200 200 200 200"),
    E("cds-evaluate", "401 400 400 400 400 400 400 400", POST),
    E("cds-evaluation-detail", "401 200 404 404 404 404 404 200"),
    E("feedback-stats", "401 404 404 404 404 404 200 200"),
    E("feedback-cds-disagreements", "401 404 404 404 404 404 200 200"),
    E("feedback-item-list", "401 200 200 200 200 200 200 200"),
    E("feedback-item-detail", "401 404 200 404 200 200 200 200"),
    E("feedback-item-attachment-download", "401 404 200 404 200 200 200 200"),
    E("feedback-item-attachments", "401 404 200 404 200 200 200 200"),
    E("feedback-item-comments", "401 404 200 404 200 200 200 200"),
    E("feedback-item-duplicate", "401 404 400 404 400 400 400 400", POST),
    E("feedback-item-reopen", "401 404 400 404 403 403 400 400", POST),
    E("feedback-item-resolve", "401 404 400 404 400 400 400 400", POST),
    E("feedback-item-start", "401 404 400 404 400 400 400 400", POST),
    E("feedback-item-triage", "401 404 403 404 403 403 200 200", POST),
    E("feedback-item-vote", "401 404 400 404 200 200 200 200", POST),
    E("feedback-item-wont-fix", "401 404 400 404 400 400 400 400", POST),
    E("accounts:home", "200 R R R R R R R"),
    E("accounts:dashboard", "L 200 200 200 200 200 200 200"),
    E("accounts:login", "200 R R R R R R R"),
    E("accounts:logout", "405 405 405 405 405 405 405 405"),
    E("accounts:password_change", "L 200 200 200 200 200 200 200"),
    E("accounts:password_change_done", "L 200 200 200 200 200 200 200"),
    E("accounts:password_reset", "200 200 200 200 200 200 200 200"),
    E("accounts:password_reset_done", "200 200 200 200 200 200 200 200"),
    E("accounts:password_reset_confirm", "200 200 200 200 200 200 200 200"),
    E("accounts:password_reset_complete", "200 200 200 200 200 200 200 200"),
    E("accounts:otp_verify", "L R R R 200 R R 200"),
    E("accounts:otp_enrol", "L 200 200 200 R 200 200 R"),
    E("accounts:api_tokens", "L 200 200 200 200 200 200 200"),
    # Recovery codes: only for a confirmed authenticator verified in this session.
    E("accounts:recovery_codes", "L R R R R R R R"),
    E("api-recovery-codes", "401 403 403 403 403 403 403 403"),
    # Federated login: no provider is configured here, so every provider key is unknown.
    E("accounts:oidc_login", "404 404 404 404 404 404 404 404"),
    E("accounts:oidc_callback", "404 404 404 404 404 404 404 404"),
    E("accounts:oidc_link", "L 404 404 404 404 404 404 404", POST),
    E("accounts:api_token_revoke", "L R 404 404 404 404 404 404", POST),
    E("accounts:invitation_accept", "404 404 404 404 404 404 404 404"),
    E("accounts:organisations", "L 200 200 200 200 200 200 200"),
    E("accounts:organisation", "L 404 200 404 200 200 404 200"),
    E("accounts:invitation_create", "L 404 404 404 404 404 404 400", POST),
    E("accounts:membership_edit", "L 404 404 404 404 404 404 200"),
    E("accounts:audit", "L 404 404 404 404 404 404 200"),
    E("accounts:audit_export", "L 404 404 404 404 404 404 200"),
    E("accounts:notifications", "L 200 200 200 200 200 200 200"),
    E("accounts:notification_count", "200 200 200 200 200 200 200 200"),
    E("accounts:notifications_read_all", "L R R R R R R R", POST),
    E("accounts:notification_read", "L 404 404 404 R 404 404 404", POST),
    E("catalogue:search", "200 200 200 200 200 200 200 200"),
    E("catalogue:create", "L 404 200 200 404 404 404 404"),
    E("catalogue:mine", "L 404 200 200 404 404 404 404"),
    E("catalogue:review", "L 404 404 404 404 404 200 200"),
    E("catalogue:dcat", "200 200 200 200 200 200 200 200"),
    E("catalogue:dcat_format", "200 200 200 200 200 200 200 200"),
    E("catalogue:detail", "200 200 200 200 200 200 200 200"),
    E("catalogue:edit", "L 404 200 404 404 404 404 404"),
    E("catalogue:submit", "L 404 R 404 404 404 404 404", POST),
    E(
        "catalogue:request_changes",
        "L 404 404 404 404 404 R R",
        POST,
        data={"comment": "Fix it"},
    ),
    E("catalogue:publish", "L 404 404 404 404 404 R R", POST),
    E("catalogue:retire", "L 404 404 404 404 404 R R", POST),
    E("catalogue:update_interval", "L 404 R 404 404 404 404 404", POST),
    E("catalogue:versions", "200 200 200 200 200 200 200 200"),
    E("catalogue:restore", "L 404 R 404 404 404 404 404", POST),
    E("catalogue:dataset_ttl", "200 200 200 200 200 200 200 200"),
    E("catalogue:dataset_rdf", "200 200 200 200 200 200 200 200", fmt="=jsonld"),
    E("catalogue:namespace", "200 200 200 200 200 200 200 200"),
    E("governance:home", "L 200 200 200 200 200 200 200"),
    E("governance:basket", "L 200 200 200 200 200 200 200"),
    E("governance:basket_add", "L 404 404 404 404 404 404 404"),
    E("governance:basket_remove", "L 404 404 404 404 404 404 404", POST),
    E("governance:requests", "L 200 200 200 200 200 200 200"),
    E("governance:request_create", "L 400 400 400 400 400 400 400", POST),
    E("governance:request_detail", "L 200 404 404 200 404 404 200"),
    E("governance:request_edit", "L 400 404 404 404 404 404 404"),
    E("governance:request_submit", "L 400 404 404 403 404 404 403", POST),
    E("governance:request_withdraw", "L R 404 404 403 404 404 403", POST),
    E("governance:decision_action", "L 403 404 404 R 404 404 403", POST),
    E("governance:comment_create", "L 400 404 404 400 404 404 403", POST),
    E("governance:attachment_upload", "L 400 404 404 400 404 404 400", POST),
    E("governance:attachment_download", "L 200 404 404 200 404 404 200"),
    E("governance:entitlements", "L 200 200 200 200 200 200 200"),
    E("governance:entitlement_revoke", "L 403 404 404 400 404 404 400", POST),
    E("governance:entitlement_accept_terms", "L R 404 404 403 404 404 403", POST),
    E("governance:entitlement_renew", "L 200 404 404 200 404 404 200"),
    E("governance:agreements", "L 200 200 200 200 200 200 200"),
    E("governance:agreement_create", "L 200 200 200 200 200 200 200"),
    E("governance:agreement_detail", "L 200 200 404 200 200 404 200"),
    E("governance:agreement_edit", "L 404 404 404 400 404 404 400"),
    E("governance:agreement_send", "L 403 403 404 400 403 404 400", POST),
    E("governance:agreement_sign", "L 400 400 404 400 400 404 400", POST),
    E("governance:agreement_terminate", "L 403 403 404 400 403 404 400", POST),
    E("governance:agreement_new_version", "L 403 403 404 R 403 404 R", POST),
    E("governance:agreement_document", "L 200 200 404 200 200 404 200"),
    E("governance:templates", "L 404 404 404 404 404 404 200"),
    E("governance:template_create", "L 404 404 404 404 404 404 200"),
    E("governance:template_defaults", "L 404 404 404 404 404 404 R", POST),
    E("governance:notifications", "R R R R R R R R"),
    E("governance:notification_count", "R R R R R R R R"),
    E("governance:register", "200 200 200 200 200 200 200 200"),
    E("governance:statistics", "200 200 200 200 200 200 200 200"),
    E("federation:home", "L 200 200 200 200 200 200 200"),
    E("federation:analysis_create", "L 200 200 200 200 200 200 200"),
    E("federation:analysis", "L 200 404 404 404 404 404 200"),
    E("federation:analysis_cancel", "L R 404 404 404 404 404 R", POST),
    E("federation:analysis_csv", "L 404 404 404 404 404 404 404"),
    E("federation:analysis_json", "L 404 404 404 404 404 404 404"),
    E("federation:analysis_pdf", "L 404 404 404 404 404 404 404"),
    E("federation:dataset_refresh", "L 404 R 404 404 404 404 404", POST),
    E("federation:dataset_profile", "L 404 R 404 404 404 404 404", POST),
    E("federation:analysis_profile_attach", "L 404 404 404 404 404 404 404", POST),
    E("federation:nodes", "L 404 404 404 404 200 404 200"),
    E("federation:node_register", "L 404 404 404 404 200 404 200"),
    E("federation:node", "L 404 404 404 404 200 404 200"),
    E("federation:node_approve", "L 404 404 404 404 404 404 400", POST),
    E("federation:node_rotate", "L 404 404 404 404 200 404 200", POST),
    E("federation:node_revoke", "L 404 404 404 404 R 404 R", POST),
    E("federation:node_confirm_identity", "L 404 404 404 404 R 404 R", POST),
    E("federation:node_datasets", "L 404 404 404 404 R 404 R", POST),
    E("federation:node_dataset_confirm", "L 404 404 404 404 R 404 R", POST),
    E("federation:dataset_serve", "L 404 400 404 404 404 404 404", POST),
    E("federation:review", "L 404 404 404 404 200 404 404"),
    E("federation:run_approve", "L 404 404 404 404 R 404 404", POST),
    E("federation:run_release", "L 404 404 404 404 R 404 404", POST),
    E("federation:run_decline", "L 404 404 404 404 R 404 404", POST),
    E("cds:home", "L 200 200 200 200 200 200 200"),
    E("cds:pathway", "L 200 200 200 200 200 200 200"),
    E("cds:evaluate", "L 200 200 200 200 200 200 200", POST),
    E(
        "cds:evaluation_save",
        "L R R R R R R R",
        POST,
        data={"psa": "5", "isup_grade": "1", "ct": "cT1c"},
    ),
    E("cds:evaluation", "L 200 404 404 404 404 404 200"),
    E("cds:evaluation_opinion", "L 400 404 404 404 404 404 400", POST),
    E("cds:evaluation_tumour_board_pdf", "L 200 404 404 404 404 404 200"),
    E("cds:evaluation_patient_pdf", "L 200 404 404 404 404 404 200"),
    E("cds:manage", "L 404 404 404 404 404 404 200"),
    E("cds:manage_diff", "L 404 404 404 404 404 404 R"),
    E("cds:manage_activate", "L 404 404 404 404 404 404 R", POST),
    E("cds:manage_retire", "L 404 404 404 404 404 404 R", POST),
    E("cds-hooks-discovery", "401 401 401 401 401 401 401 401"),
    E("cds-hooks-service", "401 401 401 401 401 401 401 401"),
    E("cds-hooks-feedback", "401 401 401 401 401 401 401 401"),
    E("feedback:list", "L 200 200 200 200 200 200 200"),
    E("feedback:new", "L R 200 200 200 200 200 200"),
    E("feedback:widget", "L 200 200 200 200 200 200 200"),
    E("feedback:dashboard", "L 404 404 404 404 404 200 200"),
    E("feedback:export", "L 200 200 200 200 200 200 200"),
    E("feedback:cds_disagreements", "L 404 404 404 404 404 200 200"),
    E("feedback:detail", "L 404 200 404 200 200 200 200"),
    E("feedback:edit", "L 404 200 404 404 404 200 200"),
    E("feedback:comment", "L 404 400 404 400 400 400 400", POST),
    E("feedback:vote", "L 404 R 404 R R R R", POST),
    E("feedback:attach", "L 404 400 404 400 400 400 400", POST),
    E("feedback:attachment", "L 404 200 404 200 200 200 200"),
    E("feedback:transition", "L 404 400 404 400 400 400 400", POST),
    E("fl-params-schema", "401 200 200 200 200 200 200 200"),
    E("fl-job-list", "401 200 200 200 200 200 200 200"),
    E("fl-job-list+fmt", "401 200 200 200 200 200 200 200"),
    E("fl-job-detail", "401 200 404 404 404 200 404 200"),
    E("fl-job-detail+fmt", "401 200 404 404 404 200 404 200"),
    E("fl-job-abort", "401 200 404 404 404 404 404 200", POST),
    E("fl-job-abort+fmt", "401 200 404 404 404 404 404 200", POST),
    E("fl-job-decline", "401 404 404 404 404 400 404 400", POST),
    E("fl-job-decline+fmt", "401 404 404 404 404 400 404 400", POST),
    E("fl-job-release", "401 404 404 404 404 400 404 400", POST),
    E("fl-job-release+fmt", "401 404 404 404 404 400 404 400", POST),
    E("trained-model-list", "401 200 200 200 200 200 200 200"),
    E("trained-model-list+fmt", "401 200 200 200 200 200 200 200"),
    E("trained-model-detail", "401 200 200 200 200 200 200 200"),
    E("trained-model-detail+fmt", "401 200 200 200 200 200 200 200"),
    E("trained-model-download", "401 403 403 403 403 403 403 200"),
    E("trained-model-download+fmt", "401 403 403 403 403 403 403 200"),
    E("federation:fl_home", "L 200 200 200 200 200 200 200"),
    E("federation:fl_create", "L 200 200 200 200 200 200 200"),
    E("federation:fl_job", "L 200 404 404 404 200 404 200"),
    E("federation:fl_abort", "L R 404 404 404 404 404 R", POST),
    E("federation:fl_release", "L 404 404 404 404 R 404 R", POST),
    E("federation:fl_decline", "L 404 404 404 404 R 404 R", POST),
    E("federation:models", "L 200 200 200 200 200 200 200"),
    E("federation:model", "L 200 200 200 200 200 200 200"),
    E("federation:model_download", "L 403 403 403 403 403 403 200"),
    E("federation:model_card", "L 200 200 200 200 200 200 200"),
    E("central-upload-list", "401 200 200 200 200 200 200 200"),
    E("central-upload-detail", "401 404 200 404 404 404 404 200"),
    E("central-upload-chunk", "401 404 400 404 404 404 404 404", POST),
    E("central-upload-complete", "401 404 400 404 404 404 404 404", POST),
    E("central-upload-report", "401 404 200 404 404 404 404 200"),
    E("central-version-list", "401 200 200 200 200 200 200 200"),
    E("central-version-detail", "401 404 200 404 404 404 404 200"),
    E("central-version-retire", "401 404 200 404 404 404 404 404", POST),
    E("central:index", "L 200 200 200 200 200 200 200"),
    E("central:dataset", "L 404 200 404 404 404 404 404"),
    E("central:upload", "L 404 200 404 404 404 404 200"),
    E("central:report_json", "L 404 200 404 404 404 404 200"),
    E("central:report_csv", "L 404 200 404 404 404 404 200"),
    E("central:retire", "L 404 R 404 404 404 404 404", POST),
    # The central node: operators only; its API takes the central node's credential only.
    E("central:node", "L 404 404 404 404 404 404 200"),
    E("central:node_enrol", "L 404 404 404 404 404 404 200", POST),
    E("central:node_revoke", "L 404 404 404 404 404 404 R", POST),
    # The world's dataset is not offered as a central copy: 404 for its site admin too (the
    # site admin's 200: tests/central/test_central_node_access.py).
    E("central:policy", "L 404 404 404 404 404 404 404"),
    E("central-node-datasets", "401 401 401 401 401 401 401 401"),
    E("central-node-token", "401 401 401 401 401 401 401 401", POST),
]
_KEYS = [key for key, _ in _ENTRIES]
# One entry per URL: a second one would silently override the first.
assert len(_KEYS) == len(set(_KEYS)), sorted({k for k in _KEYS if _KEYS.count(k) > 1})
MATRIX = dict(_ENTRIES)


def outcome(response) -> str:
    if response.status_code in (301, 302, 303):
        location = response.headers.get("Location", "")
        if location.startswith(("/accounts/login/", "/admin/login/")):
            return "L"
        return "R"
    return str(response.status_code)


def _route_url(route, world, overrides):
    kwargs = kwargs_for(route, world, overrides)
    return reverse(route.name, kwargs=kwargs) if route.name else "/" + route.pattern


def _admin_entry(route):
    """The Django admin: log-in for everyone, staff only (other users are sent to its login)."""
    if route.params:
        return None  # object pages of the admin: same gate as the index, exercised there
    if route.name in ("admin:login", "admin:logout"):
        return (GET, ["*"] * len(ROLES), {})  # the admin's own log-in (axes and 2FA apply)
    return (GET, ["L", "L", "L", "L", "L", "L", "L", "*"], {})


def _request(client, method, url, data=None):
    """One request inside a savepoint that is rolled back; no audit event unless it succeeded."""
    with transaction.atomic():
        before = AuditEvent.objects.count()
        if method == GET:
            response = client.get(url)
        elif method == DELETE:
            response = client.delete(url)
        else:
            response = client.post(url, data or {})
        added = AuditEvent.objects.count() - before
        transaction.set_rollback(True)
    return response, added


@pytest.fixture
def world(db, django_capture_on_commit_callbacks):
    return build_world(Client)


@pytest.fixture
def clients(world):
    result = {}
    for role in ROLES:
        client = Client(raise_request_exception=False)
        if role != "anonymous":
            client.force_login(world.users[role])
        result[role] = client
    return result


def test_every_url_pattern_has_an_entry():
    missing = sorted(
        r.key
        for r in all_routes()
        if r.key not in MATRIX and not r.pattern.startswith(ADMIN_PREFIX)
    )
    stale = sorted(set(MATRIX) - {r.key for r in all_routes()})
    assert not missing, "URL patterns without a permission-matrix entry:\n" + "\n".join(missing)
    assert not stale, "entries for URL patterns that no longer exist:\n" + "\n".join(stale)


def test_permission_matrix(world, clients, caplog):
    caplog.set_level(logging.CRITICAL, logger="django.request")
    record = os.environ.get("MATRIX_RECORD") == "1"
    failures, lines = [], []
    for route in all_routes():
        if route.pattern.startswith(ADMIN_PREFIX):
            entry = _admin_entry(route)
            if entry is None:
                continue
        else:
            entry = MATRIX.get(route.key)
        if entry is None and not record:
            continue  # reported by test_every_url_pattern_has_an_entry
        method, expected, overrides = entry or (GET, ["?"] * len(ROLES), {})
        url = _route_url(route, world, overrides)
        observed = []
        for role, want in zip(ROLES, expected, strict=True):
            if want == "-":
                observed.append("-")
                continue
            response, added = _request(clients[role], method, url, overrides.get("data"))
            got = outcome(response)
            observed.append(got)
            if got != want and not (want == "*" and response.status_code < 500):
                failures.append(f"{method} {url} as {role}: expected {want}, got {got}")
            if response.status_code >= 400 and added:
                failures.append(f"{method} {url} as {role}: {got} but {added} audit event(s)")
            if response.status_code >= 500:
                failures.append(f"{method} {url} as {role}: server error {got}")
        if record and not route.pattern.startswith(ADMIN_PREFIX):
            extra = "".join(f", {k}={v!r}" for k, v in overrides.items())
            meth = f", {method}" if method != GET else ""
            lines.append(f'        E("{route.key}", "{" ".join(observed)}"{meth}{extra}),')
    if record:
        print("\n".join(lines))
    assert not failures, f"{len(failures)} permission-matrix mismatches:\n" + "\n".join(failures)
