"""Giving feedback: the button's htmx form records page and version by itself; the full form adds
attachments (checked by magic bytes) and links (checked by the target app's choke point)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import AuditEvent, Organisation
from feedback import links, services, uploads, versions
from feedback.models import Component, FeedbackItem

from .factories import PDF, PNG, FeedbackItemFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": "http://testserver/catalogue/"}


def test_the_feedback_button_is_on_every_page_for_test_site_members(client_as, clinician_a):
    page = client_as(clinician_a).get("/dashboard/").content.decode()
    assert 'id="feedback-button"' in page
    assert 'hx-get="/feedback/widget/?page=/dashboard/"' in page
    assert "feedback/widget.js" in page


def test_the_button_is_not_shown_to_anonymous_visitors(client):
    assert 'id="feedback-button"' not in client.get("/login/").content.decode()


def test_the_widget_form_records_the_page_and_guesses_the_component(client_as, clinician_a):
    response = client_as(clinician_a).get("/feedback/widget/?page=/catalogue/datasets/7/", **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html  # an htmx fragment
    assert 'name="page_path" value="/catalogue/datasets/7/"' in html
    assert '<option value="catalogue" selected>' in html
    assert '<option value="clinician" selected>' in html


def test_sending_feedback_from_the_widget(client_as, clinician_a, hospital_a, settings):
    settings.PORTAL_VERSION = "0.3.1"
    response = client_as(clinician_a).post(
        "/feedback/widget/",
        {
            "category": "usability",
            "component": "catalogue",
            "persona": "clinician",
            "title": "Filter chips are hard to see",
            "description": "The *active* filters are pale grey.",
            "page_path": "/catalogue/?q=breast",
            "shared": "on",
        },
        **HTMX,
    )
    assert response.status_code == 200
    item = FeedbackItem.objects.get()
    assert f"#{item.pk}" in response.content.decode()
    assert item.site == hospital_a
    assert item.author == clinician_a
    assert item.page_path == "/catalogue/?q=breast"
    assert item.component_version == "0.3.1"
    assert item.shared is True
    assert item.severity == ""
    event = AuditEvent.objects.get(action="feedback.submitted")
    assert event.payload["page"] == "/catalogue/?q=breast"


def test_widget_errors_answer_400_with_field_messages(client_as, clinician_a):
    response = client_as(clinician_a).post(
        "/feedback/widget/",
        {"category": "bug", "component": "cds", "persona": "clinician", "description": "x"},
        **HTMX,
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="feedback_title_error"' in html
    assert "Give the severity of the bug." not in html  # only checked once the form is valid
    response = client_as(clinician_a).post(
        "/feedback/widget/",
        {
            "category": "bug",
            "component": "cds",
            "persona": "clinician",
            "title": "t",
            "description": "x",
        },
        **HTMX,
    )
    assert response.status_code == 400
    assert "Give the severity of the bug." in response.content.decode()
    assert FeedbackItem.objects.count() == 0


def test_people_outside_the_test_sites_are_told_why_they_cannot_give_feedback(
    client_as, researcher
):
    response = client_as(researcher).get("/feedback/widget/", **HTMX)
    assert "Feedback is collected from the implementation test sites" in response.content.decode()
    assert client_as(researcher).get("/feedback/new/").status_code == 302


def test_a_member_of_two_test_sites_must_choose(clinician_a, hospital_b):
    from accounts.models import Membership

    Membership.objects.create(user=clinician_a, organisation=hospital_b)
    with pytest.raises(ValidationError) as exc:
        services.feedback_submit(
            user=clinician_a, title="t", description="d", category="feature", component="other"
        )
    assert "site" in exc.value.message_dict
    item = services.feedback_submit(
        user=clinician_a,
        site=hospital_b,
        title="t",
        description="d",
        category="feature",
        component="other",
    )
    assert item.site == hospital_b


def test_no_one_reports_for_a_site_they_do_not_belong_to(clinician_a, hospital_b):
    with pytest.raises(ValidationError):
        services.feedback_submit(
            user=clinician_a,
            site=hospital_b,
            title="t",
            description="d",
            category="feature",
            component="other",
        )


def test_node_agent_version_is_left_blank_until_federation_reports_it(clinician_a, settings):
    item = services.feedback_submit(
        user=clinician_a, title="t", description="d", category="feature", component="node_agent"
    )
    assert item.component_version == ""
    given = services.feedback_submit(
        user=clinician_a,
        title="t",
        description="d",
        category="feature",
        component="node_agent",
        component_version="0.1.4",
    )
    assert given.component_version == "0.1.4"


def test_node_versions_are_read_from_a_configurable_source(hospital_a, settings):
    # Any model with an organisation link and a version-like field stands in for federation.Node.
    settings.FEEDBACK_NODE_VERSION_SOURCE = ("accounts", "Organisation", "pk", "slug")
    assert versions.node_agent_versions(hospital_a) == ["hospital-a"]
    assert versions.component_version(Component.NODE_AGENT, hospital_a) == "hospital-a"
    settings.FEEDBACK_NODE_VERSION_SOURCE = ("nowhere", "Node", "organisation", "agent_version")
    assert versions.node_agent_versions(hospital_a) == []


def test_the_full_form_takes_steps_and_an_attachment(client_as, clinician_a):
    response = client_as(clinician_a).post(
        "/feedback/new/",
        {
            "category": "bug",
            "component": "federation",
            "severity": "high",
            "persona": "data_scientist",
            "title": "Analysis stuck in queued",
            "description": "It never starts.",
            "steps_to_reproduce": "1. Submit\n2. Wait",
            "attachment": SimpleUploadedFile("../../etc/passwd screen.PNG", PNG, "image/png"),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    item = FeedbackItem.objects.get()
    attachment = item.attachments.get()
    assert attachment.original_name == "passwd_screen.png"
    assert attachment.content_type == "image/png"
    assert attachment.file.name.startswith(f"feedback/{item.pk}/")
    assert "passwd" not in attachment.file.name


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (PNG, "a.png", "image/png"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 20, "photo.jpeg", "image/jpeg"),
        (b"GIF89a" + b"\x00" * 20, "anim.gif", "image/gif"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 10, "w.webp", "image/webp"),
        (PDF, "report.pdf", "application/pdf"),
        ("Traceback: naïve error\n".encode(), "log.log", "text/plain"),
    ],
)
def test_allowed_types_are_recognised_by_their_bytes(data, name, expected):
    checked = uploads.check_upload(SimpleUploadedFile(name, data, "application/octet-stream"))
    assert checked.content_type == expected


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 20, "screenshot.png"),  # a Windows executable
        (b"<html><script>alert(1)</script></html>", "notes.txt"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "icon.svg"),
        (b"PK\x03\x04" + b"\x00" * 20, "archive.pdf"),
        (b"", "empty.txt"),
    ],
)
def test_other_types_are_refused_whatever_they_are_called(data, name):
    with pytest.raises(ValidationError) as exc:
        uploads.check_upload(SimpleUploadedFile(name, data, "image/png"))
    assert "file" in exc.value.message_dict


def test_a_pdf_named_png_is_stored_as_pdf():
    checked = uploads.check_upload(SimpleUploadedFile("scan.png", PDF, "image/png"))
    assert (checked.content_type, checked.name) == ("application/pdf", "scan.pdf")


def test_attachments_are_size_limited(api_as, item_a, clinician_a, settings):
    settings.FEEDBACK_ATTACHMENT_MAX_BYTES = 100
    r = api_as(clinician_a).post(
        f"/api/feedback/items/{item_a.pk}/attachments/",
        {"file": SimpleUploadedFile("big.png", PNG + b"\x00" * 200, "image/png")},
        format="multipart",
    )
    assert r.status_code == 400
    assert "larger than" in r.json()["error"]["fields"]["file"][0]
    assert item_a.attachments.count() == 0


def test_markdown_is_rendered_without_scripts_or_dangerous_links(
    client_as, clinician_a, hospital_a
):
    item = FeedbackItemFactory(
        site=hospital_a,
        author=clinician_a,
        description="**bold** <script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)> [ok](https://example.org)",
    )
    html = client_as(clinician_a).get(f"/feedback/{item.pk}/").content.decode()
    assert "<strong>bold</strong>" in html
    assert "<script>alert(1)" not in html
    assert "javascript:" not in html
    assert "onerror" not in html
    assert 'href="https://example.org"' in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_links_are_checked_through_the_target_apps_choke_point(
    monkeypatch, clinician_a, hospital_a, hospital_b
):
    # Organisations stand in for datasets: the stand-in choke point lets people see their own.
    def restrict(queryset, user, action="view"):
        return queryset.filter(memberships__user=user)

    monkeypatch.setitem(links.LINKABLE, "accounts.organisation", links.LinkTarget("Organisation"))
    monkeypatch.setattr(links, "restrict_for", lambda model: restrict)
    obj = links.resolve_link(
        user=clinician_a, target="accounts.organisation", object_id=hospital_a.pk
    )
    item = services.feedback_submit(
        user=clinician_a,
        title="t",
        description="d",
        category="data_issue",
        component="catalogue",
        link=obj,
    )
    assert (item.link_type.model, item.link_id, item.link_label) == (
        "organisation",
        str(hospital_a.pk),
        hospital_a.name,
    )
    assert item.linked_object == hospital_a
    with pytest.raises(ValidationError) as exc:
        links.resolve_link(
            user=clinician_a, target="accounts.organisation", object_id=hospital_b.pk
        )
    assert "link_id" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        links.resolve_link(user=clinician_a, target="accounts.user", object_id=clinician_a.pk)
    assert "link_type" in exc.value.message_dict


def test_an_app_without_a_choke_point_cannot_be_linked(monkeypatch, clinician_a, hospital_a):
    from accounts.models import Membership

    monkeypatch.setitem(links.LINKABLE, "accounts.membership", links.LinkTarget("Membership"))
    # accounts.permissions.restrict has no rules for memberships: fail closed.
    membership = Membership.objects.get(user=clinician_a)
    with pytest.raises(ValidationError):
        links.resolve_link(user=clinician_a, target="accounts.membership", object_id=membership.pk)


def test_api_create_with_a_bad_link_answers_400(api_as, clinician_a):
    r = api_as(clinician_a).post(
        "/api/feedback/items/",
        {
            "title": "t",
            "description": "d",
            "category": "data_issue",
            "component": "catalogue",
            "link_type": "catalogue.dataset",
            "link_id": "999999",
        },
        format="json",
    )
    assert r.status_code == 400
    assert set(r.json()["error"]["fields"]) & {"link_type", "link_id"}


def test_api_create(api_as, clinician_a, hospital_a):
    r = api_as(clinician_a).post(
        "/api/feedback/items/",
        {
            "site": hospital_a.slug,
            "title": "Docs: where is the OMOP version?",
            "description": "d",
            "category": "documentation",
            "component": "catalogue",
            "severity": "high",
            "page_path": "javascript:alert(1)",
        },
        format="json",
    )
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["site"]["slug"] == hospital_a.slug
    assert body["severity"] == ""  # only bugs carry a severity
    assert body["page_path"] == ""
    assert body["persona"] == "clinician"
    assert Organisation.objects.get(pk=body["site"]["id"]) == hospital_a


def test_api_author_edits_and_shares(api_as, item_a, clinician_a, colleague_a):
    r = api_as(colleague_a).patch(
        f"/api/feedback/items/{item_a.pk}/", {"shared": True}, format="json"
    )
    assert r.status_code == 403
    r = api_as(clinician_a).patch(
        f"/api/feedback/items/{item_a.pk}/",
        {"shared": True, "title": "Better title"},
        format="json",
    )
    assert r.status_code == 200
    assert (r.json()["shared"], r.json()["title"]) == (True, "Better title")


def test_a_draft_dataset_can_be_linked_only_by_those_who_see_it(
    client_as, steward_a, clinician_a, clinician_b, hospital_a, curator
):
    catalogue_factories = pytest.importorskip("tests.catalogue.factories")
    dataset = catalogue_factories.make_draft(steward_a, hospital_a)
    form = {
        "category": "data_issue",
        "component": "catalogue",
        "persona": "clinician",
        "title": "Wrong age range",
        "description": "The cohort includes children.",
        "link_type": "catalogue.dataset",
        "link_id": dataset.identifier,
    }
    response = client_as(clinician_b).post("/feedback/new/", form)
    assert response.status_code == 400
    assert "No dataset with this id that you may see." in response.content.decode()
    response = client_as(clinician_a).post("/feedback/new/", form)
    assert response.status_code == 302
    item = FeedbackItem.objects.get()
    assert item.linked_object == dataset
    page = client_as(clinician_a).get(f"/feedback/{item.pk}/").content.decode()
    assert f'href="/catalogue/datasets/{dataset.identifier}/"' in page


def test_node_agent_versions_come_from_the_federation_nodes(
    client_as, triager, clinician_a, hospital_a
):
    federation_models = pytest.importorskip("federation.models")
    federation_models.Node.objects.create(organisation=hospital_a, name="n1", agent_version="0.1.2")
    assert versions.node_agent_versions(hospital_a) == ["0.1.2"]
    item = services.feedback_submit(
        user=clinician_a, title="t", description="d", category="feature", component="node_agent"
    )
    assert item.component_version == "0.1.2"
    federation_models.Node.objects.create(organisation=hospital_a, name="n2", agent_version="0.1.3")
    assert versions.node_agent_versions_by_site([hospital_a.pk]) == {
        hospital_a.pk: ["0.1.3", "0.1.2"]
    }
    html = client_as(triager).get("/feedback/dashboard/").content.decode()
    assert "0.1.3, 0.1.2" in html
    assert "0.1.3, 0.1.2" in client_as(clinician_a).get("/feedback/").content.decode()
