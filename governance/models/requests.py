"""Access requests: a basket, one request over several datasets, one decision per custodian."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Organisation


class Purpose(models.TextChoices):
    # Primary categories of the GA4GH Data Use Ontology (DUO), with their identifiers.
    DISEASE_SPECIFIC = "DUO:0000007", "Disease-specific research (cancer)"
    HEALTH_MEDICAL_BIOMEDICAL = "DUO:0000006", "Health, medical or biomedical research"
    GENERAL_RESEARCH = "DUO:0000042", "General research use"
    POPULATION_ANCESTRY = "DUO:0000011", "Population origins or ancestry research"
    CLINICAL_CARE = "DUO:0000043", "Clinical care use"
    METHODS = "DUO:0000015", "Methods development (statistical or machine-learning methods)"


class RequestStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    UNDER_REVIEW = "under_review", "Under review"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    RESUBMITTED = "resubmitted", "Resubmitted"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


OPEN_STATUSES = (
    RequestStatus.SUBMITTED,
    RequestStatus.UNDER_REVIEW,
    RequestStatus.CHANGES_REQUESTED,
    RequestStatus.RESUBMITTED,
)


class DecisionStatus(models.TextChoices):
    PENDING = "pending", "Waiting for review"
    UNDER_REVIEW = "under_review", "Under review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"


WAITING_DECISIONS = (DecisionStatus.PENDING, DecisionStatus.UNDER_REVIEW)
FINAL_DECISIONS = (DecisionStatus.APPROVED, DecisionStatus.REJECTED)


class BasketItem(models.Model):
    """A published dataset a researcher has collected for a future request."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="governance_basket"
    )
    dataset = models.ForeignKey("catalogue.Dataset", on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["added_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["user", "dataset"], name="dataset_once_per_basket")
        ]

    def __str__(self) -> str:
        return f"{self.dataset_id} in basket of {self.user_id}"


class AccessRequest(models.Model):
    applicant = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_requests"
    )
    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="access_requests",
        help_text="The researcher's organisation.",
    )
    project_title = models.CharField(max_length=300)
    research_question = models.TextField(blank=True)
    lay_summary = models.TextField(blank=True)
    purpose = models.CharField(max_length=20, choices=Purpose.choices, blank=True)
    requested_end_date = models.DateField(null=True, blank=True)
    ethics_reference = models.CharField("ethics approval reference", max_length=200, blank=True)
    team_members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="access_request_teams"
    )
    status = models.CharField(
        max_length=20, choices=RequestStatus.choices, default=RequestStatus.DRAFT, db_index=True
    )
    renewal_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="renewals"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    first_submitted_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.reference}: {self.project_title}"

    @property
    def reference(self) -> str:
        return f"REQ-{self.pk}"

    @property
    def is_editable(self) -> bool:
        return self.status in (RequestStatus.DRAFT, RequestStatus.CHANGES_REQUESTED)


class RequestedDataset(models.Model):
    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="items")
    dataset = models.ForeignKey("catalogue.Dataset", on_delete=models.PROTECT, related_name="+")
    custodian = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The organisation whose data access committee decides.",
    )
    access_mode = models.CharField(max_length=30)
    terms = models.ForeignKey(
        "catalogue.TermsOfUse", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    terms_accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["request", "dataset"], name="dataset_once_per_request")
        ]

    def __str__(self) -> str:
        return f"{self.dataset_id} ({self.access_mode}) in {self.request_id}"


class Decision(models.Model):
    """One custodian's decision on the datasets it holds in a request."""

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="decisions")
    custodian = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=20, choices=DecisionStatus.choices, default=DecisionStatus.PENDING
    )
    reason = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    waiting_since = models.DateTimeField(null=True, blank=True)
    last_reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["custodian__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "custodian"], name="one_decision_per_custodian"
            )
        ]

    def __str__(self) -> str:
        return f"{self.custodian} on {self.request_id}: {self.status}"


class Comment(models.Model):
    """A message in the thread between the researcher's team and one custodian's DAC."""

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="comments")
    custodian = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"Comment {self.pk} on {self.request_id}"


class AttachmentKind(models.TextChoices):
    ETHICS_APPROVAL = "ethics_approval", "Ethics approval"
    PROTOCOL = "protocol", "Study protocol"
    OTHER = "other", "Other"


class Attachment(models.Model):
    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="attachments")
    kind = models.CharField(max_length=20, choices=AttachmentKind.choices)
    file = models.FileField(upload_to="governance/attachments/%Y/%m/")
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["uploaded_at", "pk"]

    def __str__(self) -> str:
        return self.original_name
