"""The steward's pages: the central datasets, one dataset's versions and uploads with the upload
form, one upload's progress (an htmx fragment while it runs) and its check report as CSV and JSON."""

from __future__ import annotations

import csv
import io

import pytest

from central.models import Upload

from .conftest import rewrite

pytestmark = pytest.mark.django_db


@pytest.fixture
def rejected(send, api_as, steward_a, central_dataset, demo_zip):
    broken = rewrite(demo_zip, lambda n, t: None if n == "OBSERVATION_PERIOD.csv" else t)
    send(api_as(steward_a), broken, dataset=central_dataset, filename="broken.zip")
    return Upload.objects.get()


def test_the_steward_sees_the_dataset_and_its_upload_form(client_as, steward_a, central_dataset):
    client = client_as(steward_a)
    index = client.get("/central/")
    assert index.status_code == 200
    assert central_dataset.title in index.content.decode()
    page = client.get(f"/central/datasets/{central_dataset.pk}/").content.decode()
    assert 'id="central-upload-form"' in page
    assert "central/upload.js" in page


def test_the_upload_page_shows_the_report(client_as, steward_a, rejected):
    page = client_as(steward_a).get(f"/central/uploads/{rejected.pk}/").content.decode()
    assert "Failed: nothing was loaded." in page
    assert "cdm_table_missing" in page and "observation_period" in page


def test_the_report_downloads_as_csv_and_json(client_as, steward_a, rejected):
    client = client_as(steward_a)
    text = client.get(f"/central/uploads/{rejected.pk}/report.csv").content.decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["severity"], r["check"], r["table"]) for r in rows if r["severity"] == "error"] == [
        ("error", "cdm_table_missing", "observation_period")
    ]
    assert client.get(f"/central/uploads/{rejected.pk}/report.json").json() == rejected.report


def test_outsiders_get_404(client_as, steward_b, central_dataset, rejected):
    client = client_as(steward_b)
    for url in (
        f"/central/datasets/{central_dataset.pk}/",
        f"/central/uploads/{rejected.pk}/",
        f"/central/uploads/{rejected.pk}/report.csv",
        f"/central/uploads/{rejected.pk}/report.json",
    ):
        assert client.get(url).status_code == 404, url


def test_the_dashboard_lists_the_central_copies(client_as, steward_a, outsider, central_dataset):
    page = client_as(steward_a).get("/dashboard/").content.decode()
    assert "Central copies" in page and "no version loaded yet" in page
    assert "Central copies" not in client_as(outsider).get("/dashboard/").content.decode()
