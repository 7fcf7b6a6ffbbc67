"""Uploads (access-request attachments, feedback attachments): size limits, type by content, clean
names, stored under MEDIA_ROOT with generated names, downloaded only as attachments through
permission-checked views; MEDIA_URL is not routed."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from governance import services as gov
from tests.feedback.factories import PDF, PNG, FeedbackItemFactory
from tests.governance.factories import complete_draft, published_dataset

pytestmark = pytest.mark.django_db

HTML = b"<!doctype html><script>alert(document.cookie)</script>"


def _file(name, data, content_type="application/octet-stream"):
    return SimpleUploadedFile(name, data, content_type=content_type)


# --- access-request attachments ------------------------------------------------------------------
@pytest.fixture
def draft(researcher, hospital_a):
    return complete_draft(researcher, [published_dataset(hospital_a)])


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("protocol.pdf", HTML, "does not look like"),  # HTML renamed to .pdf
        ("protocol.png", PDF, "does not look like"),  # a PDF renamed to .png
        ("page.html", HTML, "Allowed file types"),
        ("script.svg", b"<svg onload=alert(1)>", "Allowed file types"),
        ("empty.pdf", b"", "empty"),
    ],
)
def test_request_attachments_are_checked_by_content(draft, researcher, name, data, message):
    with pytest.raises(ValidationError) as exc:
        gov.attachment_add(
            actor=researcher, access_request=draft, kind="other", upload=_file(name, data)
        )
    assert message in str(exc.value)


def test_request_attachments_have_a_size_limit(draft, researcher, settings):
    settings.UPLOAD_MAX_BYTES = 1024
    with pytest.raises(ValidationError, match="larger than"):
        gov.attachment_add(
            actor=researcher,
            access_request=draft,
            kind="other",
            upload=_file("big.pdf", PDF + b"0" * 2048),
        )


def test_request_attachments_are_stored_under_a_generated_name_and_downloaded_as_files(
    draft, researcher, outsider, client, settings
):
    attachment = gov.attachment_add(
        actor=researcher,
        access_request=draft,
        kind="other",
        upload=_file("../../etc/passwd.pdf", PDF, "text/html"),
    )
    assert attachment.original_name == "passwd.pdf"
    assert attachment.content_type == "application/pdf"  # not the declared text/html
    stored = attachment.file.path
    assert stored.startswith(str(settings.MEDIA_ROOT)) and ".." not in attachment.file.name
    assert "passwd" not in attachment.file.name

    url = f"/governance/attachments/{attachment.pk}/"
    assert client.get(url).status_code == 302  # log in first
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    client.force_login(researcher)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == PDF


# --- feedback attachments ------------------------------------------------------------------------
@pytest.fixture
def clinician_a(hospital_a):
    from accounts.models import Role
    from tests.factories import make_member

    return make_member(hospital_a, Role.CLINICIAN, username="clinician_a")


@pytest.fixture
def item(clinician_a, hospital_a):
    return FeedbackItemFactory(site=hospital_a, author=clinician_a, title="Upload target")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("screenshot.png", HTML),  # HTML claiming to be a PNG
        ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
        ("page.txt", HTML),  # markup is refused even as text
        ("binary.png", b"\x00\x01\x02\x03" * 10),
    ],
)
def test_feedback_attachments_refuse_what_the_content_does_not_prove(
    client, clinician_a, item, name, data
):
    client.force_login(clinician_a)
    response = client.post(f"/feedback/{item.pk}/attachments/", {"file": _file(name, data)})
    assert response.status_code == 400
    assert not item.attachments.exists()


def test_feedback_attachments_have_a_size_limit(client, clinician_a, item, settings):
    settings.FEEDBACK_ATTACHMENT_MAX_BYTES = 100
    client.force_login(clinician_a)
    response = client.post(
        f"/feedback/{item.pk}/attachments/", {"file": _file("s.png", PNG + b"0" * 200)}
    )
    assert response.status_code == 400
    assert not item.attachments.exists()


def test_feedback_attachment_names_are_cleaned_and_downloads_are_sandboxed(
    client, clinician_a, item, outsider, settings
):
    client.force_login(clinician_a)
    name = '..\\..\\"evil"\x07name.exe.png'
    response = client.post(f"/feedback/{item.pk}/attachments/", {"file": _file(name, PNG)})
    assert response.status_code == 302
    attachment = item.attachments.get()
    assert attachment.original_name.endswith(".png")
    assert all(c not in attachment.original_name for c in '\\/"\x07')
    assert attachment.file.path.startswith(str(settings.MEDIA_ROOT))

    url = attachment.get_absolute_url()
    download = client.get(url)
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in download["Content-Security-Policy"]
    assert download["Cache-Control"] == "private, no-store"
    client.force_login(outsider)
    assert client.get(url).status_code == 404


def test_media_files_are_not_served_from_any_public_path(client, clinician_a, item, settings):
    client.force_login(clinician_a)
    client.post(f"/feedback/{item.pk}/attachments/", {"file": _file("s.png", PNG)})
    stored = item.attachments.get().file.name
    for prefix in (settings.MEDIA_URL, "/media/", "/static/"):
        assert client.get(prefix + stored).status_code == 404, prefix


def test_request_attachment_names_lose_control_and_direction_override_characters(draft, researcher):
    attachment = gov.attachment_add(
        actor=researcher,
        access_request=draft,
        kind="other",
        upload=_file("report\x07\u202efdp.exe.pdf", PDF),
    )
    assert attachment.original_name == "reportfdp.exe.pdf"
