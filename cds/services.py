"""Writes for the CDS app: pathway sync and (de)activation, evaluations, opinions, hook feedback.

Every state change writes its audit event inside the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts import extensions
from accounts.audit import record

from . import engine
from .models import (
    Evaluation,
    EvaluationSource,
    HookFeedback,
    HookOutcome,
    Opinion,
    Pathway,
    PathwayVersion,
    PathwayVersionStatus,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

# --- pathway files -> versions -------------------------------------------------------------------


@dataclass
class SyncLine:
    file: str
    pathway: str = ""
    version: str = ""
    checksum: str = ""
    outcome: str = ""  # new, unchanged, activated, retired, refused, invalid
    message: str = ""
    failures: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.outcome in ("refused", "invalid")


@dataclass
class SyncReport:
    lines: list[SyncLine] = field(default_factory=list)

    @property
    def failed(self) -> list[SyncLine]:
        return [line for line in self.lines if line.failed]


def pathway_sync(*, actor: User | None = None, directory: str | Path | None = None) -> SyncReport:
    """Load every ``*.yaml`` pathway file; a new checksum becomes a new version.

    A file marked ``active`` whose embedded test cases all pass becomes the active version (the
    previous one is retired); one whose tests fail stays a draft and the previous active version
    keeps serving. Each file is synced in its own transaction, so one bad file does not block the
    others.
    """
    report = SyncReport()
    for path in sorted(Path(directory or engine.PATHWAYS_DIR).glob("*.yaml")):
        try:
            compiled = engine.load_pathway(path)
        except engine.PathwayFormatError as exc:
            report.lines.append(SyncLine(path.name, outcome="invalid", message=str(exc)))
            continue
        report.lines.append(_sync_one(actor=actor, compiled=compiled, file=path.name))
    return report


@transaction.atomic
def _sync_one(*, actor, compiled: engine.Pathway, file: str) -> SyncLine:
    line = SyncLine(file, compiled.id, compiled.version, compiled.checksum)
    pathway, _ = Pathway.objects.update_or_create(
        slug=compiled.id, defaults={"title": compiled.title, "disease": compiled.model.disease}
    )
    failures = [str(failure) for failure in engine.run_self_tests(compiled)]
    line.failures = failures
    version = (
        PathwayVersion.objects.select_for_update()
        .filter(pathway=pathway, checksum=compiled.checksum)
        .first()
    )
    if version is None:
        reused = pathway.versions.filter(version=compiled.version).exists()
        version = PathwayVersion.objects.create(
            pathway=pathway,
            version=compiled.version,
            checksum=compiled.checksum,
            document=compiled.raw(),
            source_file=file,
            self_test_failures=failures,
        )
        record(
            "cds.pathway_version_loaded",
            actor=actor,
            obj=version,
            payload={
                "pathway": pathway.slug,
                "version": version.version,
                "checksum": version.checksum,
                "self_test_failures": len(failures),
            },
        )
        line.outcome = "new"
        if reused:
            line.message = (
                f"the file changed but still says version {compiled.version}; "
                "bump the version so people can tell the editions apart"
            )
    else:
        line.outcome = "unchanged"
        if version.self_test_failures != failures:
            version.self_test_failures = failures
            version.save(update_fields=["self_test_failures"])

    if failures:
        line.outcome = "refused"
        line.message = f"{len(failures)} of its own test cases fail; not activated" + (
            " (the version already active keeps serving)"
            if not version.is_active
            else " — this version is active and now fails: retire it or fix the engine"
        )
        record(
            "cds.pathway_version_refused",
            actor=actor,
            obj=version,
            payload={
                "pathway": pathway.slug,
                "version": version.version,
                "failures": failures[:20],
            },
        )
    elif compiled.status == PathwayVersionStatus.ACTIVE and not version.is_active:
        _activate(actor=actor, version=version)
        line.outcome = "activated"
    elif compiled.status == PathwayVersionStatus.RETIRED and version.status != "retired":
        _retire(actor=actor, version=version)
        line.outcome = "retired"
    return line


def _self_test_failures(version: PathwayVersion) -> list[str]:
    return [str(failure) for failure in engine.run_self_tests(version.engine_pathway())]


def _activate(*, actor, version: PathwayVersion) -> None:
    now = timezone.now()
    for previous in PathwayVersion.objects.select_for_update().filter(
        pathway=version.pathway, status=PathwayVersionStatus.ACTIVE
    ):
        _retire(actor=actor, version=previous, now=now)
    version.status = PathwayVersionStatus.ACTIVE
    version.activated_at = now
    version.retired_at = None
    version.save(update_fields=["status", "activated_at", "retired_at"])
    record(
        "cds.pathway_version_activated",
        actor=actor,
        obj=version,
        payload={
            "pathway": version.pathway.slug,
            "version": version.version,
            "checksum": version.checksum,
        },
    )


def _retire(*, actor, version: PathwayVersion, now: datetime | None = None) -> None:
    version.status = PathwayVersionStatus.RETIRED
    version.retired_at = now or timezone.now()
    version.save(update_fields=["status", "retired_at"])
    record(
        "cds.pathway_version_retired",
        actor=actor,
        obj=version,
        payload={
            "pathway": version.pathway.slug,
            "version": version.version,
            "checksum": version.checksum,
        },
    )


@transaction.atomic
def pathway_version_activate(*, actor: User, version: PathwayVersion) -> PathwayVersion:
    """Make ``version`` the one in use; refused while any of its own test cases fails."""
    failures = _self_test_failures(version)
    if failures != version.self_test_failures:
        version.self_test_failures = failures
        version.save(update_fields=["self_test_failures"])
    if failures:
        raise ValidationError(
            f"{version} cannot be activated: {len(failures)} of its own test cases fail "
            f"({failures[0]}{' …' if len(failures) > 1 else ''})."
        )
    if version.is_active:
        raise ValidationError(f"{version} is already active.")
    _activate(actor=actor, version=version)
    return version


@transaction.atomic
def pathway_version_retire(*, actor: User, version: PathwayVersion) -> PathwayVersion:
    if version.status == PathwayVersionStatus.RETIRED:
        raise ValidationError(f"{version} is already retired.")
    _retire(actor=actor, version=version)
    return version


# --- evaluations ------------------------------------------------------------------------------


def input_errors(errors: Mapping[str, list[str]], *, prefix: str = "") -> dict[str, list[str]]:
    """Engine field messages as a ValidationError dict (``__all__`` becomes non-field)."""
    return {
        (NON_FIELD_ERRORS if name == "__all__" else f"{prefix}{name}"): list(messages)
        for name, messages in errors.items()
    }


def evaluation_preview(
    *, pathway_version: PathwayVersion, inputs: Mapping[str, Any]
) -> engine.Evaluation:
    """Evaluate ``inputs`` without storing anything (the live form, as values are typed).

    Raises ``ValidationError`` keyed by input name when the engine rejects an input.
    """
    try:
        return engine.evaluate(pathway_version.engine_pathway(), inputs)
    except engine.InputValidationError as exc:
        raise ValidationError(input_errors(exc.errors)) from None


@transaction.atomic
def evaluation_create(
    *,
    user: User | AnonymousUser,
    pathway_version: PathwayVersion,
    inputs: Mapping[str, Any],
    source: str,
) -> Evaluation:
    """Evaluate ``inputs`` with the stored pathway version, store the full result and audit it.

    Raises ``ValidationError`` keyed by input name when the engine rejects an input.
    """
    if source not in EvaluationSource.values:
        raise ValueError(f"unknown evaluation source {source!r}")
    result = evaluation_preview(pathway_version=pathway_version, inputs=inputs)
    evaluation = Evaluation.objects.create(
        pathway_version=pathway_version,
        inputs=dict(inputs),
        output=result.to_dict(),
        classification=result.classification,
        user=user if getattr(user, "is_authenticated", False) else None,
        source=source,
    )
    record(
        "cds.evaluated",
        actor=user,
        obj=evaluation,
        payload={
            "pathway": pathway_version.pathway.slug,
            "version": pathway_version.version,
            "checksum": pathway_version.checksum,
            "source": source,
            "inputs": evaluation.inputs,
            "classification": result.classification,
        },
    )
    return evaluation


@transaction.atomic
def evaluation_opinion_record(
    *, user: User, evaluation: Evaluation, opinion: str, reason: str = ""
) -> str:
    """Store the clinician's agreement or disagreement; a disagreement becomes a feedback item.

    Returns the message to show the person.
    """
    reason = (reason or "").strip()
    if opinion not in Opinion.values:
        raise ValidationError({"opinion": ["Choose agree or disagree."]})
    if opinion == Opinion.DISAGREE and not reason:
        raise ValidationError({"reason": ["Please say why you disagree."]})
    evaluation.opinion = opinion
    evaluation.opinion_reason = reason
    evaluation.opinion_at = timezone.now()
    if opinion == Opinion.AGREE:
        message = "Thank you: your agreement was recorded."
    else:
        recorder = extensions.provided(extensions.CDS_DISAGREEMENT)  # feedback provides it
        if recorder is None:
            message = (
                "Your disagreement was stored with this evaluation. The feedback module is not "
                "available yet, so no feedback item was created."
            )
        elif evaluation.feedback_ref:
            message = "Your disagreement was updated; it is already linked to a feedback item."
        else:
            item = recorder(user=user, evaluation=evaluation, reason=reason)
            if item is None:
                # The feedback module takes items from implementation test sites only.
                message = (
                    "Your disagreement was stored with this evaluation. Feedback items come from "
                    "the implementation test sites, so none was created for you."
                )
            else:
                evaluation.feedback_ref = str(getattr(item, "pk", "") or "")
                message = (
                    "Your disagreement was recorded and sent as feedback to the pathway's "
                    "maintainers."
                )
    evaluation.save(update_fields=["opinion", "opinion_reason", "opinion_at", "feedback_ref"])
    record(
        "cds.evaluation_agreed" if opinion == Opinion.AGREE else "cds.evaluation_disagreed",
        actor=user,
        obj=evaluation,
        payload={
            "opinion": opinion,
            "has_reason": bool(reason),
            "feedback_ref": evaluation.feedback_ref,
        },
    )
    return message


# --- CDS Hooks feedback -------------------------------------------------------------------------


@transaction.atomic
def hook_feedback_record(
    *,
    user: User | AnonymousUser,
    evaluation: Evaluation,
    outcome: str,
    outcome_timestamp: datetime,
    override_reason: Mapping[str, Any] | None = None,
    accepted_suggestions: list[Any] | None = None,
) -> HookFeedback:
    if outcome not in HookOutcome.values:
        raise ValidationError({"outcome": ["Must be accepted or overridden."]})
    feedback = HookFeedback.objects.create(
        evaluation=evaluation,
        card_uuid=evaluation.pk,
        outcome=outcome,
        override_reason=dict(override_reason or {}),
        accepted_suggestions=list(accepted_suggestions or []),
        outcome_timestamp=outcome_timestamp,
        user=user if getattr(user, "is_authenticated", False) else None,
    )
    record(
        "cds.hook_feedback_recorded",
        actor=user,
        obj=feedback,
        payload={
            "evaluation": str(evaluation.pk),
            "outcome": outcome,
            "override_reason": (override_reason or {}).get("reason", {}),
        },
    )
    return feedback
