"""Versioned care pathways, stored evaluations and CDS Hooks feedback.

The engine (``cds.engine``) is pure Python; these models keep what it used and what it said, so an
old advice can be shown again exactly, with the pathway edition it came from, after the pathway
has changed.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse

from . import engine


class Pathway(models.Model):
    """One guideline pathway (``prostate-eau``); its editions are :class:`PathwayVersion` rows."""

    slug = models.SlugField("pathway id", max_length=80, unique=True)
    title = models.CharField(max_length=300)
    disease = models.CharField(max_length=80)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["disease", "slug"]

    def __str__(self) -> str:
        return self.slug


class PathwayVersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


class PathwayVersion(models.Model):
    """One loaded pathway file. A file whose canonical checksum changed becomes a new row."""

    pathway = models.ForeignKey(Pathway, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField("semantic version", max_length=40)
    checksum = models.CharField(max_length=64)
    document = models.JSONField(help_text="The whole pathway file as loaded (canonical data).")
    status = models.CharField(
        max_length=10, choices=PathwayVersionStatus.choices, default=PathwayVersionStatus.DRAFT
    )
    source_file = models.CharField(max_length=200, blank=True)
    self_test_failures = models.JSONField(default=list, blank=True)
    loaded_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pathway__slug", "-loaded_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["pathway", "checksum"], name="cds_version_checksum"),
            models.UniqueConstraint(
                fields=["pathway"],
                condition=models.Q(status="active"),
                name="cds_one_active_version",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pathway.slug} {self.version} ({self.short_checksum})"

    @property
    def short_checksum(self) -> str:
        return self.checksum[:10]

    @property
    def label(self) -> str:
        return self.document.get("title", "")

    @property
    def source(self) -> dict[str, Any]:
        return self.document.get("source", {})

    @property
    def citation(self) -> str:
        src = self.source
        parts = [
            src.get("organisation", ""),
            src.get("guideline", ""),
            f"edition {src.get('edition', '')}",
        ]
        return ", ".join(p for p in parts if p.strip())

    @property
    def is_active(self) -> bool:
        return self.status == PathwayVersionStatus.ACTIVE

    def engine_pathway(self) -> engine.Pathway:
        """The compiled pathway for this stored document (compiled once per checksum)."""
        pathway = _COMPILED.get(self.checksum)
        if pathway is None:
            pathway = engine.load_pathway(self.document)
            if pathway.checksum != self.checksum:
                # The stored document must reproduce its checksum, or re-showing it would lie.
                raise ValueError(f"stored pathway document does not match {self.short_checksum}")
            _COMPILED[self.checksum] = pathway
        return pathway

    def input_schema(self) -> dict[str, Any]:
        return self.engine_pathway().input_schema()


# Compiled pathways keyed by checksum: a checksum names exactly one document, so this never goes stale.
_COMPILED: dict[str, engine.Pathway] = {}


class EvaluationSource(models.TextChoices):
    UI = "ui", "Portal page"
    API = "api", "API"
    CDS_HOOKS = "cds-hooks", "CDS Hooks"


class Opinion(models.TextChoices):
    AGREE = "agree", "Agree"
    DISAGREE = "disagree", "Disagree"


class Evaluation(models.Model):
    """One advice as given: the pathway version, the inputs and the engine's full output.

    No patient identifiers are stored, only the clinical inputs the pathway reads.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    pathway_version = models.ForeignKey(
        PathwayVersion, on_delete=models.PROTECT, related_name="evaluations"
    )
    inputs = models.JSONField(help_text="The inputs as given (raw).")
    output = models.JSONField(help_text="The engine's full result, trace included.")
    classification = models.CharField(max_length=80)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="cds_evaluations",
    )
    source = models.CharField(max_length=12, choices=EvaluationSource.choices)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    opinion = models.CharField(max_length=10, choices=Opinion.choices, blank=True)
    opinion_reason = models.TextField(blank=True)
    opinion_at = models.DateTimeField(null=True, blank=True)
    feedback_ref = models.CharField(
        max_length=64, blank=True, help_text="The feedback item created for a disagreement, if any."
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.pathway_version.pathway.slug} → {self.classification}"

    def get_absolute_url(self) -> str:
        return reverse("cds:evaluation", args=[self.pk])

    @property
    def label(self) -> str:
        return self.output.get("label", "")

    def input_rows(self) -> list[dict[str, Any]]:
        """The inputs the engine used, labelled from the pathway version that was used."""
        specs = self.pathway_version.document.get("inputs", {})
        rows = []
        for name, spec in specs.items():
            value = self.output.get("inputs", {}).get(name)
            labels = spec.get("value_labels", {})
            rows.append(
                {
                    "name": name,
                    "label": spec.get("label", name),
                    "value": labels.get(str(value), value) if value is not None else None,
                    "unit": spec.get("unit") or "",
                }
            )
        return rows

    def api_result(self) -> dict[str, Any]:
        """The API's result shape, built from the stored output only."""
        return {
            "pathway": self.output["pathway"]["id"],
            "pathway_version": self.output["pathway"]["version"],
            "classification": self.output["classification"],
            "label": self.output["label"],
            "recommendations": self.output["recommendations"],
            "trace": self.output["trace"],
            "missing": self.output["missing"],
            "warnings": self.output["warnings"],
            "evaluation_id": str(self.pk),
        }


class HookOutcome(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    OVERRIDDEN = "overridden", "Overridden"


class HookFeedback(models.Model):
    """Feedback a CDS Hooks client sent on a card (the card uuid is the evaluation id)."""

    evaluation = models.ForeignKey(
        Evaluation, on_delete=models.CASCADE, related_name="hook_feedback"
    )
    card_uuid = models.UUIDField()
    outcome = models.CharField(max_length=12, choices=HookOutcome.choices)
    override_reason = models.JSONField(default=dict, blank=True)
    accepted_suggestions = models.JSONField(default=list, blank=True)
    outcome_timestamp = models.DateTimeField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.card_uuid} {self.outcome}"

    @property
    def override_text(self) -> str:
        reason = self.override_reason or {}
        coding = reason.get("reason") or {}
        parts = [coding.get("display") or coding.get("code") or "", reason.get("userComment") or ""]
        return " — ".join(p for p in parts if p)
