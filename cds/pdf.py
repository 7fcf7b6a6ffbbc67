"""PDFs of a stored evaluation (WeasyPrint): one for the tumour board, one in plain language for the
patient. Both are rendered from the stored output, so they show the advice exactly as given."""

from __future__ import annotations

from pathlib import Path

from django.template.loader import render_to_string
from django.utils import timezone, translation

from .models import Evaluation

PRINT_CSS = Path(__file__).resolve().parent / "static" / "cds" / "print.css"

# The patient sheet's fixed texts exist in the languages of the network's sites (cds/locale); the
# advice texts come from the pathway files, written in English, and are printed as written.
PATIENT_LANGUAGES: tuple[tuple[str, str], ...] = (
    ("en", "English"),
    ("fr", "Français"),
    ("de", "Deutsch"),
    ("nl", "Nederlands"),
    ("sv", "Svenska"),
)
PATHWAY_LANGUAGE = "en"
_COUNTRY_LANGUAGE = {"FR": "fr", "DE": "de", "AT": "de", "NL": "nl", "SE": "sv"}


def patient_language_default(user) -> str:
    """The language of the user's site (their first organisation's country), else English."""
    memberships = getattr(user, "memberships", None)
    first = (
        memberships.select_related("organisation").order_by("pk").first() if memberships else None
    )
    country = str(first.organisation.country) if first else ""
    return _COUNTRY_LANGUAGE.get(country, "en")


def _context(evaluation: Evaluation, request=None) -> dict:
    url = evaluation.get_absolute_url()
    return {
        "evaluation": evaluation,
        "version": evaluation.pathway_version,
        "result": evaluation.output,
        "portal_url": request.build_absolute_uri(url) if request is not None else url,
        "printed_at": timezone.now(),
    }


def tumour_board_html(evaluation: Evaluation, request=None) -> str:
    return render_to_string("cds/pdf/tumour_board.html", _context(evaluation, request))


def patient_html(evaluation: Evaluation, request=None, language: str = "en") -> str:
    if language not in dict(PATIENT_LANGUAGES):
        raise ValueError(f"no patient sheet in {language!r}")
    context = _context(evaluation, request) | {
        "language": language,
        "pathway_text_untranslated": language != PATHWAY_LANGUAGE,
    }
    with translation.override(language):
        return render_to_string("cds/pdf/patient.html", context)


def render_pdf(html: str) -> bytes:
    # Imported here: WeasyPrint loads Pango at import time, which only PDF requests need.
    from accounts.pdf import render_pdf as render_safely

    return render_safely(html, stylesheets=[PRINT_CSS])


def tumour_board_pdf(evaluation: Evaluation, request=None) -> bytes:
    return render_pdf(tumour_board_html(evaluation, request))


def patient_pdf(evaluation: Evaluation, request=None, language: str = "en") -> bytes:
    return render_pdf(patient_html(evaluation, request, language))
