"""draft → submitted → changes requested → draft → submitted → published → new draft → retired."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import AuditEvent, Notification
from catalogue import services
from catalogue.models import DatasetVersion, Status
from catalogue.validation import ViolationsFound
from tests.catalogue.factories import make_draft, make_published

pytestmark = pytest.mark.django_db(transaction=False)


def actions(dataset):
    return list(
        AuditEvent.objects.filter(object_type="catalogue.dataset", object_id=str(dataset.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )


def test_the_whole_lifecycle_is_audited_and_notifies_the_other_side(
    steward_a, hospital_a, curator, django_capture_on_commit_callbacks
):
    dataset = make_draft(steward_a, hospital_a)
    with django_capture_on_commit_callbacks(execute=True):
        dataset = services.dataset_submit(user=steward_a, dataset=dataset)
    assert dataset.status == Status.SUBMITTED
    assert mail.outbox[-1].to == [curator.email]
    assert "submitted" in mail.outbox[-1].subject

    with django_capture_on_commit_callbacks(execute=True):
        services.dataset_request_changes(user=curator, dataset=dataset, comment="Add LOINC.")
    dataset.refresh_from_db()
    assert dataset.status == Status.CHANGES_REQUESTED
    assert mail.outbox[-1].to == [steward_a.email]
    assert "Add LOINC." in mail.outbox[-1].body

    services.dataset_update(user=steward_a, dataset=dataset, data={"title": "Lung cohort v2"})
    dataset.refresh_from_db()
    assert dataset.status == Status.DRAFT
    services.dataset_submit(user=steward_a, dataset=dataset)
    with django_capture_on_commit_callbacks(execute=True):
        version = services.dataset_publish(user=curator, dataset=dataset, notes="Initial.")
    dataset.refresh_from_db()
    assert dataset.status == Status.PUBLISHED
    assert dataset.current_version == version
    assert version.number == 1 and version.is_listed
    assert version.metadata["title"] == "Lung cohort v2"
    assert dataset.current_terms_of_use.version == 1
    assert "published" in mail.outbox[-1].subject
    # Every message e-mailed is in the recipient's in-app notifications too.
    told = Notification.objects.filter(recipient=steward_a).order_by("pk")
    assert [n.verb for n in told] == ["dataset.changes_requested", "dataset.published"]
    assert told.last().url == f"/catalogue/datasets/{dataset.identifier}/"
    sent = Notification.objects.filter(sent_at__isnull=False)
    assert {f"[OPTIMA] {n.subject}" for n in sent} == {m.subject for m in mail.outbox}

    with django_capture_on_commit_callbacks(execute=True):
        services.dataset_retire(user=curator, dataset=dataset, reason="Superseded.")
    dataset.refresh_from_db()
    assert dataset.status == Status.RETIRED
    assert not DatasetVersion.objects.filter(dataset=dataset, is_listed=True).exists()
    assert actions(dataset) == [
        "dataset.created",
        "dataset.submitted",
        "dataset.changes_requested",
        "dataset.updated",
        "dataset.submitted",
        "dataset.published",
        "dataset.retired",
    ]


def test_editing_a_published_dataset_leaves_the_published_version_alone(
    steward_a, hospital_a, curator
):
    dataset = make_published(steward_a, curator, hospital_a)
    v1 = dataset.current_version
    services.dataset_update(
        user=steward_a,
        dataset=dataset,
        data={"title": "Renamed", "terms_of_use_text": "New terms."},
    )
    dataset.refresh_from_db()
    v1.refresh_from_db()
    assert dataset.status == Status.DRAFT
    assert dataset.title == "Renamed"
    assert dataset.current_version == v1 and v1.title == "Lung cancer cohort" and v1.is_listed
    services.dataset_submit(user=steward_a, dataset=dataset)
    v2 = services.dataset_publish(user=curator, dataset=dataset)
    v1.refresh_from_db()
    assert v2.number == 2 and v2.is_listed and not v1.is_listed
    assert v2.terms_of_use.version == 2 and v1.terms_of_use.version == 1


def test_restoring_an_old_version_makes_a_new_draft(steward_a, hospital_a, curator):
    dataset = make_published(steward_a, curator, hospital_a)
    v1 = dataset.current_version
    services.dataset_update(
        user=steward_a, dataset=dataset, data={"title": "Second title", "keywords": ["x"]}
    )
    services.dataset_submit(user=steward_a, dataset=dataset)
    services.dataset_publish(user=curator, dataset=dataset)
    services.dataset_restore_version(user=steward_a, dataset=dataset, version=v1)
    dataset.refresh_from_db()
    assert dataset.status == Status.DRAFT
    assert dataset.title == "Lung cancer cohort"
    assert dataset.keywords == ["lung", "immunotherapy"]
    assert dataset.current_version.number == 2  # the published version is untouched
    assert list(dataset.indications.values_list("code", flat=True)) == ["nsclc"]
    assert "dataset.version_restored" in actions(dataset)


def test_a_dataset_with_violations_cannot_be_submitted(steward_a, hospital_a):
    dataset = make_draft(steward_a, hospital_a, description="", contact_email="")
    with pytest.raises(ViolationsFound) as exc:
        services.dataset_submit(user=steward_a, dataset=dataset)
    assert "description" in exc.value.message_dict
    assert "contact_email" in exc.value.message_dict
    dataset.refresh_from_db()
    assert dataset.status == Status.DRAFT
    assert dataset.validation_report["violations"]  # kept for the form


def test_only_stewards_of_the_publisher_edit_and_only_curators_review(
    steward_a, steward_b, hospital_a, hospital_b, curator
):
    with pytest.raises(PermissionDenied):
        make_draft(steward_b, hospital_a)
    dataset = make_draft(steward_a, hospital_a)
    with pytest.raises(PermissionDenied):
        services.dataset_update(user=steward_b, dataset=dataset, data={"title": "Mine"})
    services.dataset_submit(user=steward_a, dataset=dataset)
    with pytest.raises(PermissionDenied):
        services.dataset_publish(user=steward_a, dataset=dataset)
    with pytest.raises(ValidationError):
        services.dataset_request_changes(user=curator, dataset=dataset, comment="  ")
