"""Uploads of OMOP extracts and the dataset versions loaded from them.

An :class:`Upload` is the record of one background job (NetBox style): the row, not the broker,
holds its state, progress, check report and error. Each accepted upload becomes a
:class:`DatasetVersion`, a schema (or SQLite file) of the central analysis database; one version per
dataset is the served one.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.hashing import hash_token
from catalogue.models import Dataset


class UploadStatus(models.TextChoices):
    RECEIVING = "receiving", "Receiving chunks"
    QUEUED = "queued", "Received, waiting for the check"
    CHECKING = "checking", "Checking"
    REJECTED = "rejected", "Rejected by the check"
    LOADING = "loading", "Loading"
    LOADED = "loaded", "Loaded"
    FAILED = "failed", "Failed"


ACTIVE_STATUSES = (UploadStatus.QUEUED, UploadStatus.CHECKING, UploadStatus.LOADING)


class Upload(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="central_uploads")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    # The encrypted file's name under CENTRAL_DIR/uploads: random, nothing about the dataset.
    token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    filename = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField(help_text="Announced size of the whole file (bytes).")
    sha256 = models.CharField(max_length=64, help_text="Announced SHA-256 of the whole file.")
    received_bytes = models.PositiveBigIntegerField(default=0)
    stored_bytes = models.PositiveBigIntegerField(
        default=0, help_text="Length of the encrypted file after the last accepted chunk."
    )
    chunks = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=20, choices=UploadStatus.choices, default=UploadStatus.RECEIVING, db_index=True
    )
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent of the load done.")
    stage = models.CharField(max_length=200, blank=True)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(
        default=0,
        help_text="Times the check and load were queued (a lost worker's job is queued again).",
    )
    location = models.CharField(
        max_length=300, blank=True, help_text="Schema or SQLite file the current load writes to."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Also the heartbeat of the check and load: the worker touches it while it makes progress, and
    # central.recover_stalled_uploads re-queues an upload whose heartbeat stopped.
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.get_status_display()})"


class VersionStatus(models.TextChoices):
    SERVED = "served", "Served"
    PREVIOUS = "previous", "Previous (kept until retired)"
    RETIRED = "retired", "Retired"


class DatasetVersion(models.Model):
    """One loaded central copy of a dataset; numbered per dataset."""

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="central_versions")
    number = models.PositiveIntegerField()
    upload = models.OneToOneField(Upload, on_delete=models.PROTECT, related_name="version")
    status = models.CharField(
        max_length=20, choices=VersionStatus.choices, default=VersionStatus.SERVED, db_index=True
    )
    location = models.CharField(
        max_length=300, help_text="Schema name (PostgreSQL) or SQLite file of this version."
    )
    cdm_tables = models.JSONField(default=dict, help_text="Rows loaded per CDM table.")
    persons = models.PositiveIntegerField(default=0)
    loaded_at = models.DateTimeField()
    retired_at = models.DateTimeField(null=True, blank=True)
    reminder_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="central_version_number"),
            models.UniqueConstraint(
                fields=["dataset"],
                condition=models.Q(status="served"),
                name="central_one_served_version",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dataset} central v{self.number}"


class CentralNode(models.Model):
    """The platform's one central node: the credential of the ``optima-node central`` supervisor,
    stored hashed (shown once). It lists the served central copies and obtains each dataset's
    node token; it runs no analysis itself."""

    TOKEN_PREFIX_LEN = 12

    token_prefix = models.CharField(max_length=TOKEN_PREFIX_LEN, blank=True)
    token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    token_issued_at = models.DateTimeField(null=True, blank=True)
    enrolled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return "central node"

    @property
    def active(self) -> bool:
        return bool(self.token_hash) and self.revoked_at is None

    def issue_token(self) -> str:
        """A new credential (the old one stops working); the caller saves and shows it once."""
        raw = "central_" + secrets.token_urlsafe(32)
        self.token_prefix = raw[: self.TOKEN_PREFIX_LEN]
        self.token_hash = hash_token(raw)
        self.token_issued_at = timezone.now()
        self.revoked_at = None
        return raw

    @classmethod
    def authenticate(cls, raw: str) -> CentralNode | None:
        if not raw:
            return None
        return cls.objects.filter(token_hash=hash_token(raw), revoked_at__isnull=True).first()


class CentralPolicy(models.Model):
    """The data provider's disclosure policy for its central copy (``optima_node.policy.Policy``
    fields, validated by the node's own model), set by the provider's site admin and handed to
    the central node with the dataset."""

    dataset = models.OneToOneField(Dataset, on_delete=models.CASCADE, related_name="central_policy")
    policy = models.JSONField(default=dict)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"central policy of {self.dataset}"
