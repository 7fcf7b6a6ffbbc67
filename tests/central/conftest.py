"""Fixtures of the centralised route: a dataset of hospital A offered as a central copy, extracts
(the demo OMOP data of optima_node.synth as CSVs, broken variants) and an API client that uploads."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from optima_node.synth import csv_zip, generate
from tests.catalogue.factories import DatasetFactory

ROOT = Path(__file__).resolve().parents[2]
# CI checks the repository out with ../shared beside it.
SYNTHEA_ZIP = ROOT.parent / "shared" / "omop" / "synthea27nj" / "Synthea27Nj_5.4.zip"
CHUNK = 16 * 1024


@pytest.fixture(autouse=True)
def _central_dir(settings, tmp_path):
    settings.CENTRAL_DIR = tmp_path / "central"
    settings.CENTRAL_UPLOAD_KEY = ""
    settings.CENTRAL_OMOP_DATABASE_URL = ""
    settings.CENTRAL_CHUNK_MAX_BYTES = CHUNK
    return settings.CENTRAL_DIR


@pytest.fixture
def central_dataset(hospital_a):
    return DatasetFactory(
        publisher=hospital_a,
        access_modes=["federated_analytics", "central_copy"],
        update_interval_days=90,
    )


_DEMO: dict[str, bytes] = {}


@pytest.fixture
def demo_zip() -> bytes:
    if "demo" not in _DEMO:
        _DEMO["demo"] = csv_zip(generate(300, 7, ["prostate", "breast", "lung"]))
    return _DEMO["demo"]


def rewrite(extract: bytes, change) -> bytes:
    """A copy of ``extract`` with ``change(name, text) -> text | None`` applied (None drops it)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(extract)) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            text = change(name, src.read(name).decode())
            if text is not None:
                dst.writestr(name, text)
    return out.getvalue()


def csv_rows(extract: bytes, member: str) -> int:
    with zipfile.ZipFile(io.BytesIO(extract)) as archive:
        lines = archive.read(member).decode().splitlines()
    return len([line for line in lines[1:] if line.strip()])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    """``send(client, data, dataset=…)``: upload through the API, running what the service
    enqueued after commit (the check and load task, eagerly)."""

    def _send(client, data: bytes, *, dataset, filename="extract.zip", complete=True):
        with django_capture_on_commit_callbacks(execute=True):
            return _upload(client, data, dataset=dataset, filename=filename, complete=complete)

    return _send


def _upload(client, data: bytes, *, dataset, filename: str, complete: bool):
    """Create an upload, send ``data`` chunk by chunk, complete it; returns the last response."""
    created = client.post(
        "/api/central/uploads/",
        {"dataset": dataset.pk, "filename": filename, "size": len(data), "sha256": sha(data)},
        format="json",
    )
    assert created.status_code == 201, created.content
    upload_id = created.json()["id"]
    for offset in range(0, len(data), CHUNK):
        response = put_chunk(client, upload_id, data[offset : offset + CHUNK], offset)
        assert response.status_code == 200, response.content
    if not complete:
        return created
    return client.post(f"/api/central/uploads/{upload_id}/complete/")


def put_chunk(client, upload_id, chunk: bytes, offset: int, checksum: str | None = None):
    return client.generic(
        "PUT",
        f"/api/central/uploads/{upload_id}/chunk/",
        chunk,
        content_type="application/octet-stream",
        HTTP_UPLOAD_OFFSET=str(offset),
        HTTP_CHUNK_SHA256=checksum or sha(chunk),
    )


def upload_actions(upload) -> list[str]:
    """The audit trail of one upload, in order."""
    from accounts.models import AuditEvent

    return list(
        AuditEvent.objects.filter(object_type="central.upload", object_id=str(upload.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )
