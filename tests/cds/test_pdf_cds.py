"""The tumour-board and patient PDFs render (WeasyPrint) from the stored evaluation."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from django.urls import reverse

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
