"""Structured feedback from the implementation test sites, its comments, votes and attachments."""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.urls import reverse

from accounts.models import Organisation


class Persona(models.TextChoices):
    CLINICIAN = "clinician", "Clinician"
    DATA_SCIENTIST = "data_scientist", "Data scientist"
    DATA_STEWARD = "data_steward", "Data steward"
    IT = "it", "IT staff"
    PATIENT = "patient", "Patient"


class Category(models.TextChoices):
    BUG = "bug", "Bug"
    USABILITY = "usability", "Usability"
    FEATURE = "feature", "Feature request"
    CDS_DISAGREEMENT = "cds_disagreement", "CDS disagreement"
    DATA_ISSUE = "data_issue", "Data issue"
    DOCUMENTATION = "documentation", "Documentation"


class Component(models.TextChoices):
    CATALOGUE = "catalogue", "Catalogue"
    GOVERNANCE = "governance", "Governance"
    FEDERATION = "federation", "Federation"
    NODE_AGENT = "node_agent", "Node agent"
    CDS = "cds", "Clinical decision support"
    OTHER = "other", "Other"


class Severity(models.TextChoices):
    LOW = "low", "Low: cosmetic or has an easy workaround"
    MEDIUM = "medium", "Medium: hampers work, workaround exists"
    HIGH = "high", "High: blocks a task, no workaround"
    CRITICAL = "critical", "Critical: wrong results, data exposure or outage"


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class Status(models.TextChoices):
    NEW = "new", "New"
    TRIAGED = "triaged", "Triaged"
    IN_PROGRESS = "in_progress", "In progress"
    RESOLVED = "resolved", "Resolved"
    WONT_FIX = "wont_fix", "Won't fix"
    DUPLICATE = "duplicate", "Duplicate"
    REOPENED = "reopened", "Reopened"


CLOSED_STATUSES = (Status.RESOLVED, Status.WONT_FIX, Status.DUPLICATE)
OPEN_STATUSES = (Status.NEW, Status.TRIAGED, Status.IN_PROGRESS, Status.REOPENED)


class Label(models.Model):
    """A triage label (``regression``, ``good-first-issue`` …), created on first use."""

    name = models.CharField(max_length=40, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FeedbackItem(models.Model):
    site = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="feedback_items",
        help_text="The implementation test site the feedback comes from.",
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="feedback_items",
    )
    persona = models.CharField(max_length=20, choices=Persona.choices)
    category = models.CharField(max_length=20, choices=Category.choices)
    component = models.CharField(max_length=20, choices=Component.choices)
    component_version = models.CharField(max_length=40, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, blank=True)
    title = models.CharField(max_length=200)
    description = models.TextField(help_text="Markdown.")
    steps_to_reproduce = models.TextField(blank=True, help_text="Markdown.")
    page_path = models.CharField(max_length=500, blank=True)
    contact_consent = models.BooleanField(
        "may be contacted", default=False, help_text="The platform team may contact the author."
    )
    shared = models.BooleanField(
        default=False,
        help_text="Shared items are seen by the other test sites, who may comment and vote.",
    )

    # The object the feedback is about (dataset, analysis, CDS evaluation …).
    link_type = models.ForeignKey(
        ContentType, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    link_id = models.CharField(max_length=64, blank=True)
    link_label = models.CharField(max_length=200, blank=True)
    linked_object = GenericForeignKey("link_type", "link_id")

    # A CDS disagreement carries the evaluation it disagrees with, so it stands alone.
    cds_snapshot = models.JSONField(default=dict, blank=True)
    cds_pathway_id = models.CharField(max_length=100, blank=True, db_index=True)
    cds_rule_id = models.CharField(max_length=200, blank=True)

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_feedback",
    )
    priority = models.CharField(max_length=10, choices=Priority.choices, blank=True)
    labels = models.ManyToManyField(Label, blank=True, related_name="items")
    resolution_note = models.TextField(blank=True, help_text="Markdown.")
    fixed_in_version = models.CharField(max_length=40, blank=True)
    duplicate_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="duplicates"
    )

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    triaged_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    reopened_count = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["site", "status"]),
            models.Index(fields=["link_type", "link_id"]),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("feedback:detail", args=[self.pk])

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_closed(self) -> bool:
        return self.status in CLOSED_STATUSES


class Comment(models.Model):
    item = models.ForeignKey(FeedbackItem, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    body = models.TextField(help_text="Markdown.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"Comment {self.pk} on #{self.item_id}"


class Vote(models.Model):
    item = models.ForeignKey(FeedbackItem, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "user"], name="feedback_one_vote_per_user")
        ]

    def __str__(self) -> str:
        return f"Vote of {self.user_id} on #{self.item_id}"


def _attachment_path(instance: Attachment, filename: str) -> str:
    # Stored under a random name: the original name is only shown, never used as a path.
    suffix = PurePosixPath(filename).suffix.lower()[:8]
    return f"feedback/{instance.item_id}/{uuid.uuid4().hex}{suffix}"


class Attachment(models.Model):
    item = models.ForeignKey(FeedbackItem, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=_attachment_path, max_length=200)
    original_name = models.CharField(max_length=120)
    content_type = models.CharField(max_length=50)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.original_name

    def get_absolute_url(self) -> str:
        return reverse("feedback:attachment", args=[self.item_id, self.pk])

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")
