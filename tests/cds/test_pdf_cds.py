"""The tumour-board and patient PDFs render (WeasyPrint) from the stored evaluation."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import translation

from accounts.models import Role
from cds import pdf, services
from cds.models import Evaluation, PathwayVersion
from tests.factories import make_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def evaluation(db, hospital_a):
    services.pathway_sync()
    clinician = make_member(hospital_a, Role.CLINICIAN, username="clinician_a")
    return services.evaluation_create(
        user=clinician,
        pathway_version=PathwayVersion.objects.get(pathway__slug="prostate-eau", status="active"),
        inputs={"psa": 12, "isup_grade": 1, "ct": "cT1c", "cn": "cN0", "cm": "cM0"},
        source="ui",
    )


def _text(content: bytes, tmp_path) -> str | None:
    if not shutil.which("pdftotext"):
        return None
    path = tmp_path / "out.pdf"
    path.write_bytes(content)
    return subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_the_tumour_board_pdf_downloads(client, evaluation: Evaluation, tmp_path):
    client.force_login(evaluation.user)
    response = client.get(reverse("cds:evaluation_tumour_board_pdf", args=[evaluation.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "attachment" in response["Content-Disposition"]
    assert response.content.startswith(b"%PDF")
    text = _text(response.content, tmp_path)
    if text is not None:
        assert "Intermediate risk" in text


def test_the_tumour_board_html_has_the_result_trace_and_citation(evaluation: Evaluation):
    html = pdf.tumour_board_html(evaluation)
    assert "Intermediate risk" in html
    assert "PSA at diagnosis" in html and "12" in html
    for step in evaluation.output["trace"]:
        if step["reached"]:
            assert step["citation"].split('"')[0] in html
    assert evaluation.pathway_version.source["url"] in html
    assert "version 1.1.0" in html


def test_the_patient_pdf_is_plain_language_from_the_pathway_file(client, evaluation, tmp_path):
    html = pdf.patient_html(evaluation)
    outcome = evaluation.pathway_version.document["outcomes"]["intermediate"]
    assert " ".join(outcome["patient_explanation"].split()) in " ".join(html.split())
    for option in outcome["options"]:
        assert option["patient_explanation"] in html
    body = html.split("Based on:")[0]
    assert "ISUP" not in body and "cT1c" not in body  # no staging jargon for the patient
    client.force_login(evaluation.user)
    response = client.get(reverse("cds:evaluation_patient_pdf", args=[evaluation.pk]))
    assert response.status_code == 200 and response.content.startswith(b"%PDF")


def test_other_people_cannot_download_the_pdfs(client, evaluation, outsider):
    client.force_login(outsider)
    for name in ("cds:evaluation_tumour_board_pdf", "cds:evaluation_patient_pdf"):
        assert client.get(reverse(name, args=[evaluation.pk])).status_code == 404


def _rows_per_page(html: str) -> dict[int, set[int]]:
    """For each body row of every table, the pages it is laid out on (WeasyPrint's boxes)."""
    from weasyprint import CSS, HTML

    document = HTML(string=html).render(stylesheets=[CSS(filename=str(pdf.PRINT_CSS))])
    pages: dict[int, set[int]] = {}
    for number, page in enumerate(document.pages):
        for box in page._page_box.descendants():
            if type(box).__name__ == "TableRowGroupBox" and not box.is_header:
                for row in box.children:
                    pages.setdefault(id(row.element), set()).add(number)
    return pages


def test_the_tumour_board_pdf_never_splits_a_table_row_across_pages(evaluation: Evaluation):
    step = evaluation.output["trace"][0]
    evaluation.output["trace"] = [
        {**step, "reached": True, "citation": "A long guideline citation. " * (3 + i % 9)}
        for i in range(60)
    ]
    pages = _rows_per_page(pdf.tumour_board_html(evaluation))
    assert len(pages) >= 60 and len(set().union(*pages.values())) > 2  # a table over pages
    split = [rows for rows in pages.values() if len(rows) > 1]
    assert split == []


LOCALE = Path(pdf.__file__).resolve().parent / "locale"


def _po_entries(language: str) -> dict[str, str]:
    """msgid -> msgstr of a .po file written one line per string (as cds/locale keeps them)."""
    text = (LOCALE / language / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
    pairs = re.findall(r'^msgid "(.+)"\nmsgstr "(.*)"$', text, flags=re.MULTILINE)
    return {ast.literal_eval(f'"{k}"'): ast.literal_eval(f'"{v}"') for k, v in pairs}


@pytest.mark.parametrize("language", ["fr", "de", "nl", "sv"])
def test_the_patient_sheet_prints_its_fixed_texts_in_the_sites_languages(evaluation, language):
    entries = _po_entries(language)
    assert len(entries) >= 13 and all(entries.values())
    # The committed .mo (what a clean clone runs with) holds every translation of the .po.
    with translation.override(language):
        for msgid, msgstr in entries.items():
            assert translation.gettext(msgid) == msgstr, msgid
    html = pdf.patient_html(evaluation, language=language)
    assert f'<html lang="{language}">' in html
    conditional = {  # shown only with missing data or without options
        "Some results are not known yet. When they are, the choices may change.",
        "Your doctor will explain the next steps.",
    }
    for msgid, msgstr in entries.items():
        english = msgid.split("%(")[0]
        assert english not in html, english  # no fixed English text left
        if msgid not in conditional:
            assert msgstr.split("%(")[0] in html, msgstr
    # The advice itself comes from the pathway file, in English, and the sheet says so.
    outcome = evaluation.pathway_version.document["outcomes"]["intermediate"]
    assert " ".join(outcome["patient_explanation"].split()) in " ".join(html.split())
    note = "The explanation of your results and your choices comes from the guideline pathway"
    assert next(v for k, v in entries.items() if k.startswith(note)) in html


def test_the_english_sheet_needs_no_language_note(evaluation):
    html = pdf.patient_html(evaluation, language="en")
    assert "About your test results and your choices" in html and "(English)" not in html
    with pytest.raises(ValueError):
        pdf.patient_html(evaluation, language="xx")


def test_the_patient_pdf_defaults_to_the_language_of_the_users_site(client, evaluation, hospital_b):
    client.force_login(evaluation.user)  # a clinician of hospital A (DE)
    url = reverse("cds:evaluation_patient_pdf", args=[evaluation.pk])
    page = client.get(evaluation.get_absolute_url()).content.decode()
    assert '<option value="de" selected>Deutsch</option>' in page
    assert '<option value="sv">Svenska</option>' in page
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('-de.pdf"')
    response = client.get(url, {"lang": "fr"})
    assert response.status_code == 200 and response["Content-Disposition"].endswith('-fr.pdf"')
    response = client.get(url, {"lang": "xx"})
    assert response.status_code == 400
    assert "Choose one of the languages listed." in response.content.decode()
