"""Writes of the centralised route: receive an upload, check and load it, retire versions, remind.

Every step writes its audit event (``central.*``); the check and the load run in the Celery task
``central.process_upload`` (enqueued by name), which drives the :class:`~central.models.Upload` row.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone

from accounts import jobs, notifications
from accounts.audit import record, write_transaction
from accounts.models import Role
from catalogue import selectors as catalogue_selectors
from catalogue.models import AccessMode, Dataset, Status
from federation import services as federation_services
from federation.models import Node, NodeStatus
from optima_node.policy import Policy, PolicyError, policy_from_text

from . import vault, warehouse
from .extract import ExtractError, open_extract
from .models import (
    ACTIVE_STATUSES,
    CentralNode,
    CentralPolicy,
    DatasetVersion,
    Upload,
    UploadStatus,
    VersionStatus,
)
from .quality import run_checks

log = logging.getLogger(__name__)
SHA256 = re.compile(r"^[0-9a-f]{64}$")
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def _audit(action: str, upload: Upload, *, actor=None, **payload) -> None:
    record(
        action,
        actor=actor,
        obj=upload,
        organisation=upload.dataset.publisher,
        payload={"dataset": upload.dataset_id, "upload": upload.pk, **payload},
    )


@write_transaction
def upload_create(*, user: User, dataset_id: int, filename: str, size: int, sha256: str) -> Upload:
    """Start an upload of an OMOP extract for a dataset the user stewards (404 otherwise)."""
    dataset = catalogue_selectors.dataset_get_for_user(user=user, pk=dataset_id, action="edit")
    errors: dict[str, str] = {}
    if AccessMode.CENTRAL_COPY not in (dataset.access_modes or []):
        errors["dataset"] = "This dataset is not offered as a central copy (its access modes)."
    limit = settings.CENTRAL_UPLOAD_MAX_BYTES
    if not 0 < size <= limit:
        errors["size"] = f"The file must be between 1 byte and {limit} bytes."
    if not SHA256.match((sha256 or "").lower()):
        errors["sha256"] = "The SHA-256 of the whole file, as 64 hexadecimal digits."
    if not filename.strip():
        errors["filename"] = "Name the file."
    if errors:
        raise ValidationError(errors)
    upload = Upload.objects.create(
        dataset=dataset,
        uploaded_by=user,
        filename=filename.strip()[:255],
        size=size,
        sha256=sha256.lower(),
    )
    _audit("central.upload_started", upload, actor=user, filename=upload.filename, size=size)
    return upload


def upload_receive_chunk(*, user: User, upload: Upload, offset: int, data: bytes, sha256: str):
    """Store one chunk, encrypted, at ``offset`` (which must be where the last chunk ended)."""
    if not SHA256.match((sha256 or "").lower()):
        raise ValidationError({"checksum": "Send the chunk's SHA-256 as 64 hexadecimal digits."})
    if hashlib.sha256(data).hexdigest() != sha256.lower():
        raise ValidationError({"checksum": "The chunk does not match its SHA-256; send it again."})
    if not data:
        raise ValidationError({"chunk": "The chunk is empty."})
    if len(data) > settings.CENTRAL_CHUNK_MAX_BYTES:
        raise ValidationError(
            {"chunk": f"A chunk may hold at most {settings.CENTRAL_CHUNK_MAX_BYTES} bytes."}
        )
    return _append(upload_pk=upload.pk, offset=offset, data=data)


@write_transaction
def _append(*, upload_pk: int, offset: int, data: bytes) -> Upload:
    upload = Upload.objects.select_for_update().select_related("dataset").get(pk=upload_pk)
    if upload.status != UploadStatus.RECEIVING:
        raise ValidationError({"upload": "This upload is complete; start a new one."})
    if offset != upload.received_bytes:
        raise ValidationError(
            {"offset": f"Expected offset {upload.received_bytes}; resume from there."}
        )
    if upload.received_bytes + len(data) > upload.size:
        raise ValidationError(
            {"chunk": f"The chunk goes beyond the announced size of {upload.size} bytes."}
        )
    upload.stored_bytes = vault.append(
        upload.token, upload.chunks, data, stored_bytes=upload.stored_bytes
    )
    upload.chunks += 1
    upload.received_bytes += len(data)
    upload.save(update_fields=["stored_bytes", "chunks", "received_bytes", "updated_at"])
    return upload


def _whole_file_sha256(upload: Upload) -> tuple[str, bytes]:
    digest = hashlib.sha256()
    head = b""
    for chunk in vault.chunks(upload.token, stored_bytes=upload.stored_bytes):
        if len(head) < 4:
            head += chunk[:4]
        digest.update(chunk)
    return digest.hexdigest(), head[:4]


def upload_complete(*, user: User, upload: Upload) -> Upload:
    """All bytes are in: verify the whole file and queue the check and load."""
    if upload.status != UploadStatus.RECEIVING:
        raise ValidationError({"upload": "This upload is already complete."})
    if upload.received_bytes != upload.size:
        raise ValidationError(
            {"size": f"Received {upload.received_bytes} of {upload.size} bytes; send the rest."}
        )
    digest, head = _whole_file_sha256(upload)
    problem = None
    if digest != upload.sha256:
        problem = {"checksum": "The file does not match its SHA-256; upload it again."}
    elif head not in ZIP_MAGIC:
        problem = {"file": "The file is not a zip archive (one CSV per OMOP CDM table)."}
    if problem:
        _fail(upload, " ".join(problem.values()), actor=user)
        raise ValidationError(problem)
    return _queue(upload_pk=upload.pk, user=user)


@write_transaction
def _queue(*, upload_pk: int, user: User) -> Upload:
    upload = (
        Upload.objects.select_for_update().select_related("dataset__publisher").get(pk=upload_pk)
    )
    if upload.status != UploadStatus.RECEIVING:
        raise ValidationError({"upload": "This upload is already complete."})
    upload.status = UploadStatus.QUEUED
    upload.stage = "Waiting for the check"
    upload.attempts = 1
    upload.save(update_fields=["status", "stage", "attempts", "updated_at"])
    _audit("central.upload_completed", upload, actor=user, size=upload.size, sha256=upload.sha256)
    jobs.enqueue("central.process_upload", upload.pk)
    return upload


@write_transaction
def _fail(
    upload: Upload, error: str, *, actor=None, attempt: Attempt | None = None, **payload
) -> bool:
    """Fail the upload and delete its encrypted file (with ``attempt``: only if that attempt still
    owns the upload). Returns whether it was failed."""
    rows = Upload.objects.filter(pk=upload.pk)
    if attempt is not None:
        rows = rows.filter(attempts=attempt.number, status__in=PROCESSING_STATUSES)
    failed = rows.update(
        status=UploadStatus.FAILED,
        error=error,
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )
    upload.refresh_from_db()
    if not failed:
        return False
    vault.delete(upload.token)
    _discard(upload.location)
    _audit("central.upload_failed", upload, actor=actor, error=error, **payload)
    return True


def _discard(location: str) -> None:
    """Remove a load's half-written schema or SQLite file, unless a version was made of it."""
    if location and not DatasetVersion.objects.filter(location=location).exists():
        warehouse.discard(location)


PROCESSING_STATUSES = (UploadStatus.CHECKING, UploadStatus.LOADING)
HEARTBEAT_SECONDS = 30


class Superseded(Exception):
    """The recovery job gave this attempt up for lost and queued the upload again."""


class Attempt:
    """One run of the check and load of an upload. Every write goes through :meth:`set`, which
    touches the heartbeat (``updated_at``) and writes only while this attempt still owns the row
    (same ``attempts``, still checking or loading): a worker given up for lost stops at its next
    write instead of racing the attempt that replaced it."""

    def __init__(self, upload: Upload) -> None:
        self.upload_pk = upload.pk
        self.number = upload.attempts
        self.last_beat = time.monotonic()

    def set(self, **fields) -> None:
        owned = Upload.objects.filter(
            pk=self.upload_pk, attempts=self.number, status__in=PROCESSING_STATUSES
        ).update(updated_at=timezone.now(), **fields)
        if not owned:
            raise Superseded(f"upload {self.upload_pk}: attempt {self.number} was given up")
        self.last_beat = time.monotonic()

    def beat(self) -> None:
        if time.monotonic() - self.last_beat >= HEARTBEAT_SECONDS:
            self.set()


def upload_process(*, upload_id: int) -> Upload:
    """Check the extract, then load it into a new dataset version (the task's body; idempotent:
    only a queued upload is claimed, so a duplicate message does nothing)."""
    claimed = Upload.objects.filter(pk=upload_id, status=UploadStatus.QUEUED).update(
        status=UploadStatus.CHECKING, stage="Checking the extract", updated_at=timezone.now()
    )
    upload = Upload.objects.select_related("dataset__publisher").get(pk=upload_id)
    if not claimed:
        return upload
    attempt = Attempt(upload)
    try:
        with vault.open_plain(
            upload.token, stored_bytes=upload.stored_bytes, heartbeat=attempt.beat
        ) as plain:
            try:
                extract = open_extract(plain)
            except ExtractError as exc:
                report = {"checks": [], "tables": {}, "errors": 1, "warnings": 0, "passed": False}
                report["checks"].append(
                    {"check": "zip", "table": "", "field": "", "severity": "error",
                     "description": str(exc), "failed": 1, "rows": 0, "examples": []}
                )  # fmt: skip
            else:
                report = run_checks(extract, heartbeat=attempt.beat)
            _record_check(upload, report, attempt)
            if not report["passed"]:
                return upload
            number = _next_number(upload.dataset)
            location = warehouse.location_for(upload.dataset_id, number)
            _load_start(upload, attempt, location)
            counts = warehouse.load(
                extract,
                location,
                total_rows=sum(report["tables"].values()),
                progress=lambda percent: attempt.set(progress=percent),
                attempt=attempt.number,
            )
        upload = _publish(
            upload_pk=upload.pk, attempt=attempt, number=number, location=location, counts=counts
        )
    except Superseded:
        log.warning(
            "central upload %s: attempt %s was given up; stopped", upload_id, attempt.number
        )
        upload.refresh_from_db()
        return upload
    except Exception as exc:
        log.exception("central upload %s failed", upload_id)
        _fail(upload, f"{type(exc).__name__}: {exc}", attempt=attempt)
        return upload
    warehouse.serve(upload.dataset_id, location)
    return upload


@write_transaction
def _load_start(upload: Upload, attempt: Attempt, location: str) -> None:
    attempt.set(status=UploadStatus.LOADING, stage="Loading", progress=0, location=location)
    upload.refresh_from_db()
    _audit("central.load_started", upload, attempt=attempt.number)


@write_transaction
def _record_check(upload: Upload, report: dict, attempt: Attempt) -> None:
    passed = report["passed"]
    fields = {"report": report, "stage": "Check passed" if passed else "Check failed"}
    if not passed:
        fields.update(status=UploadStatus.REJECTED, finished_at=timezone.now())
    attempt.set(**fields)
    upload.refresh_from_db()
    _audit(
        "central.check_passed" if passed else "central.check_failed",
        upload,
        errors=report["errors"],
        warnings=report["warnings"],
    )
    if not passed:
        transaction.on_commit(lambda: vault.delete(upload.token))


def _next_number(dataset: Dataset) -> int:
    top = DatasetVersion.objects.filter(dataset=dataset).aggregate(n=Max("number"))["n"]
    return (top or 0) + 1


@write_transaction
def _publish(
    *, upload_pk: int, attempt: Attempt, number: int, location: str, counts: dict[str, int]
) -> Upload:
    """Serve the new version in place of the old one, in one transaction."""
    upload = (
        Upload.objects.select_for_update().select_related("dataset__publisher").get(pk=upload_pk)
    )
    if upload.status != UploadStatus.LOADING or upload.attempts != attempt.number:
        raise Superseded(f"upload {upload_pk}: attempt {attempt.number} was given up")
    previous = list(
        DatasetVersion.objects.select_for_update().filter(
            dataset=upload.dataset, status=VersionStatus.SERVED
        )
    )
    DatasetVersion.objects.filter(pk__in=[v.pk for v in previous]).update(
        status=VersionStatus.PREVIOUS
    )
    DatasetVersion.objects.create(
        dataset=upload.dataset,
        number=number,
        upload=upload,
        location=location,
        cdm_tables=counts,
        persons=counts.get("person", 0),
        loaded_at=timezone.now(),
    )
    upload.status = UploadStatus.LOADED
    upload.progress = 100
    upload.stage = f"Loaded as version {number}"
    upload.finished_at = timezone.now()
    upload.save(update_fields=["status", "progress", "stage", "finished_at", "updated_at"])
    _audit(
        "central.load_completed",
        upload,
        version=number,
        rows=sum(counts.values()),
        replaced=[v.number for v in previous],
    )
    token = upload.token
    transaction.on_commit(lambda: vault.delete(token))
    return upload


def version_retire(*, user: User | None, version: DatasetVersion) -> DatasetVersion:
    """Stop serving a version and drop its schema; the newest previous version, if any, is served
    in its place."""
    version = _retire(version_pk=version.pk, user=user)
    served = DatasetVersion.objects.filter(
        dataset_id=version.dataset_id, status=VersionStatus.SERVED
    ).first()
    warehouse.serve(version.dataset_id, served.location if served else None)
    warehouse.drop(version.location)
    _record_dropped(version=version, user=user)
    return version


@write_transaction
def _record_dropped(*, version: DatasetVersion, user: User | None) -> None:
    record(
        "central.schema_dropped",
        actor=user,
        obj=version,
        organisation=version.dataset.publisher,
        payload={"dataset": version.dataset_id, "version": version.number},
    )


@write_transaction
def _retire(*, version_pk: int, user: User | None) -> DatasetVersion:
    version = (
        DatasetVersion.objects.select_for_update()
        .select_related("dataset__publisher")
        .get(pk=version_pk)
    )
    if version.status == VersionStatus.RETIRED:
        raise ValidationError({"version": "This version is already retired."})
    was_served = version.status == VersionStatus.SERVED
    version.status = VersionStatus.RETIRED
    version.retired_at = timezone.now()
    version.save(update_fields=["status", "retired_at"])
    promoted = None
    if was_served:
        promoted = (
            DatasetVersion.objects.filter(dataset=version.dataset, status=VersionStatus.PREVIOUS)
            .order_by("-number")
            .first()
        )
        if promoted:
            promoted.status = VersionStatus.SERVED
            promoted.save(update_fields=["status"])
    record(
        "central.version_retired",
        actor=user,
        obj=version,
        organisation=version.dataset.publisher,
        payload={
            "dataset": version.dataset_id,
            "version": version.number,
            "served_now": promoted.number if promoted else None,
        },
    )
    return version


def uploads_abandoned_expire(*, now: datetime | None = None) -> int:
    """Uploads left unfinished for ``CENTRAL_UPLOAD_ABANDON_DAYS``: failed, their chunks deleted."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.CENTRAL_UPLOAD_ABANDON_DAYS)
    stale = Upload.objects.filter(status=UploadStatus.RECEIVING, updated_at__lt=cutoff)
    count = 0
    for upload in stale.select_related("dataset__publisher"):
        _fail(upload, "Abandoned: no chunk arrived for too long; start a new upload.")
        count += 1
    return count


def uploads_stalled_recover(*, now: datetime | None = None) -> int:
    """Uploads queued, checking or loading with no progress for ``CENTRAL_UPLOAD_STALL_MINUTES``
    (their worker died, or the message was lost): queued again, or failed once they were queued
    ``CENTRAL_UPLOAD_MAX_ATTEMPTS`` times. Returns the number of uploads recovered or failed."""
    cutoff = (now or timezone.now()) - timedelta(minutes=settings.CENTRAL_UPLOAD_STALL_MINUTES)
    stalled = Upload.objects.filter(status__in=ACTIVE_STATUSES, updated_at__lt=cutoff)
    return sum(_recover(upload_pk=pk, cutoff=cutoff) for pk in stalled.values_list("pk", flat=True))


@write_transaction
def _recover(*, upload_pk: int, cutoff: datetime) -> bool:
    upload = (
        Upload.objects.select_for_update().select_related("dataset__publisher").get(pk=upload_pk)
    )
    if upload.status not in ACTIVE_STATUSES or upload.updated_at >= cutoff:
        return False  # it moved on since the query
    stalled_in, location, last_progress = upload.status, upload.location, upload.updated_at
    if upload.attempts >= settings.CENTRAL_UPLOAD_MAX_ATTEMPTS:
        error = (
            f"The check and load stopped without finishing {upload.attempts} times (the worker "
            "running it was lost), so it was given up: nothing was loaded and the uploaded file "
            "was deleted. Upload the extract again; if this happens again, tell the platform "
            "operators."
        )
        Upload.objects.filter(pk=upload.pk).update(
            status=UploadStatus.FAILED,  # a worker that was only slow stops at its next write
            error=error,
            finished_at=timezone.now(),
            updated_at=timezone.now(),
        )
        upload.refresh_from_db()
        token = upload.token
        transaction.on_commit(lambda: vault.delete(token))
        transaction.on_commit(lambda: _discard(location))
        _audit("central.upload_failed", upload, error=error, stalled_in=stalled_in)
        return True
    upload.attempts += 1
    upload.status = UploadStatus.QUEUED
    upload.stage = "Waiting for the check (queued again: the worker was lost)"
    upload.progress = 0
    upload.location = ""
    upload.save(update_fields=["attempts", "status", "stage", "progress", "location", "updated_at"])
    # The lost attempt's half-written schema or file goes before the next attempt is sent.
    transaction.on_commit(lambda: _discard(location))
    _audit(
        "central.upload_requeued",
        upload,
        attempt=upload.attempts,
        stalled_in=stalled_in,
        last_progress=last_progress.isoformat(),
    )
    jobs.enqueue("central.process_upload", upload.pk)
    return True


def versions_of_retired_datasets_retire() -> int:
    """A retired dataset keeps no central copy: retire (and drop) its versions."""
    stale = DatasetVersion.objects.filter(dataset__status=Status.RETIRED).exclude(
        status=VersionStatus.RETIRED
    )
    count = 0
    for version in stale:
        version_retire(user=None, version=version)
        count += 1
    return count


def refresh_reminders_send(*, now: datetime | None = None) -> int:
    """Tell the stewards when the served version is older than the agreed update interval (once
    per version). Returns the number of versions reminded."""
    now = now or timezone.now()
    due = DatasetVersion.objects.filter(
        status=VersionStatus.SERVED,
        reminder_sent_at__isnull=True,
        dataset__update_interval_days__isnull=False,
    ).select_related("dataset__publisher")
    count = 0
    for version in due:
        dataset = version.dataset
        due_on = version.loaded_at + timedelta(days=dataset.update_interval_days)
        if due_on > now or _has_active_upload(dataset):
            continue
        _remind(version=version, due_on=due_on, now=now)
        count += 1
    return count


def _has_active_upload(dataset: Dataset) -> bool:
    return Upload.objects.filter(dataset=dataset, status__in=ACTIVE_STATUSES).exists()


@write_transaction
def _remind(*, version: DatasetVersion, due_on: datetime, now: datetime) -> None:
    dataset = version.dataset
    stewards = get_user_model().objects.filter(
        is_active=True,
        memberships__organisation_id=dataset.publisher_id,
        memberships__roles__name=Role.DATA_STEWARD,
    )
    notifications.notify(
        recipients=stewards.distinct(),
        verb="central.refresh_due",
        subject=f"Time to refresh the central copy of {dataset.title}",
        body=(
            f"The central copy of {dataset.title} (version {version.number}, loaded "
            f"{version.loaded_at:%Y-%m-%d}) is older than the agreed update interval of "
            f"{dataset.update_interval_days} days. Upload a new extract: it replaces the served "
            "version when its load completes."
        ),
        url=reverse("central:dataset", args=[dataset.pk]),
        organisation=dataset.publisher,
        obj=dataset,
    )
    DatasetVersion.objects.filter(pk=version.pk).update(reminder_sent_at=now)
    record(
        "central.refresh_reminded",
        obj=version,
        organisation=dataset.publisher,
        payload={"dataset": dataset.pk, "version": version.number, "due_on": due_on},
    )


# --- the central node ---------------------------------------------------------------------


@write_transaction
def central_node_enrol(*, actor: User | str) -> tuple[CentralNode, str]:
    """Enrol the platform's central node, or rotate its credential: returns the node and the new
    credential (shown once; stored hashed, the old one stops working)."""
    node = CentralNode.objects.select_for_update().order_by("pk").first()
    rotated = node is not None and node.active
    if node is None:
        node = CentralNode()
    raw = node.issue_token()
    node.enrolled_by = actor if getattr(actor, "is_authenticated", False) else None
    node.save()
    record(
        "central.node_enrolled",
        actor=actor,
        obj=node,
        payload={"token_prefix": node.token_prefix, "rotated": rotated},
    )
    return node, raw


@write_transaction
def central_node_revoke(*, actor: User | str) -> CentralNode:
    """Revoke the central node's credential: the supervisor can no longer list datasets or get
    tokens (the dataset nodes' own tokens stay until their site admins revoke them)."""
    node = CentralNode.objects.select_for_update().order_by("pk").first()
    if node is None or not node.active:
        raise ValidationError({"node": "The central node is not enrolled."})
    node.revoked_at = timezone.now()
    node.token_hash = ""
    node.save(update_fields=["revoked_at", "token_hash"])
    record(
        "central.node_revoked", actor=actor, obj=node, payload={"token_prefix": node.token_prefix}
    )
    return node


def central_node_seen(*, node: CentralNode) -> None:
    CentralNode.objects.filter(pk=node.pk).update(last_seen_at=timezone.now())


@write_transaction
def central_dataset_node_token(*, actor: str, dataset: Dataset) -> tuple[Node, str]:
    """The central node asks for the node token of one served dataset: its node
    ``central-copy-<id>`` of the data provider's organisation (its site admin keeps the approval
    and release gates) is enrolled on first use, later re-issued a fresh token. A node the
    provider revoked stays revoked."""
    if not DatasetVersion.objects.filter(dataset=dataset, status=VersionStatus.SERVED).exists():
        raise ValidationError({"dataset": "This dataset has no loaded central copy to serve."})
    name = central_node_name(dataset)
    existing = Node.objects.filter(organisation=dataset.publisher, name=name).first()
    if existing is not None and existing.status == NodeStatus.REVOKED:
        raise ValidationError(
            {"node": "The data provider revoked this dataset's central node; its site admin "
                     "must enrol it again."}
        )  # fmt: skip
    node, token = federation_services.node_enrol(
        actor=actor, organisation=dataset.publisher, name=name, datasets=[dataset]
    )
    record(
        "central.dataset_token_issued",
        actor=actor,
        obj=dataset,
        organisation=dataset.publisher,
        payload={"node": node.pk, "token_prefix": node.token_prefix},
    )
    return node, token


def central_node_name(dataset: Dataset) -> str:
    return f"central-copy-{dataset.pk}"


@write_transaction
def central_policy_set(*, user: User, dataset: Dataset, text: str) -> CentralPolicy:
    """The data provider's site admin sets the disclosure policy of its central copy (TOML, the
    node's policy file format, validated by the node's own loader)."""
    try:
        policy = policy_from_text(text, "policy")
    except PolicyError as exc:
        raise ValidationError({"policy": str(exc)}) from exc
    data = policy.model_dump(mode="json")
    stored, _ = CentralPolicy.objects.select_for_update().get_or_create(dataset=dataset)
    before = stored.policy or Policy().model_dump(mode="json")
    stored.policy = data
    stored.updated_by = user
    stored.save()
    record(
        "central.policy_changed",
        actor=user,
        obj=dataset,
        organisation=dataset.publisher,
        payload={
            "dataset": dataset.pk,
            "changed": sorted(k for k in data if before.get(k) != data[k]),
            "policy": data,
        },
    )
    return stored
