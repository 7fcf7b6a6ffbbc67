"""Probe finding: PDFs fetched URLs and read local files (SSRF).

Markdown or raw HTML in an agreement's title or purposes reached WeasyPrint as ``<img src=...>``:
sending the agreement for signature made the server request the URL, or embedded a local file
(another user's private attachment) in the PDF. Every attack here runs against a local HTTP
listener that must receive nothing, and a private "attachment" under MEDIA_ROOT that must not
end up in the PDF.
"""

from __future__ import annotations

import re
import zlib
from datetime import date
from io import BytesIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from PIL import Image

from accounts import pdf as safe_pdf
from accounts.models import Role
from cds import pdf as cds_pdf
from federation import exports
from federation.models import Analysis
from feedback.markdown import render as feedback_markdown
from governance import documents, services
from governance.default_templates import ensure_default_templates
from governance.models import AgreementKind, AgreementTemplate, PartyRole
from tests.factories import make_member
from tests.security.listener import Listener, serving

pytestmark = pytest.mark.django_db
User = get_user_model()


# --- the listener and the PDF inspection ---------------------------------------------------------
@pytest.fixture
def listener():
    # It serves a real PNG: a fetch that happened would put an image into the PDF.
    with serving(_png(), "image/png") as server:
        yield server


def _png() -> bytes:
    out = BytesIO()
    Image.new("RGB", (40, 40), (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def private_attachment() -> Path:
    """Another user's upload: a picture under MEDIA_ROOT, where request attachments live."""
    path = Path(settings.MEDIA_ROOT) / "governance" / "attachments" / "2026" / "request-4.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_png())
    return path


def _pdf_objects(pdf: bytes) -> bytes:
    """The PDF with every Flate stream inflated, so object dictionaries inside object streams and
    embedded files can be searched."""
    parts = [pdf]
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.DOTALL):
        try:
            parts.append(zlib.decompress(match[1]))
        except zlib.error:
            continue
    return b"\n".join(parts)


def _has_image(pdf: bytes) -> bool:
    return re.search(rb"/Subtype\s*/Image", _pdf_objects(pdf)) is not None


def _has_embedded_file(pdf: bytes) -> bool:
    return b"/EmbeddedFile" in _pdf_objects(pdf)


def _hostile_refs(listener: Listener, attachment: Path) -> str:
    return (
        f"![b]({listener.url}/x.png) "
        f'<img src="{listener.url}/y"> '
        f"![p](file:///etc/passwd) "
        f"![a]({attachment}) "
        f"![u]({attachment.as_uri()}) "
        f'<img src="{attachment.as_uri()}">'
    )


def test_the_inspection_helper_sees_an_image_when_one_is_embedded(private_attachment):
    """Control: with WeasyPrint's default fetcher the same local file does end up in the PDF, so
    ``_has_image`` finding nothing below means something."""
    import weasyprint

    html = f'<p>x</p><img src="{private_attachment.as_uri()}">'
    assert _has_image(weasyprint.HTML(string=html).write_pdf())
    assert not _has_image(weasyprint.HTML(string="<p>x</p>").write_pdf())


# --- agreements ------------------------------------------------------------------------------------
@pytest.fixture
def hostile_agreement(
    listener, private_attachment, platform_admin, org_admin_a, hospital_a, institute
):
    make_member(hospital_a, Role.SIGNATORY, username="signatory_a")
    make_member(institute, Role.SIGNATORY, username="signatory_i")
    ensure_default_templates(actor=platform_admin)
    template = AgreementTemplate.objects.get(kind=AgreementKind.DATA_ACCESS_USE)
    refs = _hostile_refs(listener, private_attachment)
    return services.agreement_create(
        actor=org_admin_a,
        template=template,
        title=f'Access ![t]({listener.url}/t.png) <img src="{listener.url}/t2">',
        purposes=f"Outcomes research {refs}",
        effective_date=date(2026, 1, 1),
        expiry_date=date(2028, 12, 31),
        parties=[(hospital_a, PartyRole.CONTROLLER), (institute, PartyRole.DATA_USER)],
    )


def test_sending_an_agreement_with_hostile_images_fetches_and_embeds_nothing(
    listener, hostile_agreement, org_admin_a
):
    agreement = services.agreement_send(actor=org_admin_a, agreement=hostile_agreement)
    with agreement.document.open("rb") as f:
        pdf = f.read()
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000
    assert listener.connections == 0, listener.paths
    assert not _has_image(pdf)
    assert not _has_embedded_file(pdf)


def test_the_agreement_html_keeps_no_image_of_user_markdown(listener, hostile_agreement):
    html = documents.markdown_to_html(
        documents.render_markdown(hostile_agreement) + "\n\n<IMG SRC=x><picture><source srcset=y>"
    )
    assert "<img" not in html.lower() and "<source" not in html.lower()
    assert "Outcomes research" in html


def test_the_signed_agreement_fetches_nothing_either(listener, hostile_agreement, org_admin_a):
    agreement = services.agreement_send(actor=org_admin_a, agreement=hostile_agreement)
    for party in agreement.parties.select_related("organisation"):
        signer = User.objects.get(
            memberships__organisation=party.organisation,
            memberships__roles__name=Role.SIGNATORY,
        )
        services.agreement_sign(
            actor=signer,
            agreement=agreement,
            party=party,
            full_name=signer.get_full_name(),
            confirm=True,
            ip_address="192.0.2.10",
        )
    agreement.refresh_from_db()
    with agreement.signed_document.open("rb") as f:
        pdf = f.read()
    assert pdf.startswith(b"%PDF")
    assert listener.connections == 0, listener.paths
    assert not _has_image(pdf)


# --- every renderer goes through the asset-only fetcher ---------------------------------------------
def _raw_hostile_html(listener: Listener, attachment: Path) -> str:
    """What a template bug (a missing escape) would let through: the fetcher is the last line."""
    return f"""<html><head>
<link rel="stylesheet" href="{listener.url}/s.css">
<style>@import url("{listener.url}/i.css");
@font-face {{ font-family: X; src: url("{listener.url}/f.woff"); }}
body {{ background: url("{listener.url}/bg.png"); font-family: X; }}</style>
<link rel="attachment" href="{attachment.as_uri()}">
<link rel="attachment" href="file:///etc/passwd">
</head><body><h1>Report</h1>
<img src="{listener.url}/a.png"><img src="{attachment.as_uri()}"><img src="{attachment}">
<img src="file:///etc/passwd"><object data="{listener.url}/o"></object>
<embed src="{listener.url}/e"><iframe src="{listener.url}/if"></iframe>
<svg width="10" height="10"><image href="{listener.url}/svg.png" width="10" height="10"/></svg>
<a rel="attachment" href="{listener.url}/att">x</a>
</body></html>"""


def test_render_pdf_refuses_network_and_local_files(listener, private_attachment):
    pdf = safe_pdf.render_pdf(_raw_hostile_html(listener, private_attachment))
    assert pdf.startswith(b"%PDF")
    assert listener.connections == 0, listener.paths
    assert not _has_image(pdf)
    assert not _has_embedded_file(pdf)


def test_the_analysis_report_pdf_fetches_nothing(
    listener, private_attachment, researcher, monkeypatch
):
    analysis = Analysis.objects.create(
        researcher=researcher,
        title=f'<img src="{listener.url}/title.png">',
        type="cohort_count",
        params={"description": f"![d]({listener.url}/desc.png)"},
        min_nodes=1,
        result={"total": 12, "total_lower_bound": 10, "rows": []},
    )
    pdf = exports.to_pdf(analysis, [])
    assert pdf.startswith(b"%PDF") and listener.connections == 0
    # Even if the template stopped escaping, the renderer would fetch nothing.
    monkeypatch.setattr(
        exports, "render_to_string", lambda *a, **k: _raw_hostile_html(listener, private_attachment)
    )
    pdf = exports.to_pdf(analysis, [])
    assert pdf.startswith(b"%PDF")
    assert listener.connections == 0, listener.paths
    assert not _has_image(pdf) and not _has_embedded_file(pdf)


def test_the_cds_pdfs_fetch_nothing(listener, private_attachment):
    pdf = cds_pdf.render_pdf(_raw_hostile_html(listener, private_attachment))
    assert pdf.startswith(b"%PDF")
    assert listener.connections == 0, listener.paths
    assert not _has_image(pdf) and not _has_embedded_file(pdf)


def test_feedback_markdown_renders_without_images(listener):
    html = str(feedback_markdown(f'![b]({listener.url}/x.png) <img src="{listener.url}/y"> text'))
    assert "<img" not in html and listener.url not in html
    assert "text" in html


def test_only_accounts_pdf_calls_weasyprint():
    """One choke point: any new renderer must go through accounts.pdf.render_pdf."""
    root = Path(settings.BASE_DIR)
    offenders = [
        str(path.relative_to(root))
        for app in ("accounts", "catalogue", "cds", "feedback", "governance", "federation")
        for path in (root / app).rglob("*.py")
        if re.search(r"^\s*(import|from)\s+weasyprint", path.read_text(encoding="utf-8"), re.M)
        and path != root / "accounts" / "pdf.py"
    ]
    assert offenders == []


# --- the legitimate assets still render --------------------------------------------------------------
def test_the_portal_static_assets_still_render():
    fetcher = safe_pdf.AssetOnlyFetcher()
    icon = Path(settings.BASE_DIR) / "static" / "img" / "favicon.svg"
    response = fetcher.fetch(icon.as_uri())
    assert response.read() == icon.read_bytes()
    assert response.content_type == "image/svg+xml"
    # A relative reference resolves against the static directory and is drawn into the PDF.
    with_icon = safe_pdf.render_pdf('<p>x</p><img src="img/favicon.svg" width="64">')
    without = safe_pdf.render_pdf("<p>x</p>")
    assert len(with_icon) > len(without)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x.png",
        "https://example.org/x.png",
        "ftp://127.0.0.1/x",
        "data:image/png;base64,iVBORw0KGgo=",
        "file:///etc/passwd",
        "file://otherhost/static/img/favicon.svg",
        "gopher://127.0.0.1:70/x",
    ],
)
def test_the_fetcher_refuses_everything_but_static_files(url):
    with pytest.raises(ValueError):
        safe_pdf.AssetOnlyFetcher().fetch(url)


def test_the_fetcher_refuses_media_and_escapes_from_static(private_attachment):
    fetcher = safe_pdf.AssetOnlyFetcher()
    static = Path(settings.BASE_DIR) / "static"
    for url in (
        private_attachment.as_uri(),
        static.as_uri() + "/../pyproject.toml",
        static.as_uri() + "/%2e%2e/pyproject.toml",
    ):
        with pytest.raises(ValueError):
            fetcher.fetch(url)


def test_a_symlink_out_of_a_static_directory_is_refused(private_attachment, tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    (static / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (static / "logo-link.png").symlink_to(private_attachment)
    fetcher = safe_pdf.AssetOnlyFetcher(roots=[static])
    assert fetcher.fetch((static / "logo.svg").as_uri()).read().startswith(b"<svg")
    with pytest.raises(ValueError):
        fetcher.fetch((static / "logo-link.png").as_uri())
