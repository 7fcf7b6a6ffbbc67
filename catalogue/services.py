"""Writes of the catalogue: the dataset lifecycle.

draft → submitted → (changes requested → draft) → published → retired. Every transition writes an
audit event inside its transaction and e-mails the other side once the transaction commits.
Publishing freezes the working copy into an immutable ``DatasetVersion``; editing a published
dataset only changes the working copy (status back to draft), never the published version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from accounts import extensions
from accounts.audit import record
from accounts.models import Organisation

from . import metadata, notifications, permissions, profiles, search_index, validation
from .models import (
    CancerIndication,
    Dataset,
    DatasetProfile,
    DatasetVersion,
    Distribution,
    DistributionKind,
    Status,
    TermsOfUse,
)

if TYPE_CHECKING:
    from datetime import date, datetime

    from django.contrib.auth.models import AnonymousUser, User

EDITABLE_FIELDS = [
    *metadata.SCALAR_FIELDS,
    *metadata.DATE_FIELDS,
    *metadata.LIST_FIELDS,
    "country",
    "data_access_committee",
    "hdab",
    "version_notes",
]


def _distribution_rows(rows) -> list[tuple]:
    return sorted(
        tuple(
            (getattr(r, k) if not isinstance(r, dict) else r.get(k)) or ""
            for k in metadata.DISTRIBUTION_FIELDS
        )
        for r in rows
    )


def _require(condition: bool, message: str = "You may not do this.") -> None:
    if not condition:
        raise PermissionDenied(message)


def _require_status(dataset: Dataset, *allowed: str) -> None:
    if dataset.status not in allowed:
        raise ValidationError(
            {"status": f"Not possible while the dataset is {dataset.get_status_display().lower()}."}
        )


def _locked(dataset: Dataset) -> Dataset:
    return Dataset.objects.select_for_update().select_related("publisher").get(pk=dataset.pk)


def _write_fields(
    dataset: Dataset,
    data: dict[str, Any],
    indications: list[CancerIndication] | None,
    distributions: list[dict] | None,
) -> list[str]:
    changed = []
    for name in EDITABLE_FIELDS:
        if name in data and getattr(dataset, name) != data[name]:
            setattr(dataset, name, data[name])
            changed.append(name)
    dataset.full_clean(exclude=["publisher", "current_version", "identifier"])
    dataset.save()
    if indications is not None:
        before = set(dataset.indications.values_list("pk", flat=True))
        if before != {i.pk for i in indications}:
            dataset.indications.set(indications)
            changed.append("indications")
    if distributions is not None and _distribution_rows(
        dataset.distributions.all()
    ) != _distribution_rows(distributions):
        dataset.distributions.all().delete()
        Distribution.objects.bulk_create(
            [Distribution(dataset=dataset, **d) for d in distributions]
        )
        changed.append("distributions")
    return changed


@transaction.atomic
def dataset_create(
    *,
    user: User,
    publisher: Organisation,
    data: dict[str, Any],
    indications: list[CancerIndication] | None = None,
    distributions: list[dict] | None = None,
    identifier: str | None = None,
) -> Dataset:
    _require(permissions.can_create_for(user, publisher), "Only data stewards of the publisher.")
    dataset = Dataset(publisher=publisher, created_by=user, status=Status.DRAFT)
    if identifier:
        if Dataset.objects.filter(identifier=identifier).exists():
            raise ValidationError({"identifier": "A dataset with this identifier exists."})
        dataset.identifier = identifier
    if not data.get("country"):
        data = {**data, "country": publisher.country}
    _write_fields(dataset, data, indications or [], distributions or [])
    record("dataset.created", actor=user, obj=dataset, organisation=publisher)
    _node_chosen(user, dataset, distributions)
    return dataset


def _node_chosen(user: User, dataset: Dataset, distributions: list[dict] | None) -> None:
    """The node named in the federated distribution is proposed to serve the dataset (the
    federation does it: its site admin confirms before analyses reach the dataset)."""
    propose = extensions.provided(extensions.DATASET_NODE_CHOSEN)
    for d in distributions or []:
        if propose and d.get("kind") == DistributionKind.FEDERATED_OMOP and d.get("node_ref"):
            propose(user=user, dataset=dataset, node_ref=d["node_ref"])


@transaction.atomic
def dataset_update(
    *,
    user: User,
    dataset: Dataset,
    data: dict[str, Any],
    indications: list[CancerIndication] | None = None,
    distributions: list[dict] | None = None,
) -> Dataset:
    """Edit the working copy. A published dataset gets a new draft; its published version stays."""
    dataset = _locked(dataset)
    _require(permissions.allows(dataset, user, "edit"), "Only data stewards of the publisher.")
    _require_status(dataset, Status.DRAFT, Status.CHANGES_REQUESTED, Status.PUBLISHED)
    previous = dataset.status
    changed = _write_fields(dataset, data, indications, distributions)
    if changed:
        dataset.status = Status.DRAFT
        dataset.validation_report = {}
        dataset.save(update_fields=["status", "validation_report", "updated_at"])
        record(
            "dataset.updated",
            actor=user,
            obj=dataset,
            organisation=dataset.publisher,
            payload={"fields": changed, "from_status": previous},
        )
    _node_chosen(user, dataset, distributions)
    return dataset


def dataset_submit(*, user: User, dataset: Dataset) -> Dataset:
    """Validate against the DCAT-AP shapes; a dataset with violations cannot be submitted.

    The validation report is stored even when the submission fails, so the edit form shows the
    violations next to their fields.
    """
    dataset = Dataset.objects.select_related("publisher").get(pk=dataset.pk)
    _require(permissions.allows(dataset, user, "edit"), "Only data stewards of the publisher.")
    _require_status(dataset, Status.DRAFT, Status.CHANGES_REQUESTED)
    report = validation.validate_dataset(dataset)
    Dataset.objects.filter(pk=dataset.pk).update(validation_report=report)
    dataset.validation_report = report
    if report["violations"]:
        raise validation.ViolationsFound(report)
    with transaction.atomic():
        dataset = _locked(dataset)
        _require_status(dataset, Status.DRAFT, Status.CHANGES_REQUESTED)
        dataset.status = Status.SUBMITTED
        dataset.save(update_fields=["status", "updated_at"])
        record(
            "dataset.submitted",
            actor=user,
            obj=dataset,
            organisation=dataset.publisher,
            payload={"warnings": len(report["warnings"])},
        )
        notifications.notify_curators("submitted", dataset, actor=user)
    return dataset


@transaction.atomic
def dataset_request_changes(*, user: User, dataset: Dataset, comment: str) -> Dataset:
    dataset = _locked(dataset)
    _require(permissions.can_review(user), "Only curators review datasets.")
    _require_status(dataset, Status.SUBMITTED)
    if not comment.strip():
        raise ValidationError({"comment": "Tell the steward what to change."})
    dataset.status = Status.CHANGES_REQUESTED
    dataset.review_comment = comment.strip()
    dataset.save(update_fields=["status", "review_comment", "updated_at"])
    record(
        "dataset.changes_requested",
        actor=user,
        obj=dataset,
        organisation=dataset.publisher,
        payload={"comment": dataset.review_comment},
    )
    notifications.notify_stewards("changes_requested", dataset, actor=user)
    return dataset


def _search_vector_refresh(version: DatasetVersion) -> None:
    if connection.vendor != "postgresql":
        return
    from django.contrib.postgres.search import SearchVector

    DatasetVersion.objects.filter(pk=version.pk).update(
        search_vector=SearchVector("title", weight="A", config="simple")
        + SearchVector("keywords_text", weight="A", config="simple")
        + SearchVector("description", weight="B", config="simple")
    )


def _terms_for(dataset: Dataset) -> TermsOfUse | None:
    """The terms version of what is being published: a new one when the text or the minimum
    cell count changed."""
    text = dataset.terms_of_use_text.strip()
    min_cell_count = dataset.terms_min_cell_count
    if not text and min_cell_count is None:
        return None
    latest = dataset.terms_versions.order_by("-version").first()
    if latest and latest.text == text and latest.min_cell_count == min_cell_count:
        return latest
    return TermsOfUse.objects.create(
        dataset=dataset,
        version=(latest.version + 1 if latest else 1),
        text=text,
        min_cell_count=min_cell_count,
    )


def version_create(
    *,
    dataset: Dataset,
    user: User | AnonymousUser,
    notes: str,
    published_at: datetime | None = None,
    number: int | None = None,
) -> DatasetVersion:
    """Freeze the working copy into the next version and make it the listed one."""
    dataset = (
        Dataset.objects.select_related("publisher", "data_access_committee", "hdab")
        .prefetch_related("indications", "distributions")
        .get(pk=dataset.pk)
    )
    data = metadata.snapshot(dataset)
    following = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    number = max(following, number or 0)
    version = DatasetVersion.objects.create(
        dataset=dataset,
        number=number,
        published_at=published_at or timezone.now(),
        published_by=user if getattr(user, "is_authenticated", False) else None,
        notes=notes,
        metadata=data,
        terms_of_use=_terms_for(dataset),
        is_listed=True,
        publisher_id=dataset.publisher_id,
        title=dataset.title,
        description=dataset.description,
        keywords_text=" ".join(dataset.keywords or []),
        country=dataset.country,
        cdm_version=dataset.cdm_version,
        access_modes=list(dataset.access_modes or []),
        data_categories=list(dataset.data_categories or []),
        number_of_individuals=dataset.number_of_individuals,
    )
    version.indications.set(dataset.indications.all())
    DatasetVersion.objects.filter(dataset=dataset, is_listed=True).exclude(pk=version.pk).update(
        is_listed=False
    )
    _search_vector_refresh(version)
    search_index.list_version(version)
    return version


@transaction.atomic
def dataset_publish(*, user: User, dataset: Dataset, notes: str = "") -> DatasetVersion:
    dataset = _locked(dataset)
    _require(permissions.can_review(user), "Only curators publish datasets.")
    _require_status(dataset, Status.SUBMITTED)
    report = validation.validate_dataset(dataset)
    if report["violations"]:
        raise validation.ViolationsFound(report)
    version = version_create(dataset=dataset, user=user, notes=notes or dataset.version_notes)
    dataset.current_version = version
    dataset.status = Status.PUBLISHED
    dataset.review_comment = ""
    dataset.version_notes = ""
    dataset.save(
        update_fields=["current_version", "status", "review_comment", "version_notes", "updated_at"]
    )
    record(
        "dataset.published",
        actor=user,
        obj=dataset,
        organisation=dataset.publisher,
        payload={"version": version.number},
    )
    notifications.notify_stewards("published", dataset, actor=user)
    return version


@transaction.atomic
def dataset_retire(*, user: User, dataset: Dataset, reason: str = "") -> Dataset:
    dataset = _locked(dataset)
    _require(permissions.can_review(user), "Only curators retire datasets.")
    if dataset.current_version_id is None or dataset.status == Status.RETIRED:
        raise ValidationError({"status": "Only a published dataset can be retired."})
    dataset.status = Status.RETIRED
    dataset.review_comment = reason.strip()
    dataset.save(update_fields=["status", "review_comment", "updated_at"])
    DatasetVersion.objects.filter(dataset=dataset).update(is_listed=False)
    search_index.unlist_dataset(dataset.pk)
    record(
        "dataset.retired",
        actor=user,
        obj=dataset,
        organisation=dataset.publisher,
        payload={"reason": dataset.review_comment},
    )
    notifications.notify_stewards("retired", dataset, actor=user)
    return dataset


@transaction.atomic
def dataset_restore_version(*, user: User, dataset: Dataset, version: DatasetVersion) -> Dataset:
    """Copy an old version into the working copy as a new draft (history is never rewritten)."""
    dataset = _locked(dataset)
    _require(permissions.allows(dataset, user, "edit"), "Only data stewards of the publisher.")
    _require_status(dataset, Status.DRAFT, Status.CHANGES_REQUESTED, Status.PUBLISHED)
    if version.dataset_id != dataset.pk:
        raise ValidationError({"version": "This version belongs to another dataset."})
    metadata.apply(dataset, version.metadata)
    dataset.status = Status.DRAFT
    dataset.validation_report = {}
    dataset.version_notes = f"Restored from version {version.number}."
    dataset.save(update_fields=["status", "validation_report", "version_notes", "updated_at"])
    record(
        "dataset.version_restored",
        actor=user,
        obj=dataset,
        organisation=dataset.publisher,
        payload={"version": version.number},
    )
    return dataset


def _comparable(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in snapshot.items() if k != "publisher"}


@transaction.atomic
def dataset_import(
    *,
    user: User,
    publisher: Organisation,
    data: dict[str, Any],
    notes: str = "",
    source: str = "",
) -> str:
    """Create or update the working copy of ``publisher``'s dataset from another catalogue's
    description (a metadata snapshot), as ``user``, a data steward of ``publisher``.

    The import is an edit like any other: it goes through ``dataset_create``/``dataset_update``,
    so a new dataset is a draft and a published one gets a new draft while its published version
    stays; both reach the catalogue only through submit and review. Returns "created", "updated",
    "unchanged" or why it was left alone; PermissionDenied for another publisher's dataset.
    """
    _require(permissions.can_create_for(user, publisher), "Only data stewards of the publisher.")
    identifier = data["identifier"]
    fields, indications, distributions = metadata.fields_from_snapshot(data)
    if notes:
        fields["version_notes"] = notes
    dataset = Dataset.objects.select_for_update().filter(identifier=identifier).first()
    if dataset is None:
        dataset = dataset_create(
            user=user,
            publisher=publisher,
            data=fields,
            indications=indications,
            distributions=distributions,
            identifier=identifier,
        )
        outcome = "created"
    else:
        _require(
            dataset.publisher_id == publisher.pk,
            f"{identifier} is a dataset of another publisher.",
        )
        if dataset.status == Status.SUBMITTED:
            return "submitted for review; import again after the review"
        if dataset.status == Status.RETIRED:
            return "retired"
        working = metadata.snapshot(
            Dataset.objects.select_related("publisher", "data_access_committee")
            .prefetch_related("indications", "distributions")
            .get(pk=dataset.pk)
        )
        if _comparable(working) == _comparable(data):
            return "unchanged"
        dataset_update(
            user=user,
            dataset=dataset,
            data=fields,
            indications=indications,
            distributions=distributions,
        )
        outcome = "updated"
    record(
        "dataset.imported",
        actor=user,
        obj=dataset,
        organisation=publisher,
        payload={"source": source, "outcome": outcome},
    )
    return outcome


# --- database profiles and freshness (catalogue.profiles) --------------------------------------


@transaction.atomic
def dataset_profile_attach(
    *,
    dataset: Dataset,
    profile: dict[str, Any],
    actor: User,
    computed_at: datetime | None = None,
    source: str = "",
) -> DatasetProfile:
    """Attach a released database profile to the dataset (replacing the one before); only data
    stewards of the publisher. Called by federation with the pooled result of a profile run."""
    _require(permissions.allows(dataset, actor, "edit"), "Only data stewards of the publisher.")
    data = profiles.check_shape(profile)
    updated_on = profiles.data_updated_on(data)
    attached, _ = DatasetProfile.objects.update_or_create(
        dataset=dataset,
        defaults={
            "data": data,
            "computed_at": computed_at or timezone.now(),
            "source": source[:200],
            "data_updated_on": updated_on,
            "refresh_due_on": profiles.refresh_due_on(updated_on, dataset.update_interval_days),
            "overdue_notified_on": None,
            "attached_by": actor,
        },
    )
    record(
        "dataset.profile_attached",
        actor=actor,
        obj=dataset,
        organisation=dataset.publisher,
        payload={"source": source, "data_updated_on": str(updated_on or "")},
    )
    return attached


@transaction.atomic
def dataset_update_interval_set(*, user: User, dataset: Dataset, days: int | None) -> Dataset:
    """The data provider's agreed update interval. Operational, so the published version and the
    dataset's status stay as they are."""
    dataset = _locked(dataset)
    _require(permissions.allows(dataset, user, "edit"), "Only data stewards of the publisher.")
    if days is not None and not 1 <= days <= 3660:
        raise ValidationError({"update_interval_days": ["Enter between 1 and 3660 days."]})
    dataset.update_interval_days = days
    dataset.save(update_fields=["update_interval_days", "updated_at"])
    for attached in DatasetProfile.objects.filter(dataset=dataset):
        attached.refresh_due_on = profiles.refresh_due_on(attached.data_updated_on, days)
        attached.save(update_fields=["refresh_due_on"])
    record(
        "dataset.update_interval_set",
        actor=user,
        obj=dataset,
        organisation=dataset.publisher,
        payload={"days": days},
    )
    return dataset


@transaction.atomic
def datasets_overdue_notify(*, today: date | None = None) -> int:
    """The daily check: e-mail the stewards and site admins of each listed dataset whose data is
    older than its agreed update interval (once per overdue profile). Returns datasets notified."""
    today = today or timezone.localdate()
    overdue = (
        Dataset.objects.filter(status=Status.PUBLISHED, update_interval_days__isnull=False)
        .filter(profile__refresh_due_on__lt=today, profile__overdue_notified_on__isnull=True)
        .select_related("profile", "publisher")
    )
    count = 0
    for dataset in overdue:
        notifications.notify_overdue(dataset, profiles.freshness(dataset, today))
        dataset.profile.overdue_notified_on = today
        dataset.profile.save(update_fields=["overdue_notified_on"])
        record(
            "dataset.update_overdue",
            actor=None,
            obj=dataset,
            organisation=dataset.publisher,
            payload={"due_on": str(dataset.profile.refresh_due_on)},
        )
        count += 1
    return count
