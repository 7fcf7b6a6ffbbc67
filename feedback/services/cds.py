"""A clinician's disagreement with a CDS evaluation, recorded as a feedback item."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from accounts import audit

from .. import links, permissions
from ..models import Category, Component, FeedbackItem, Persona
from .items import feedback_submit

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def _field(obj, *names, default=None):
    for name in names:
        value = getattr(obj, name, None)
        if value not in (None, "", [], {}):
            return value
    return default


def _jsonable(value):
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, default=str))


def evaluation_snapshot(evaluation: Any) -> dict:
    """What a CDS disagreement needs to stand alone, from a ``cds.models.Evaluation``-like object.

    Reads the engine's ``Evaluation.to_dict()`` shape from the output JSON first (pathway.id,
    pathway.version, decided_by, trace, inputs), then fields on the model itself.
    """
    output = _field(evaluation, "output", "result", default={})
    if not isinstance(output, dict) and hasattr(output, "to_dict"):
        output = output.to_dict()
    output = output if isinstance(output, dict) else {}
    pathway = output.get("pathway") if isinstance(output.get("pathway"), dict) else {}
    pathway_id = pathway.get("id") or _field(evaluation, "pathway_id", "pathway_slug", "pathway")
    version = pathway.get("version") or _field(evaluation, "pathway_version", "version")
    inputs = _field(evaluation, "inputs", default=None)
    if inputs is None:
        inputs = output.get("inputs", {})
    trace = output.get("trace") or []
    rule_ids = _field(evaluation, "rule_ids", "trace_rule_ids", default=None)
    if rule_ids is None:
        rule_ids = [
            t.get("rule_id") for t in trace if isinstance(t, dict) and t.get("reached", True)
        ]
    decided = output.get("decided_by") or _field(evaluation, "decided_by", "deciding_rule_id")
    return _jsonable(
        {
            "evaluation_id": evaluation.pk,
            "pathway_id": str(pathway_id or ""),
            "pathway_version": str(version or ""),
            "inputs": inputs or {},
            "output": output,
            "classification": output.get("classification") or _field(evaluation, "classification"),
            "label": output.get("label") or "",
            "rule_ids": [r for r in (rule_ids or []) if r],
            "rule_id": str(decided or ""),
        }
    )


@transaction.atomic
def cds_disagreement_record(*, user: User, evaluation: Any, reason: str) -> FeedbackItem | None:
    """A clinician disagrees with a CDS result: one feedback item carrying the evaluation.

    Called from the CDS result page. The evaluation must be visible to ``user`` through
    ``cds.permissions.restrict`` when that exists; the caller has already loaded it for them.
    Feedback comes from the implementation test sites: for someone at no test site nothing is
    recorded and None is returned (the CDS app keeps the opinion on the evaluation itself).
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why you disagree with the advice."]})
    if not permissions.test_site_ids(user):
        return None
    if links.restrict_for(type(evaluation)) is not None and (
        links.visible_object(type(evaluation), user, pk=evaluation.pk) is None
    ):
        raise PermissionDenied("You cannot see this evaluation.")
    snapshot = evaluation_snapshot(evaluation)
    preferred = _field(evaluation, "organisation_id", "site_id")
    sites = permissions.test_site_ids(user)
    site = preferred if preferred in sites else min(sites)
    what = snapshot["label"] or snapshot["classification"] or "the advice"
    title = f"Disagreement with {snapshot['pathway_id']} {snapshot['pathway_version']}: {what}"
    item = feedback_submit(
        user=user,
        site=site,
        persona=Persona.CLINICIAN,
        category=Category.CDS_DISAGREEMENT,
        component=Component.CDS,
        title=title.strip()[:200],
        description=reason,
        link=evaluation,
        cds_snapshot=snapshot,
    )
    audit.record(
        "feedback.cds_disagreement_recorded",
        actor=user,
        obj=item,
        organisation=item.site,
        payload={
            "evaluation": snapshot["evaluation_id"],
            "pathway_id": snapshot["pathway_id"],
            "pathway_version": snapshot["pathway_version"],
            "rule_id": snapshot["rule_id"],
        },
    )
    return item
