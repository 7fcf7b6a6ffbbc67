"""Access requests: basket, drafting, submission checks, decisions and derived status, comment
threads, attachments, HTML pages and their query counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from governance import services
from governance.models import (
    AccessRequest,
    Attachment,
    BasketItem,
    Decision,
    DecisionStatus,
    RequestStatus,
)
from governance.services.requests import derive_status
from tests.governance.factories import (
    PDF_BYTES,
    active_agreement,
    complete_draft,
    ethics_pdf,
    published_dataset,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def agreements(hospital_a, hospital_b, institute):
    return active_agreement(hospital_a, institute), active_agreement(hospital_b, institute)


def _decision(r, slug):
    return Decision.objects.get(request=r, custodian__slug=slug)


# --- Basket -----------------------------------------------------------------------------------
def test_basket_add_takes_a_dataset_id_by_post(client_as, researcher, dataset_a, dataset_b):
    client = client_as(researcher)
    for d in (dataset_a, dataset_b, dataset_a):
        response = client.post("/governance/basket/add/", {"dataset": d.pk})
        assert response.status_code == 302
    assert set(BasketItem.objects.filter(user=researcher).values_list("dataset_id", flat=True)) == {
        dataset_a.pk,
        dataset_b.pk,
    }
    page = client.get("/governance/basket/")
    assert b"NSCLC cohort A" in page.content and b"Breast cancer cohort B" in page.content
    # The basket lists its rows (not only the flash messages) and offers to start a request.
    assert page.content.count(b'name="dataset"') == 2
    assert b"Start the request" in page.content


def test_basket_add_with_htmx_answers_a_fragment(client_as, researcher, dataset_a):
    response = client_as(researcher).post(
        "/governance/basket/add/", {"dataset": dataset_a.pk}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert b"is in your" in response.content and b"<html" not in response.content


def test_only_published_datasets_go_into_the_basket(client_as, researcher, hospital_a):
    from catalogue.models import Dataset

    draft = Dataset.objects.create(publisher=hospital_a, title="Draft", description="d")
    assert (
        client_as(researcher).post("/governance/basket/add/", {"dataset": draft.pk}).status_code
        == 404
    )
    assert not BasketItem.objects.exists()


def test_a_non_researcher_cannot_fill_a_basket(client_as, steward_a, dataset_a):
    response = client_as(steward_a).post("/governance/basket/add/", {"dataset": dataset_a.pk})
    assert response.status_code == 403
    assert b"Only researchers" in response.content


# --- Drafting and submission ------------------------------------------------------------------
def test_a_request_from_the_basket_spans_custodians(researcher, dataset_a, dataset_b):
    services.basket_add(user=researcher, dataset=dataset_a)
    services.basket_add(user=researcher, dataset=dataset_b)
    r = services.access_request_create(actor=researcher, project_title="P", from_basket=True)
    assert r.status == RequestStatus.DRAFT
    assert {i.custodian.slug for i in r.items.all()} == {"hospital-a", "hospital-b"}
    assert {i.access_mode for i in r.items.all()} == {"federated_analytics"}
    assert not BasketItem.objects.filter(user=researcher).exists()


def test_submission_lists_everything_missing(researcher, dataset_a):
    r = services.access_request_create(
        actor=researcher, project_title="P", datasets=[(dataset_a, None, False)]
    )
    with pytest.raises(ValidationError) as exc:
        services.access_request_submit(actor=researcher, access_request=r)
    errors = exc.value.message_dict
    for field in (
        "research_question",
        "lay_summary",
        "purpose",
        "ethics_reference",
        "requested_end_date",
        "ethics_file",
        "terms",
    ):
        assert field in errors, field
    r.refresh_from_db()
    assert r.status == RequestStatus.DRAFT and not r.decisions.exists()


def test_an_access_mode_the_dataset_does_not_offer_is_refused(researcher, dataset_b):
    with pytest.raises(ValidationError) as exc:
        services.access_request_create(
            actor=researcher, project_title="P", datasets=[(dataset_b, "central_copy", True)]
        )
    assert "does not offer Central copy" in str(exc.value)


def test_team_members_come_from_the_researchers_organisation(
    researcher, teammate, outsider, dataset_a
):
    with pytest.raises(ValidationError) as exc:
        complete_draft(researcher, [dataset_a], team=[teammate, outsider])
    assert "outsider_b" in str(exc.value.message_dict["team_members"])
    r = complete_draft(researcher, [dataset_a], team=[teammate])
    assert list(r.team_members.all()) == [teammate]


def test_submitting_opens_one_decision_per_custodian(
    researcher, dac_a, dac_b, dataset_a, dataset_b
):
    extra = published_dataset(dataset_a.publisher, title="Prostate cohort A")
    r = complete_draft(researcher, [dataset_a, dataset_b, extra])
    services.access_request_submit(actor=researcher, access_request=r)
    assert sorted(r.decisions.values_list("custodian__slug", "status")) == [
        ("hospital-a", "pending"),
        ("hospital-b", "pending"),
    ]


def test_the_dataset_dac_organisation_decides_when_it_is_named(
    researcher, hospital_a, hospital_b, dataset_a
):
    delegated = published_dataset(hospital_a, title="Delegated", dac=hospital_b)
    r = complete_draft(researcher, [delegated])
    services.access_request_submit(actor=researcher, access_request=r)
    assert list(r.decisions.values_list("custodian__slug", flat=True)) == ["hospital-b"]


def test_editing_is_for_drafts_and_requested_changes(researcher, dac_a, agreements, dataset_a):
    r = complete_draft(researcher, [dataset_a])
    services.access_request_submit(actor=researcher, access_request=r)
    with pytest.raises(ValidationError):
        services.access_request_update(actor=researcher, access_request=r, lay_summary="x")
    services.decision_request_changes(
        actor=dac_a, decision=_decision(r, "hospital-a"), reason="Shorter summary please."
    )
    services.access_request_update(actor=researcher, access_request=r, lay_summary="Short.")
    with pytest.raises(ValidationError):
        services.access_request_update(
            actor=researcher,
            access_request=r,
            add_datasets=[published_dataset(dataset_a.publisher, title="New")],
        )
    r = services.access_request_resubmit(actor=researcher, access_request=r)
    assert r.status == RequestStatus.RESUBMITTED
    assert _decision(r, "hospital-a").status == DecisionStatus.PENDING


def test_only_the_applicant_edits(researcher, teammate, dataset_a):
    r = complete_draft(researcher, [dataset_a], team=[teammate])
    with pytest.raises(PermissionDenied):
        services.access_request_update(actor=teammate, access_request=r, lay_summary="x")


# --- Derived status ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("current", "decisions", "expected"),
    [
        ("submitted", ["pending", "pending"], "submitted"),
        ("resubmitted", ["pending", "approved"], "under_review"),
        ("submitted", ["under_review", "pending"], "under_review"),
        ("under_review", ["approved", "pending"], "under_review"),
        ("under_review", ["approved", "rejected"], "approved"),
        ("under_review", ["rejected", "rejected"], "rejected"),
        ("under_review", ["approved", "changes_requested"], "changes_requested"),
        ("resubmitted", ["pending"], "resubmitted"),
        ("withdrawn", ["approved"], "withdrawn"),
        ("draft", [], "draft"),
    ],
)
def test_the_overall_status_derives_from_the_decisions(current, decisions, expected):
    assert derive_status(current, decisions) == expected


def test_each_custodian_decides_and_the_request_follows(
    researcher, dac_a, dac_b, agreements, dataset_a, dataset_b
):
    r = complete_draft(researcher, [dataset_a, dataset_b])
    services.access_request_submit(actor=researcher, access_request=r)
    services.decision_start_review(actor=dac_a, decision=_decision(r, "hospital-a"))
    r.refresh_from_db()
    assert r.status == RequestStatus.UNDER_REVIEW
    services.decision_approve(actor=dac_a, decision=_decision(r, "hospital-a"), reason="Fine.")
    services.decision_reject(
        actor=dac_b, decision=_decision(r, "hospital-b"), reason="Out of scope."
    )
    r.refresh_from_db()
    assert r.status == RequestStatus.APPROVED and r.closed_at
    b = _decision(r, "hospital-b")
    assert (b.status, b.reason, b.decided_by) == ("rejected", "Out of scope.", dac_b)


# --- Comments ---------------------------------------------------------------------------------
def test_comment_threads_are_per_custodian(
    api_as, researcher, teammate, dac_a, dac_b, dataset_a, dataset_b
):
    r = complete_draft(researcher, [dataset_a, dataset_b], team=[teammate])
    services.access_request_submit(actor=researcher, access_request=r)
    services.comment_post(
        actor=dac_a, access_request=r, custodian=dataset_a.publisher, body="Question for A"
    )
    services.comment_post(
        actor=researcher, access_request=r, custodian=dataset_b.publisher, body="Note for B"
    )
    with pytest.raises(PermissionDenied):
        services.comment_post(
            actor=dac_b, access_request=r, custodian=dataset_a.publisher, body="x"
        )

    def bodies(user):
        response = api_as(user).get(f"/api/access-requests/{r.pk}/comments/")
        assert response.status_code == 200
        return {c["body"] for c in response.json()}

    assert bodies(teammate) == {"Question for A", "Note for B"}
    assert bodies(dac_a) == {"Question for A"}
    assert bodies(dac_b) == {"Note for B"}


def test_the_detail_page_shows_only_the_threads_you_may_read(
    client_as, researcher, dac_a, dac_b, dataset_a, dataset_b
):
    r = complete_draft(researcher, [dataset_a, dataset_b])
    services.access_request_submit(actor=researcher, access_request=r)
    services.comment_post(
        actor=dac_a, access_request=r, custodian=dataset_a.publisher, body="Secret A note"
    )
    page = client_as(dac_b).get(f"/governance/requests/{r.pk}/")
    assert page.status_code == 200 and b"Secret A note" not in page.content
    page = client_as(dac_a).get(f"/governance/requests/{r.pk}/")
    assert b"Secret A note" in page.content


# --- Attachments ------------------------------------------------------------------------------
def test_attachments_are_limited_by_type_size_and_content(settings, researcher, dataset_a):
    r = services.access_request_create(
        actor=researcher, project_title="P", datasets=[(dataset_a, None, True)]
    )
    bad = [
        SimpleUploadedFile("run.exe", b"MZ...", content_type="application/octet-stream"),
        SimpleUploadedFile("fake.pdf", b"MZ not a pdf", content_type="application/pdf"),
        SimpleUploadedFile("empty.txt", b"", content_type="text/plain"),
    ]
    for upload in bad:
        with pytest.raises(ValidationError):
            services.attachment_add(actor=researcher, access_request=r, kind="other", upload=upload)
    settings.UPLOAD_MAX_BYTES = 10
    with pytest.raises(ValidationError) as exc:
        services.attachment_add(
            actor=researcher, access_request=r, kind="other", upload=ethics_pdf()
        )
    assert "larger" in str(exc.value)
    assert not Attachment.objects.exists()


def test_attachments_are_served_only_to_those_who_see_the_request(
    client_as, api_as, researcher, dac_a, dac_b, outsider, stranger, dataset_a
):
    r = complete_draft(researcher, [dataset_a])
    attachment = r.attachments.get()
    assert attachment.sha256 and attachment.size == len(PDF_BYTES)
    # Before submission the custodian's DAC cannot see the draft or its files.
    assert client_as(dac_a).get(f"/governance/attachments/{attachment.pk}/").status_code == 404
    services.access_request_submit(actor=researcher, access_request=r)
    for user in (outsider, stranger, dac_b):
        assert client_as(user).get(f"/governance/attachments/{attachment.pk}/").status_code == 404
        assert (
            api_as(user).get(f"/api/access-request-attachments/{attachment.pk}/").status_code == 404
        )
        assert client_as(user).get(f"/governance/requests/{r.pk}/").status_code == 404
        assert api_as(user).get(f"/api/access-requests/{r.pk}/").status_code == 404
    response = client_as(dac_a).get(f"/governance/attachments/{attachment.pk}/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF_BYTES
    assert "attachment" in response["Content-Disposition"]
    assert (
        api_as(researcher).get(f"/api/access-request-attachments/{attachment.pk}/").status_code
        == 200
    )


def test_upload_through_the_api(api_as, researcher, dataset_a):
    r = services.access_request_create(
        actor=researcher, project_title="P", datasets=[(dataset_a, None, True)]
    )
    response = api_as(researcher).post(
        f"/api/access-requests/{r.pk}/attachments/",
        {"kind": "ethics_approval", "file": ethics_pdf()},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert response.json()["original_name"] == "ethics.pdf"
    response = api_as(researcher).post(
        f"/api/access-requests/{r.pk}/attachments/",
        {"kind": "other", "file": SimpleUploadedFile("x.exe", b"MZ")},
        format="multipart",
    )
    assert response.status_code == 400 and "file" in response.json()["error"]["fields"]


# --- API create and the HTML flow -------------------------------------------------------------
def test_the_api_creates_and_submits_a_request(api_as, researcher, teammate, dataset_a, dataset_b):
    client = api_as(researcher)
    response = client.post(
        "/api/access-requests/",
        {
            "project_title": "Notebook project",
            "research_question": "Q",
            "lay_summary": "S",
            "purpose": "DUO:0000007",
            "requested_end_date": str(timezone.localdate() + timedelta(days=90)),
            "ethics_reference": "EC-1",
            "team_members": ["teammate"],
            "items": [
                {
                    "dataset": dataset_a.pk,
                    "access_mode": "federated_learning",
                    "accept_terms": True,
                },
                {"dataset": dataset_b.pk, "accept_terms": True},
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft" and body["team_members"] == ["teammate"]
    assert {i["access_mode"] for i in body["items"]} == {
        "federated_learning",
        "federated_analytics",
    }
    r = AccessRequest.objects.get(pk=body["id"])
    client.post(
        f"/api/access-requests/{r.pk}/attachments/",
        {"kind": "ethics_approval", "file": ethics_pdf()},
        format="multipart",
    )
    response = client.post(f"/api/access-requests/{r.pk}/submit/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "submitted"
    assert len(response.json()["decisions"]) == 2


def test_the_html_flow_from_basket_to_submission(
    client_as, researcher, dataset_a, dataset_b, dac_a
):
    client = client_as(researcher)
    client.post("/governance/basket/add/", {"dataset": dataset_a.pk})
    client.post("/governance/basket/add/", {"dataset": dataset_b.pk})
    response = client.post("/governance/requests/new/", {"project_title": "Two hospitals"})
    r = AccessRequest.objects.get()
    assert response["Location"] == f"/governance/requests/{r.pk}/edit/"
    form = {
        "project_title": "Two hospitals",
        "research_question": "Q",
        "lay_summary": "S",
        "purpose": "DUO:0000007",
        "requested_end_date": str(timezone.localdate() + timedelta(days=60)),
        "ethics_reference": "EC-9",
        f"mode_{dataset_a.pk}": "federated_analytics",
        f"mode_{dataset_b.pk}": "federated_analytics",
        f"terms_{dataset_a.pk}": "on",
        f"terms_{dataset_b.pk}": "on",
    }
    assert client.get(f"/governance/requests/{r.pk}/edit/").status_code == 200
    response = client.post(f"/governance/requests/{r.pk}/edit/", {**form, "submit": "1"})
    assert response.status_code == 400  # the ethics file is still missing
    assert b"Upload the ethics approval document" in response.content
    client.post(
        f"/governance/requests/{r.pk}/attachments/",
        {"kind": "ethics_approval", "file": ethics_pdf()},
    )
    response = client.post(f"/governance/requests/{r.pk}/edit/", {**form, "submit": "1"})
    assert response.status_code == 302, response.content
    r.refresh_from_db()
    assert r.status == RequestStatus.SUBMITTED
    page = client_as(dac_a).get(f"/governance/requests/{r.pk}/")
    assert b"Approval is blocked" in page.content
    assert b"Start a Data Access and Use Agreement" in page.content


def test_a_dac_decides_on_the_page(client_as, researcher, dac_a, agreements, dataset_a):
    r = complete_draft(researcher, [dataset_a])
    services.access_request_submit(actor=researcher, access_request=r)
    client = client_as(dac_a)
    response = client.post(
        f"/governance/requests/{r.pk}/decisions/{dataset_a.publisher_id}/reject/", {"reason": ""}
    )
    assert response.status_code == 400 and b"Give the reason" in response.content
    response = client.post(
        f"/governance/requests/{r.pk}/decisions/{dataset_a.publisher_id}/approve/", {"reason": "ok"}
    )
    assert response.status_code == 302
    r.refresh_from_db()
    assert r.status == RequestStatus.APPROVED


def test_the_request_list_has_a_constant_number_of_queries(
    client_as, researcher, dataset_a, dataset_b, django_assert_max_num_queries
):
    for _ in range(6):
        r = complete_draft(researcher, [dataset_a, dataset_b])
        services.access_request_submit(actor=researcher, access_request=r)
    client = client_as(researcher)
    with django_assert_max_num_queries(12):
        response = client.get("/governance/requests/")
    assert response.status_code == 200 and response.content.count(b"Survival after first-line") == 6


def test_the_detail_page_shows_the_history(client_as, researcher, dataset_a):
    r = complete_draft(researcher, [dataset_a])
    services.access_request_submit(actor=researcher, access_request=r)
    page = client_as(researcher).get(f"/governance/requests/{r.pk}/")
    assert b"Access request created" in page.content and b"Access request submitted" in page.content
    assert b"access_request.created" not in page.content  # words, not codes


def test_the_api_patches_a_draft_with_items(api_as, researcher, dataset_a, dataset_b):
    r = services.access_request_create(
        actor=researcher, project_title="P", datasets=[(dataset_a, None, False)]
    )
    client = api_as(researcher)
    response = client.patch(
        f"/api/access-requests/{r.pk}/",
        {
            "lay_summary": "Short",
            "items": [
                {
                    "dataset": dataset_a.pk,
                    "access_mode": "federated_learning",
                    "accept_terms": True,
                },
                {"dataset": dataset_b.pk, "accept_terms": True},
            ],
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    items = {i["dataset"]["id"]: i for i in response.json()["items"]}
    assert items[dataset_a.pk]["access_mode"] == "federated_learning"
    assert items[dataset_b.pk]["terms_version"] == 1
    response = client.patch(
        f"/api/access-requests/{r.pk}/",
        {"items": [{"dataset": dataset_b.pk, "access_mode": "central_copy"}]},
        format="json",
    )
    assert response.status_code == 400
    assert r.items.count() == 2


def test_the_catalogue_request_access_link_asks_before_adding(
    client_as, client, researcher, dataset_a
):
    url = f"/governance/basket/add/?dataset={dataset_a.pk}"
    assert client.get(url).status_code == 302  # log in first
    page = client_as(researcher).get(url)
    assert page.status_code == 200 and b"Add to basket" in page.content
    assert not BasketItem.objects.exists()  # a GET changes nothing
    client_as(researcher).post("/governance/basket/add/", {"dataset": dataset_a.pk})
    assert b"already in your" in client_as(researcher).get(url).content


def test_unknown_and_foreign_team_members_get_the_same_answer(
    api_as, researcher, outsider, dataset_a
):
    answers = []
    for name in ("outsider_b", "nobody-by-that-name"):
        response = api_as(researcher).post(
            "/api/access-requests/",
            {"project_title": "P", "team_members": [name], "items": [{"dataset": dataset_a.pk}]},
            format="json",
        )
        assert response.status_code == 400
        answers.append(response.json()["error"]["fields"]["team_members"][0].replace(name, "X"))
    assert "must belong to" in answers[0]
    assert not AccessRequest.objects.exists()
