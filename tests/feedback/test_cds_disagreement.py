"""A clinician's disagreement with CDS advice becomes a feedback item that carries the evaluation,
and the pathway's admin page lists disagreements per deciding rule."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts.models import AuditEvent
from feedback import selectors, services
from feedback.models import Category, Component, FeedbackItem, Status

from .factories import FeedbackItemFactory

pytestmark = pytest.mark.django_db

cds_models = pytest.importorskip("cds.models")
cds_services = pytest.importorskip("cds.services")


@pytest.fixture
def evaluation(clinician_a):
    cds_services.pathway_sync()
    version = cds_models.PathwayVersion.objects.get(pathway__slug="prostate-eau", status="active")
    return cds_services.evaluation_create(
        user=clinician_a,
        pathway_version=version,
        inputs={"psa": "12", "isup_grade": "2", "ct": "cT2a", "cn": "cN0", "cm": "cM0"},
        source="ui",
    )


def test_it_records_the_disagreement_with_a_snapshot_of_the_evaluation(
    evaluation, clinician_a, hospital_a
):
    item = services.cds_disagreement_record(
        user=clinician_a, evaluation=evaluation, reason="Our board calls this unfavourable."
    )
    output = evaluation.output
    assert item.category == Category.CDS_DISAGREEMENT
    assert item.component == Component.CDS
    assert item.site == hospital_a
    assert item.description == "Our board calls this unfavourable."
    assert item.linked_object == evaluation
    snap = item.cds_snapshot
    assert snap["evaluation_id"] == str(evaluation.pk)
    assert snap["pathway_id"] == "prostate-eau" == output["pathway"]["id"]
    assert snap["pathway_version"] == output["pathway"]["version"]
    assert snap["inputs"] == evaluation.inputs
    assert snap["output"]["classification"] == evaluation.classification
    assert snap["rule_id"] == output["decided_by"]
    assert snap["rule_id"] in snap["rule_ids"]
    assert item.cds_pathway_id == "prostate-eau"
    assert item.cds_rule_id == output["decided_by"]
    assert output["label"] in item.title
    assert AuditEvent.objects.filter(
        action="feedback.cds_disagreement_recorded", object_id=str(item.pk)
    ).exists()


def test_the_snapshot_outlives_the_evaluation_page(client_as, evaluation, clinician_a, triager):
    item = services.cds_disagreement_record(user=clinician_a, evaluation=evaluation, reason="No.")
    html = client_as(triager).get(f"/feedback/{item.pk}/").content.decode()
    assert "The advice disagreed with" in html
    assert evaluation.output["decided_by"] in html
    assert "psa" in html


def test_the_cds_result_page_creates_the_item(client_as, evaluation, clinician_a):
    from django.urls import reverse

    client_as(clinician_a).post(
        reverse("cds:evaluation_opinion", args=[evaluation.pk]),
        {"opinion": "disagree", "reason": "Threshold outdated."},
    )
    item = FeedbackItem.objects.get()
    evaluation.refresh_from_db()
    assert evaluation.feedback_ref == str(item.pk)
    assert item.description == "Threshold outdated."


def test_someone_else_cannot_record_a_disagreement_with_anothers_evaluation(
    evaluation, clinician_b
):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.cds_disagreement_record(user=clinician_b, evaluation=evaluation, reason="x")


def test_a_reason_is_required(evaluation, clinician_a):
    with pytest.raises(ValidationError) as exc:
        services.cds_disagreement_record(user=clinician_a, evaluation=evaluation, reason=" ")
    assert "reason" in exc.value.message_dict


def test_nothing_is_recorded_for_someone_at_no_test_site(evaluation, researcher):
    evaluation.user = researcher
    evaluation.save()
    assert (
        services.cds_disagreement_record(user=researcher, evaluation=evaluation, reason="x") is None
    )
    assert FeedbackItem.objects.count() == 0


def test_disagreements_are_listed_per_rule(hospital_a, hospital_b, triager, clinician_b):
    def make(rule, site, status=Status.NEW, version="1.0.0", pathway="prostate-eau"):
        return FeedbackItemFactory(
            site=site,
            category=Category.CDS_DISAGREEMENT,
            cds_pathway_id=pathway,
            cds_rule_id=rule,
            cds_snapshot={"pathway_version": version, "rule_id": rule},
            status=status,
        )

    a1 = make("intermediate", hospital_a)
    a2 = make("intermediate", hospital_b, status=Status.RESOLVED, version="1.1.0")
    make("high_localised", hospital_a)
    make("", hospital_b)
    make("intermediate", hospital_a, pathway="prostate-nccn")
    groups = selectors.cds_disagreements_by_rule("prostate-eau")
    assert [(g["rule_id"], g["count"], g["open"]) for g in groups] == [
        ("intermediate", 2, 1),
        ("", 1, 1),
        ("high_localised", 1, 1),
    ]
    assert groups[0]["versions"] == ["1.0.0", "1.1.0"]
    assert {i.pk for i in groups[0]["items"]} == {a1.pk, a2.pk}
    # Restricted to what a person may see: hospital B's clinician sees only B's items.
    mine = selectors.cds_disagreements_by_rule("prostate-eau", user=clinician_b)
    assert [(g["rule_id"], g["count"]) for g in mine] == [("", 1), ("intermediate", 1)]


def test_the_disagreements_page_and_api_are_for_the_platform_team(
    client_as, api_as, triager, clinician_a, hospital_a
):
    FeedbackItemFactory(
        site=hospital_a,
        category=Category.CDS_DISAGREEMENT,
        cds_pathway_id="prostate-eau",
        cds_rule_id="low",
        cds_snapshot={"pathway_version": "1.0.0"},
    )
    assert client_as(clinician_a).get("/feedback/cds/prostate-eau/").status_code == 404
    html = client_as(triager).get("/feedback/cds/prostate-eau/").content.decode()
    assert "<code>low</code>" in html
    body = api_as(triager).get("/api/feedback/cds-disagreements/prostate-eau/").json()
    assert body[0]["rule_id"] == "low" and body[0]["count"] == 1
    assert (
        api_as(clinician_a).get("/api/feedback/cds-disagreements/prostate-eau/").status_code == 404
    )
