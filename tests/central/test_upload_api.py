"""The upload through the API: chunks with checksums and offsets, resume, the limits, 404 outside,
and the demo extract checked, loaded with progress into its own SQLite file, plain files gone."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from central.models import DatasetVersion, Upload, UploadStatus, VersionStatus

from .conftest import CHUNK, csv_rows, put_chunk, sha, upload_actions

pytestmark = pytest.mark.django_db


def test_it_uploads_checks_and_loads_the_demo_extract(
    send, api_as, steward_a, central_dataset, demo_zip, _central_dir
):
    response = send(api_as(steward_a), demo_zip, dataset=central_dataset)

    assert response.status_code == 202, response.content
    upload = Upload.objects.get(pk=response.json()["id"])
    assert upload.status == UploadStatus.LOADED
    assert upload.progress == 100
    assert upload.chunks == -(-len(demo_zip) // CHUNK)
    assert upload.report["passed"] is True
    version = DatasetVersion.objects.get(upload=upload)
    assert (version.number, version.status) == (1, VersionStatus.SERVED)
    # The loaded tables hold every data row of the CSV files, counted from the zip itself.
    with sqlite3.connect(version.location) as db:
        for table in ("person", "condition_occurrence", "death", "observation_period"):
            (loaded,) = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
            assert loaded == csv_rows(demo_zip, f"{table.upper()}.csv")
    assert version.persons == csv_rows(demo_zip, "PERSON.csv")
    # Nothing of the upload is left on disk: the key file, the version's database and the link
    # under which the central node reads the served version.
    left = sorted(p.relative_to(_central_dir).as_posix() for p in _central_dir.rglob("*.*"))
    assert left == [
        f"omop/ds_{central_dataset.pk}.sqlite3",
        f"omop/ds_{central_dataset.pk}_v1.sqlite3",
        "upload.key",
    ]
    link = _central_dir / "omop" / f"ds_{central_dataset.pk}.sqlite3"
    assert link.resolve() == Path(version.location).resolve()
    assert upload_actions(upload) == [
        "central.upload_started",
        "central.upload_completed",
        "central.check_passed",
        "central.load_started",
        "central.load_completed",
    ]


def test_it_keeps_chunks_encrypted_at_rest(send, api_as, steward_a, central_dataset, demo_zip):
    created = send(api_as(steward_a), demo_zip, dataset=central_dataset, complete=False)
    upload = Upload.objects.get(pk=created.json()["id"])
    stored = (Path(upload_dir(upload)) / f"{upload.token}.enc").read_bytes()

    assert upload.received_bytes == len(demo_zip)
    assert b"PK\x03\x04" not in stored and b"person_id" not in stored
    assert demo_zip[:CHUNK] not in stored


def upload_dir(upload: Upload) -> Path:
    from central import vault

    return vault.path_for(upload.token).parent


def test_it_resumes_from_the_offset_the_server_holds(
    api_as, steward_a, central_dataset, demo_zip, django_capture_on_commit_callbacks
):
    client = api_as(steward_a)
    # One chunk in, then a client that lost track sends it again.
    fresh = client.post(
        "/api/central/uploads/",
        {
            "dataset": central_dataset.pk,
            "filename": "x.zip",
            "size": len(demo_zip),
            "sha256": sha(demo_zip),
        },
        format="json",
    ).json()
    assert put_chunk(client, fresh["id"], demo_zip[:CHUNK], 0).status_code == 200
    wrong = put_chunk(client, fresh["id"], demo_zip[:CHUNK], 0)
    assert wrong.status_code == 400
    assert "Expected offset 16384" in str(wrong.json()["error"]["fields"]["offset"])
    status = client.get(f"/api/central/uploads/{fresh['id']}/").json()
    offset = status["received_bytes"]
    while offset < len(demo_zip):
        response = put_chunk(client, fresh["id"], demo_zip[offset : offset + CHUNK], offset)
        offset = response.json()["received_bytes"]
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/central/uploads/{fresh['id']}/complete/").status_code == 202
    assert Upload.objects.get(pk=fresh["id"]).status == UploadStatus.LOADED


def test_it_refuses_a_chunk_with_a_bad_checksum(api_as, steward_a, central_dataset, demo_zip):
    client = api_as(steward_a)
    created = client.post(
        "/api/central/uploads/",
        {
            "dataset": central_dataset.pk,
            "filename": "x.zip",
            "size": len(demo_zip),
            "sha256": sha(demo_zip),
        },
        format="json",
    ).json()
    response = put_chunk(client, created["id"], demo_zip[:CHUNK], 0, checksum=sha(b"other"))
    assert response.status_code == 400
    assert "checksum" in response.json()["error"]["fields"]
    assert Upload.objects.get(pk=created["id"]).received_bytes == 0


def test_it_refuses_an_oversized_upload(api_as, steward_a, central_dataset, settings):
    settings.CENTRAL_UPLOAD_MAX_BYTES = 1000
    response = api_as(steward_a).post(
        "/api/central/uploads/",
        {"dataset": central_dataset.pk, "filename": "x.zip", "size": 1001, "sha256": "a" * 64},
        format="json",
    )
    assert response.status_code == 400
    assert "1000 bytes" in str(response.json()["error"]["fields"]["size"])


def test_it_refuses_a_chunk_beyond_the_announced_size(api_as, steward_a, central_dataset):
    client = api_as(steward_a)
    created = client.post(
        "/api/central/uploads/",
        {"dataset": central_dataset.pk, "filename": "x.zip", "size": 10, "sha256": "a" * 64},
        format="json",
    ).json()
    response = put_chunk(client, created["id"], b"x" * 11, 0)
    assert response.status_code == 400
    assert "announced size" in str(response.json()["error"]["fields"]["chunk"])


def test_it_refuses_a_file_that_is_not_a_zip(send, api_as, steward_a, central_dataset):
    response = send(api_as(steward_a), b"person_id\n1\n", dataset=central_dataset)
    assert response.status_code == 400
    assert "not a zip" in str(response.json()["error"]["fields"]["file"])
    upload = Upload.objects.get()
    assert upload.status == UploadStatus.FAILED
    assert "central.upload_failed" in upload_actions(upload)
    assert not DatasetVersion.objects.exists()


def test_it_refuses_a_file_that_does_not_match_its_checksum(api_as, steward_a, central_dataset):
    client = api_as(steward_a)
    created = client.post(
        "/api/central/uploads/",
        {"dataset": central_dataset.pk, "filename": "x.zip", "size": 4, "sha256": "b" * 64},
        format="json",
    ).json()
    assert put_chunk(client, created["id"], b"PK\x03\x04", 0).status_code == 200
    response = client.post(f"/api/central/uploads/{created['id']}/complete/")
    assert response.status_code == 400
    assert "checksum" in response.json()["error"]["fields"]


def test_it_refuses_a_dataset_not_offered_as_a_central_copy(api_as, steward_a, central_dataset):
    central_dataset.access_modes = ["federated_analytics"]
    central_dataset.save()
    response = api_as(steward_a).post(
        "/api/central/uploads/",
        {"dataset": central_dataset.pk, "filename": "x.zip", "size": 4, "sha256": "a" * 64},
        format="json",
    )
    assert response.status_code == 400
    assert "dataset" in response.json()["error"]["fields"]


def test_outsiders_see_nothing(
    send, api_as, steward_a, steward_b, researcher, central_dataset, demo_zip
):
    created = send(api_as(steward_a), demo_zip, dataset=central_dataset, complete=False).json()
    for user in (steward_b, researcher):
        client = api_as(user)
        assert client.get(f"/api/central/uploads/{created['id']}/").status_code == 404
        assert client.get("/api/central/uploads/").json()["results"] == []
        assert put_chunk(client, created["id"], b"x", len(demo_zip)).status_code == 404
        assert client.post(f"/api/central/uploads/{created['id']}/complete/").status_code == 404
        response = client.post(
            "/api/central/uploads/",
            {"dataset": central_dataset.pk, "filename": "x.zip", "size": 4, "sha256": "a" * 64},
            format="json",
        )
        assert response.status_code == 404
