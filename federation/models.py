"""Nodes (one per hospital OMOP database), analyses and their runs: the rows are the truth.

The wire format the node agents speak is :mod:`optima_node.schemas`; this module stores what they
report and what the portal asked them to do.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.hashing import hash_token
from accounts.models import Organisation

from . import versions
from .versions import agent_is_outdated, cdm_is_supported

if TYPE_CHECKING:
    from .analysis_types import AnalysisKind


class NodeStatus(models.TextChoices):
    PENDING = "pending", "Pending approval"
    APPROVED = "approved", "Approved"
    REVOKED = "revoked", "Revoked"


class Liveness(models.TextChoices):
    NEVER_SEEN = "never_seen", "Never seen"
    ONLINE = "online", "Online"
    STALE = "stale", "Stale"
    OFFLINE = "offline", "Offline"


# A node is stale after two missed heartbeats and offline after ten.
STALE_AFTER_MISSED = 2
OFFLINE_AFTER_MISSED = 10


class Node(models.Model):
    TOKEN_PREFIX_LEN = 10

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="nodes")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=NodeStatus.choices, default=NodeStatus.PENDING)
    token_prefix = models.CharField(max_length=TOKEN_PREFIX_LEN, blank=True)
    token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    token_issued_at = models.DateTimeField(null=True, blank=True)
    poll_interval_seconds = models.FloatField(
        default=30.0, help_text="Heartbeat and poll interval the portal asks the agent to use."
    )
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # What the agent reported with its latest heartbeat.
    agent_version = models.CharField(max_length=40, blank=True)
    capabilities = models.JSONField(default=list, blank=True)
    cdm_version = models.CharField(max_length=40, blank=True)
    vocabulary_version = models.CharField(max_length=80, blank=True)
    dialect = models.CharField(max_length=20, blank=True)
    person_count = models.PositiveIntegerField(null=True, blank=True)
    policy = models.JSONField(default=dict, blank=True)
    # Set when the agent runs from the node image: the SHA-256 of the image's SBOM.
    image_digest = models.CharField(max_length=71, blank=True)
    # The outdated agent version the site admins were last notified about (once per version).
    agent_outdated_notified = models.CharField(max_length=40, blank=True)
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Liveness as last noticed by the beat task, so that transitions are audited once.
    last_liveness = models.CharField(
        max_length=12, choices=Liveness.choices, default=Liveness.NEVER_SEEN
    )
    # Secure aggregation: the agent's Ed25519 identity key, pinned on first report (trust on
    # first use). A different key reported later waits in ``identity_key_reported`` and keeps
    # the node out of secure rounds until a site admin confirms it (or rotates the token).
    identity_key = models.CharField(max_length=44, blank=True)
    identity_key_reported = models.CharField(max_length=44, blank=True)
    identity_pinned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["organisation__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name"], name="node_name_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.organisation})"

    @property
    def ref(self) -> str:
        """How the catalogue names the node in a dataset's distribution (``opt:nodeRef``)."""
        return f"{self.organisation.slug}/{self.name}"

    # --- token ----------------------------------------------------------------------------

    def issue_token(self) -> str:
        """A new token (the old one stops working). The caller saves and shows it once."""
        raw = "node_" + secrets.token_urlsafe(32)
        self.token_prefix = raw[: self.TOKEN_PREFIX_LEN]
        self.token_hash = hash_token(raw)
        self.token_issued_at = timezone.now()
        return raw

    @classmethod
    def authenticate(cls, raw: str) -> Node | None:
        if not raw:
            return None
        return cls.objects.select_related("organisation").filter(token_hash=hash_token(raw)).first()

    # --- liveness and what it can run ------------------------------------------------------

    def liveness(self, now=None) -> str:
        if self.last_seen_at is None:
            return Liveness.NEVER_SEEN
        now = now or timezone.now()
        silent = (now - self.last_seen_at).total_seconds()
        # One interval of grace: a heartbeat is "missed" only once its slot has fully passed.
        interval = max(self.poll_interval_seconds, 1.0)
        if silent > interval * (OFFLINE_AFTER_MISSED + 1):
            return Liveness.OFFLINE
        if silent > interval * (STALE_AFTER_MISSED + 1):
            return Liveness.STALE
        return Liveness.ONLINE

    def get_liveness_display(self) -> str:
        return Liveness(self.liveness()).label

    def can_run(self, analysis_type: str, version: int) -> bool:
        return any(
            c.get("type") == analysis_type and int(c.get("version", 0)) == int(version)
            for c in self.capabilities or []
        )

    @property
    def requires_approval(self) -> bool:
        return bool((self.policy or {}).get("require_approval"))

    @property
    def reviews_before_release(self) -> bool:
        return bool((self.policy or {}).get("review_before_release"))

    @property
    def is_active(self) -> bool:
        return self.status == NodeStatus.APPROVED

    @property
    def identity_in_doubt(self) -> bool:
        """The agent reports a key other than the pinned one: no secure round until confirmed."""
        return bool(self.identity_key_reported) and self.identity_key_reported != self.identity_key

    def identity_fingerprint(self, key: str | None = None) -> str:
        """Short SHA-256 of the raw public key, as ``optima-node identity`` prints it."""
        from optima_node.secagg import fingerprint

        key = self.identity_key if key is None else key
        return fingerprint(key) if key else ""

    @property
    def reported_fingerprint(self) -> str:
        return self.identity_fingerprint(self.identity_key_reported or "")

    @property
    def agent_outdated(self) -> bool:
        return bool(self.agent_version) and agent_is_outdated(self.agent_version)

    def warnings(self) -> list[str]:
        found = []
        if self.agent_outdated:
            found.append(
                f"Agent {self.agent_version} is more than one minor version behind the current "
                f"release {versions.AGENT_RELEASE}; please upgrade (docs/node-install.md)."
            )
        if self.cdm_version and not cdm_is_supported(self.cdm_version):
            found.append(f"OMOP CDM version {self.cdm_version} is not supported.")
        if self.status == NodeStatus.APPROVED and self.last_seen_at is None:
            found.append("The agent has never reported; check its configuration and token.")
        return found


class NodeHeartbeat(models.Model):
    """One row per node and minute with at least one heartbeat: the seven-day availability."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="heartbeats")
    minute = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["node", "minute"], name="one_heartbeat_per_minute")
        ]
        indexes = [models.Index(fields=["node", "-minute"])]

    def __str__(self) -> str:
        return f"{self.node_id} @ {self.minute:%Y-%m-%d %H:%M}"


class LinkStatus(models.TextChoices):
    PROPOSED = "proposed", "Awaiting the site admin's confirmation"
    CONFIRMED = "confirmed", "Confirmed"


class NodeDatasetQuerySet(models.QuerySet):
    def serving(self) -> NodeDatasetQuerySet:
        """Links analyses may use: confirmed by the site admin, at an approved node."""
        return self.filter(status=LinkStatus.CONFIRMED, node__status=NodeStatus.APPROVED)


class NodeDataset(models.Model):
    """A dataset's federated distribution: the node that serves it.

    A data steward proposes the link (one of the hospital's nodes); the node's site admin confirms
    it, and only then do analyses reach the node. A site admin's own link is confirmed at once.
    """

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="served_datasets")
    dataset = models.ForeignKey(
        "catalogue.Dataset", on_delete=models.CASCADE, related_name="federated_nodes"
    )
    status = models.CharField(
        max_length=10, choices=LinkStatus.choices, default=LinkStatus.CONFIRMED
    )
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = NodeDatasetQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["node", "dataset"], name="node_serves_dataset_once")
        ]

    def __str__(self) -> str:
        return f"{self.dataset_id} at {self.node_id}"


class AnalysisStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Analysis(models.Model):
    researcher = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="federated_analyses"
    )
    title = models.CharField(max_length=200, blank=True)
    type = models.CharField(max_length=40)
    version = models.PositiveSmallIntegerField(default=1)
    params = models.JSONField()
    datasets = models.ManyToManyField("catalogue.Dataset", related_name="federated_analyses")
    min_nodes = models.PositiveSmallIntegerField()
    status = models.CharField(
        max_length=10, choices=AnalysisStatus.choices, default=AnalysisStatus.RUNNING
    )
    reason = models.TextField(blank=True)
    current_round = models.PositiveSmallIntegerField(default=1)
    # Between rounds: the GLM's β and the previous round's deviance.
    state = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    partial = models.BooleanField(
        default=False, help_text="Completed without every node's contribution."
    )
    run_deadline_hours = models.PositiveIntegerField(default=24)
    # The projects (access-request references) the researcher's entitlements come from; sent
    # with every run so that the nodes' release ledgers compare releases within a project.
    project_ids = models.JSONField(default=list, blank=True)
    # The strictest minimum cell count of the datasets' terms of use, sent with every run.
    terms_min_cell_count = models.PositiveIntegerField(null=True, blank=True)
    # How the counts are pooled: "secure" (masked sums) or "per_site" (each node's own control).
    aggregation = models.CharField(max_length=10, blank=True)
    aggregation_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "analyses"

    def __str__(self) -> str:
        if self.title:
            return self.title
        kind = self.kind
        return f"{kind.label if kind else self.type} #{self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.status != AnalysisStatus.RUNNING

    @property
    def kind(self) -> AnalysisKind | None:
        """What this analysis' kind declares (``federation.analysis_types``)."""
        from .analysis_types import get_kind

        return get_kind(self.type, self.version)

    @property
    def is_secure(self) -> bool:
        return self.aggregation == "secure"

    def run_deadline(self):
        return timezone.now() + timedelta(hours=self.run_deadline_hours)


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DISPATCHED = "dispatched", "Dispatched"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    RUNNING = "running", "Running"
    AWAITING_RELEASE = "awaiting_release", "Awaiting release"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    REJECTED_BY_POLICY = "rejected_by_policy", "Rejected by policy"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


OPEN_RUN_STATUSES = (
    RunStatus.PENDING,
    RunStatus.DISPATCHED,
    RunStatus.AWAITING_APPROVAL,
    RunStatus.RUNNING,
    RunStatus.AWAITING_RELEASE,
)
FINAL_RUN_STATUSES = (
    RunStatus.COMPLETED,
    RunStatus.FAILED,
    RunStatus.REJECTED_BY_POLICY,
    RunStatus.EXPIRED,
    RunStatus.CANCELLED,
)


class Run(models.Model):
    """One node's part of one round of an analysis."""

    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="runs")
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="runs")
    round = models.PositiveSmallIntegerField(default=1)
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.PENDING)
    reason = models.CharField(max_length=300, blank=True)
    state = models.JSONField(default=dict, blank=True)
    deadline = models.DateTimeField()
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    result_hash = models.CharField(max_length=64, blank=True)
    agent_version = models.CharField(max_length=40, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["analysis_id", "round", "node__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["analysis", "node", "round"], name="one_run_per_node_and_round"
            )
        ]
        indexes = [
            models.Index(fields=["node", "status"]),
            models.Index(fields=["status", "deadline"]),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.analysis_id}/{self.node_id}/r{self.round})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_RUN_STATUSES

    @property
    def turnaround(self) -> timedelta | None:
        if self.claimed_at and self.answered_at:
            return self.answered_at - self.created_at
        return None


class ReleaseRecord(models.Model):
    """What one node released to a researcher: the populations whose sizes the result states.

    The portal's copy of the differencing record (the node's release ledger is the authority):
    each population is ``{"cohort": CohortSpec, "outcome_days": int | None, "total": int}``, so a
    later release of a nested population at the same node can be refused before anyone sees it.
    """

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="release_records")
    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="release_record")
    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="release_records")
    researcher = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    project_ids = models.JSONField(default=list, blank=True)
    populations = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["node_id", "created_at", "pk"]
        indexes = [models.Index(fields=["node", "researcher"])]

    def __str__(self) -> str:
        return f"release of run {self.run_id} at node {self.node_id}"


# --- secure aggregation (federation/services/secure.py, docs/federation.md) ---------------------------


class SecureRoundStatus(models.TextChoices):
    COLLECTING_KEYS = "collecting_keys", "Collecting keys"
    MASKING = "masking", "Masking"
    SUMMED = "summed", "Summed"
    ABANDONED = "abandoned", "Abandoned"


class SecureRound(models.Model):
    """One pairwise-masking round of an analysis. A node lost after the key exchange abandons
    the round (its masked vectors are deleted) and a new round with a new id starts."""

    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="secure_rounds")
    round_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    participants = models.ManyToManyField(Node, related_name="secure_rounds")
    vector_length = models.PositiveIntegerField()
    status = models.CharField(
        max_length=20, choices=SecureRoundStatus.choices, default=SecureRoundStatus.COLLECTING_KEYS
    )
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["analysis_id", "created_at", "pk"]

    def __str__(self) -> str:
        return f"secure round {self.round_id} of analysis {self.analysis_id}"

    @property
    def is_open(self) -> bool:
        return self.status in (SecureRoundStatus.COLLECTING_KEYS, SecureRoundStatus.MASKING)


class SecureKey(models.Model):
    """A node's signed X25519 announcement for one round (public: relayed to the peers)."""

    round = models.ForeignKey(SecureRound, on_delete=models.CASCADE, related_name="keys")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+")
    announcement = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["round", "node"], name="one_secure_key_per_node")
        ]

    def __str__(self) -> str:
        return f"key of node {self.node_id} in round {self.round_id}"


class MaskedVector(models.Model):
    """A node's masked vector, kept only until the round is summed or abandoned."""

    round = models.ForeignKey(SecureRound, on_delete=models.CASCADE, related_name="masked")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+")
    vector = models.TextField()  # base64 of little-endian uint64, as posted
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["round", "node"], name="one_masked_vector_per_node")
        ]

    def __str__(self) -> str:
        return f"masked vector of node {self.node_id} in round {self.round_id}"


# --- federated learning on NVIDIA FLARE (federation/flare/, docs/federated-learning.md) -----------


class FlJobStatus(models.TextChoices):
    SUBMITTING = "submitting", "Submitting to FLARE"
    SUBMITTED = "submitted", "Submitted"
    RUNNING = "running", "Training"
    AWAITING_RELEASE = "awaiting_release", "Awaiting release"
    RELEASED = "released", "Released"
    DECLINED = "declined", "Release declined"
    FAILED = "failed", "Failed"
    ABORTED = "aborted", "Aborted"


OPEN_FL_STATUSES = (FlJobStatus.SUBMITTING, FlJobStatus.SUBMITTED, FlJobStatus.RUNNING)
FINAL_FL_STATUSES = (
    FlJobStatus.RELEASED,
    FlJobStatus.DECLINED,
    FlJobStatus.FAILED,
    FlJobStatus.ABORTED,
)


class FlJob(models.Model):
    """The FLARE job behind a ``federated_learning`` analysis (one per analysis)."""

    analysis = models.OneToOneField(Analysis, on_delete=models.CASCADE, related_name="fl_job")
    nodes = models.ManyToManyField(Node, related_name="fl_jobs")
    status = models.CharField(
        max_length=20, choices=FlJobStatus.choices, default=FlJobStatus.SUBMITTING
    )
    reason = models.TextField(blank=True)
    flare_job_id = models.CharField(max_length=64, blank=True, db_index=True)
    flare_status = models.CharField(max_length=40, blank=True)
    # The FLARE site names taking part (a node's FLARE client is named after the node).
    sites = models.JSONField(default=list)
    # The controller's report: current round, per-round per-site and pooled metrics, final validation.
    progress = models.JSONField(default=dict, blank=True)
    # The trained global model once FLARE finished: {"template", "features", "parameters"}.
    global_model = models.JSONField(null=True, blank=True)
    # Seconds spent by the portal itself: submit, monitor (sum of polls), download.
    timing = models.JSONField(default=dict, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"FL job {self.pk} ({self.flare_job_id or 'not submitted'})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_FL_STATUSES


class TrainedModel(models.Model):
    """A released global model in the registry: versioned by name, with its provenance."""

    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField()
    fl_job = models.OneToOneField(FlJob, on_delete=models.PROTECT, related_name="trained_model")
    template = models.CharField(max_length=40)
    features = models.JSONField()
    parameters = models.JSONField()
    training_params = models.JSONField()
    metrics = models.JSONField(default=dict)
    sites = models.JSONField(default=list)  # [{"node", "organisation", "site", "n_train", "n_val"}]
    model_card = models.TextField()
    datasets = models.ManyToManyField("catalogue.Dataset", related_name="trained_models")
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    released_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="trained_model_version_once")
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"
