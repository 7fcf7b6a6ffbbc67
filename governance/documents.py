"""Agreement documents: placeholder filling, Markdown to sanitised HTML, and deterministic PDFs.

The same agreement content always gives the same bytes (and so the same SHA-256): the PDF carries
fixed metadata derived from the agreement, never the time of rendering.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import nh3
from django.core.files.base import ContentFile
from django.template.loader import render_to_string

from accounts import markdown as user_markdown

from . import datasets as ds
from .models import Agreement
from .models.agreements import PLACEHOLDER_RE

_CSS = Path(__file__).parent / "templates" / "governance" / "pdf" / "agreement.css"


def placeholder_values(agreement: Agreement) -> dict[str, str]:
    parties = "\n".join(
        f"- **{p.organisation.name}** ({p.organisation.country.code}), {p.get_role_display()}"
        for p in agreement.parties.select_related("organisation").order_by("pk")
    )
    datasets = list(covered_dataset_titles(agreement))
    return {
        "title": agreement.title,
        "reference": agreement.reference,
        "parties": parties or "_No parties named._",
        "datasets": "\n".join(f"- {t}" for t in datasets)
        if datasets
        else "All datasets made available by the data-providing parties through the OPTIMA network.",
        "effective_date": agreement.effective_date.isoformat(),
        "expiry_date": agreement.expiry_date.isoformat(),
        "purposes": agreement.purposes or "_As described in the access requests it covers._",
    }


def covered_dataset_titles(agreement: Agreement) -> list[str]:
    """The published titles (never a working copy's unpublished edits): every party reads these."""
    return sorted(ds.title(d) for d in agreement.datasets.select_related("current_version"))


def fill_placeholders(body: str, values: dict[str, str]) -> str:
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), body)


def markdown_to_html(text: str) -> str:
    """The agreement text as HTML: nh3's default tags and attributes, without images (the
    agreement's title and purposes are user text; see accounts.markdown)."""
    return user_markdown.to_html(text, tags=nh3.ALLOWED_TAGS, attributes=nh3.ALLOWED_ATTRIBUTES)


def render_markdown(agreement: Agreement) -> str:
    return fill_placeholders(agreement.template.body, placeholder_values(agreement))


def _pdf(html: str) -> bytes:
    from accounts.pdf import render_pdf  # imported lazily: loading WeasyPrint costs a second

    return render_pdf(html, stylesheets=[_CSS])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def render_agreement_pdf(agreement: Agreement, *, signatures=None) -> bytes:
    """The document sent for signature, or with ``signatures`` the final one with a signature page."""
    return _pdf(render_agreement_html(agreement, signatures=signatures))


def render_agreement_html(agreement: Agreement, *, signatures=None) -> str:
    return render_to_string(
        "governance/pdf/agreement.html",
        {
            "agreement": agreement,
            "body_html": markdown_to_html(agreement.rendered_markdown),
            "parties": list(agreement.parties.select_related("organisation").order_by("pk")),
            "signatures": signatures,
            "document_sha256": agreement.document_sha256,
        },
    )


def as_file(data: bytes, agreement: Agreement, suffix: str) -> ContentFile:
    return ContentFile(data, name=f"agreement-{agreement.pk}-v{agreement.version}-{suffix}.pdf")
