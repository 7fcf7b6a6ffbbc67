"""PDFs of a stored evaluation (WeasyPrint): one for the tumour board, one in plain language for the
patient. Both are rendered from the stored output, so they show the advice exactly as given."""

from __future__ import annotations

from pathlib import Path

from django.template.loader import render_to_string
from django.utils import timezone

from .models import Evaluation

PRINT_CSS = Path(__file__).resolve().parent / "static" / "cds" / "print.css"


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


def patient_html(evaluation: Evaluation, request=None) -> str:
    return render_to_string("cds/pdf/patient.html", _context(evaluation, request))


def render_pdf(html: str) -> bytes:
    # Imported here: WeasyPrint loads Pango at import time, which only PDF requests need.
    from accounts.pdf import render_pdf as render_safely

    return render_safely(html, stylesheets=[PRINT_CSS])


def tumour_board_pdf(evaluation: Evaluation, request=None) -> bytes:
    return render_pdf(tumour_board_html(evaluation, request))


def patient_pdf(evaluation: Evaluation, request=None) -> bytes:
    return render_pdf(patient_html(evaluation, request))
