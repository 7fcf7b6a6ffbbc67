"""Agreements: versioned templates, agreements between organisations, parties and signatures."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from accounts.models import Organisation


class AgreementKind(models.TextChoices):
    JOINT_CONTROLLER = "joint_controller", "Joint Controller Agreement (GDPR Art. 26)"
    DATA_PROCESSING = "data_processing", "Data Processing Agreement (GDPR Art. 28)"
    COLLABORATION = "collaboration", "Collaboration Agreement"
    DATA_ACCESS_USE = "data_access_use", "Data Access and Use Agreement"


# Only these two kinds make access to a custodian's data lawful for a researcher's organisation.
ACCESS_GATING_KINDS = (AgreementKind.DATA_ACCESS_USE, AgreementKind.COLLABORATION)


class PartyRole(models.TextChoices):
    CONTROLLER = "controller", "Controller"
    JOINT_CONTROLLER = "joint_controller", "Joint controller"
    PROCESSOR = "processor", "Processor"
    SUB_PROCESSOR = "sub_processor", "Sub-processor"
    DATA_CONTRIBUTOR = "data_contributor", "Data contributor"
    DATA_USER = "data_user", "Data user"


class AgreementStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OUT_FOR_SIGNATURE = "out_for_signature", "Out for signature"
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    TERMINATED = "terminated", "Terminated"
    SUPERSEDED = "superseded", "Superseded"


ENDED_STATUSES = (AgreementStatus.EXPIRED, AgreementStatus.TERMINATED, AgreementStatus.SUPERSEDED)

PLACEHOLDERS = {
    "title": "The agreement's title",
    "reference": "The agreement's reference, e.g. AGR-12 v1",
    "parties": "A list of the parties with their roles",
    "datasets": "A list of the covered datasets (or 'all datasets of the data-providing parties')",
    "effective_date": "The effective date (YYYY-MM-DD)",
    "expiry_date": "The expiry date (YYYY-MM-DD)",
    "purposes": "The purposes of the processing",
}
PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def unknown_placeholders(body: str) -> list[str]:
    return sorted({name for name in PLACEHOLDER_RE.findall(body) if name not in PLACEHOLDERS})


class AgreementTemplate(models.Model):
    """One immutable version of a template; editing a template publishes the next version."""

    kind = models.CharField(max_length=20, choices=AgreementKind.choices)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField(help_text="Markdown with placeholders such as {{ parties }}.")
    notes = models.TextField("version notes", blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["kind", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "version"], name="one_template_version")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} v{self.version}"

    def clean(self) -> None:
        unknown = unknown_placeholders(self.body)
        if unknown:
            raise ValidationError(
                {
                    "body": [
                        "Unknown placeholder(s): "
                        + ", ".join(unknown)
                        + ". Known: "
                        + ", ".join(sorted(PLACEHOLDERS))
                        + "."
                    ]
                }
            )


class Agreement(models.Model):
    template = models.ForeignKey(
        AgreementTemplate, on_delete=models.PROTECT, related_name="agreements"
    )
    kind = models.CharField(max_length=20, choices=AgreementKind.choices, db_index=True)
    title = models.CharField(max_length=200)
    purposes = models.TextField(blank=True)
    effective_date = models.DateField()
    expiry_date = models.DateField()
    status = models.CharField(
        max_length=20,
        choices=AgreementStatus.choices,
        default=AgreementStatus.DRAFT,
        db_index=True,
    )
    # Versions of one agreement share a lineage (the first version's id); a change after sending
    # is a new version that must be signed again.
    lineage = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    version = models.PositiveIntegerField(default=1)
    previous_version = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="next_version"
    )
    superseded_by = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="supersedes"
    )
    termination_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Frozen at sending: later template versions never change what was sent.
    rendered_markdown = models.TextField(blank=True)
    document = models.FileField(upload_to="governance/agreements/", blank=True)
    document_sha256 = models.CharField(max_length=64, blank=True)
    signed_document = models.FileField(upload_to="governance/agreements/", blank=True)
    signed_document_sha256 = models.CharField(max_length=64, blank=True)
    reminders_sent = models.JSONField(default=list, blank=True)
    datasets = models.ManyToManyField(
        "catalogue.Dataset",
        blank=True,
        related_name="agreements",
        help_text="Leave empty to cover every dataset of the data-providing parties.",
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.reference}: {self.title}"

    @property
    def reference(self) -> str:
        return f"AGR-{self.lineage_id or self.pk} v{self.version}"

    @property
    def is_editable(self) -> bool:
        return self.status == AgreementStatus.DRAFT

    @property
    def status_label(self) -> str:
        """The status as people read it: a signed agreement is not "Active" before it takes effect."""
        if self.status == AgreementStatus.ACTIVE and self.effective_date > timezone.localdate():
            return f"Signed — effective from {self.effective_date:%Y-%m-%d}"
        return self.get_status_display()

    def clean(self) -> None:
        if self.effective_date and self.expiry_date and self.expiry_date <= self.effective_date:
            raise ValidationError(
                {"expiry_date": ["The expiry date must follow the effective date."]}
            )


class AgreementParty(models.Model):
    agreement = models.ForeignKey(Agreement, on_delete=models.CASCADE, related_name="parties")
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="agreement_parties"
    )
    role = models.CharField(max_length=20, choices=PartyRole.choices)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["agreement", "organisation"], name="one_party_per_org_per_agreement"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organisation} as {self.get_role_display()}"


class Signature(models.Model):
    """One party's signature: typed full name, confirmed, bound to the hash of the sent document."""

    agreement = models.ForeignKey(Agreement, on_delete=models.CASCADE, related_name="signatures")
    party = models.OneToOneField(AgreementParty, on_delete=models.CASCADE, related_name="signature")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    full_name = models.CharField(max_length=200)
    signed_at = models.DateTimeField(default=timezone.now)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    document_sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["signed_at", "pk"]

    def __str__(self) -> str:
        return f"{self.full_name} for {self.party.organisation}"
