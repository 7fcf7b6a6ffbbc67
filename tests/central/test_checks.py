"""Broken extracts are rejected before anything is loaded, with a report that says why; the
Synthea-based sample of OHDSI (an outside ETL) passes with warnings only and loads."""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile

import pytest

from central.extract import open_extract
from central.models import DatasetVersion, Upload, UploadStatus
from central.quality import run_checks

from .conftest import SYNTHEA_ZIP, csv_rows, rewrite

pytestmark = pytest.mark.django_db


def _report(extract: bytes) -> dict:
    return run_checks(open_extract(io.BytesIO(extract)))


def _errors(report: dict) -> set[tuple[str, str, str]]:
    return {
        (c["check"], c["table"], c["field"]) for c in report["checks"] if c["severity"] == "error"
    }


def test_it_reports_a_missing_required_table(demo_zip):
    broken = rewrite(
        demo_zip, lambda name, text: None if name == "OBSERVATION_PERIOD.csv" else text
    )
    report = _report(broken)
    assert report["passed"] is False
    assert _errors(report) == {("cdm_table_missing", "observation_period", "")}


def test_it_reports_a_wrong_column(demo_zip):
    def rename(name, text):
        return text.replace("year_of_birth", "birth_year", 1) if name == "PERSON.csv" else text

    report = _report(rewrite(demo_zip, rename))
    assert _errors(report) == {("cdm_field_missing", "person", "year_of_birth")}
    unknown = [c for c in report["checks"] if c["check"] == "cdm_field_unknown"]
    assert [(c["table"], c["field"], c["severity"]) for c in unknown] == [
        ("person", "birth_year", "warning")
    ]


def test_it_reports_bad_dates_with_counts(demo_zip):
    def corrupt(name, text):
        if name != "CONDITION_OCCURRENCE.csv":
            return text
        lines = text.splitlines()
        header = lines[0].split(",")
        start = header.index("condition_start_date")
        for i in (1, 2, 3):
            cells = lines[i].split(",")
            cells[start] = "2020-13-45"
            lines[i] = ",".join(cells)
        # And one event long before the person's birth.
        cells = lines[4].split(",")
        cells[start] = "1800-01-01"
        lines[4] = ",".join(cells)
        return "\n".join(lines) + "\n"

    report = _report(rewrite(demo_zip, corrupt))
    by_check = {(c["check"], c["field"]): c for c in report["checks"] if c["severity"] == "error"}
    assert set(by_check) == {
        ("cdm_datatype", "condition_start_date"),
        ("plausible_after_birth", "condition_start_date"),
    }
    datatype = by_check[("cdm_datatype", "condition_start_date")]
    assert datatype["failed"] == 3
    assert datatype["rows"] == csv_rows(demo_zip, "CONDITION_OCCURRENCE.csv")
    assert datatype["examples"][0] == "line 2: 2020-13-45"
    assert by_check[("plausible_after_birth", "condition_start_date")]["failed"] == 1


def test_it_reports_persons_that_do_not_resolve(demo_zip):
    def orphan(name, text):
        if name != "DEATH.csv":
            return text
        lines = text.splitlines()
        lines.append("999999," + ",".join(lines[1].split(",")[1:]))
        return "\n".join(lines) + "\n"

    report = _report(rewrite(demo_zip, orphan))
    failed = {c["check"]: c for c in report["checks"] if c["severity"] == "error"}
    assert list(failed) == ["person_exists"]
    assert failed["person_exists"]["examples"] == [
        f"line {csv_rows(demo_zip, 'DEATH.csv') + 2}: 999999"
    ]


def test_it_reports_an_archive_that_holds_no_csv():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "no data")
    with pytest.raises(ValueError, match="no CSV files"):
        open_extract(io.BytesIO(out.getvalue()))


@pytest.mark.parametrize("broken", ["missing_table", "bad_dates"])
def test_a_broken_extract_loads_nothing(
    send, api_as, steward_a, central_dataset, demo_zip, broken, _central_dir
):
    if broken == "missing_table":
        data = rewrite(demo_zip, lambda n, t: None if n == "PERSON.csv" else t)
    else:
        data = rewrite(
            demo_zip,
            lambda n, t: t.replace(",2", ",2x", 1) if n == "OBSERVATION_PERIOD.csv" else t,
        )
    client = api_as(steward_a)
    response = send(client, data, dataset=central_dataset)

    assert response.status_code == 202
    upload = Upload.objects.get()
    assert upload.status == UploadStatus.REJECTED
    assert upload.report["passed"] is False and upload.report["errors"] >= 1
    assert not DatasetVersion.objects.exists()
    assert not (_central_dir / "omop").exists()
    assert not list((_central_dir / "uploads").iterdir())
    # The report is there for the steward, on the page and as files.
    page = client.get(f"/api/central/uploads/{upload.pk}/report/").json()
    assert page == upload.report


def test_the_synthea_sample_loads(send, api_as, steward_a, central_dataset):
    if not SYNTHEA_ZIP.exists():
        pytest.fail(f"the shared OMOP sample is missing: {SYNTHEA_ZIP} (CI has ../shared)")
    data = SYNTHEA_ZIP.read_bytes()
    response = send(api_as(steward_a), data, dataset=central_dataset, filename=SYNTHEA_ZIP.name)

    upload = Upload.objects.get(pk=response.json()["id"])
    assert upload.status == UploadStatus.LOADED, json.dumps(upload.report)[:2000]
    assert upload.report["errors"] == 0
    version = upload.version
    with sqlite3.connect(version.location) as db:
        (persons,) = db.execute("SELECT COUNT(*) FROM person").fetchone()
        (deaths,) = db.execute("SELECT COUNT(*) FROM death").fetchone()
    assert (persons, deaths) == (csv_rows(data, "PERSON.csv"), csv_rows(data, "DEATH.csv"))
    assert version.persons == 28  # PROVENANCE.md of the sample: 28 persons


def test_optima_node_synth_writes_an_extract_that_passes(tmp_path, capsys):
    from optima_node.cli import main

    path = tmp_path / "demo.zip"
    assert main(["synth", "--zip", str(path), "--persons", "60", "--seed", "4"]) == 0
    assert "60 persons" in capsys.readouterr().out
    report = _report(path.read_bytes())
    assert report["passed"] and report["tables"]["person"] == 60
