"""The central analysis database on PostgreSQL: one schema per version, which the node's own
conformance check accepts, dropped when the version is retired.

Uses OPTIMA_NODE_TEST_POSTGRES_URL, else a PostgreSQL DATABASE_URL, else the local server."""

from __future__ import annotations

import os

import pytest

from central.models import DatasetVersion, Upload, UploadStatus
from optima_node.check import check_database
from optima_node.db import connect
from tests.catalogue.factories import DatasetFactory
from tests.node.test_node_postgres import pg_url  # noqa: F401 (the fixture)

from .conftest import csv_rows

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _schemas(url: str) -> set[str]:
    db = connect(url)
    try:
        return {r[0] for r in db.execute("SELECT schema_name FROM information_schema.schemata")}
    finally:
        db.close()


def test_a_version_is_a_schema_of_the_central_database(
    send,
    api_as,
    steward_a,
    hospital_a,
    demo_zip,
    settings,
    pg_url,  # noqa: F811
):
    settings.CENTRAL_OMOP_DATABASE_URL = pg_url
    # A dataset id of its own, so parallel test runs on one server never share a schema.
    dataset = DatasetFactory(
        pk=900_000_000 + os.getpid(), publisher=hospital_a, access_modes=["central_copy"]
    )
    client = api_as(steward_a)
    send(client, demo_zip, dataset=dataset)

    upload = Upload.objects.get()
    assert upload.status == UploadStatus.LOADED, upload.error
    version = DatasetVersion.objects.get()
    assert version.location == f"ds_{dataset.pk}_v1"
    db = connect(pg_url, schema=version.location)
    try:
        assert check_database(db).ok
        (persons,) = db.execute(f"SELECT COUNT(*) FROM {db.t('person')}")[0]
    finally:
        db.close()
    assert persons == csv_rows(demo_zip, "PERSON.csv")
    # The central node reads the served version through a schema of views with a stable name.
    served = connect(pg_url, schema=f"ds_{dataset.pk}")
    try:
        assert check_database(served).ok
        assert served.execute(f"SELECT COUNT(*) FROM {served.t('person')}")[0][0] == persons
    finally:
        served.close()

    assert client.post(f"/api/central/versions/{version.pk}/retire/").status_code == 200
    assert not {version.location, f"ds_{dataset.pk}"} & _schemas(pg_url)


def test_a_lost_load_leaves_no_schema_behind(
    send,
    api_as,
    steward_a,
    hospital_a,
    demo_zip,
    settings,
    django_capture_on_commit_callbacks,
    pg_url,  # noqa: F811
):
    from datetime import timedelta

    from django.utils import timezone

    from central import services, warehouse

    settings.CENTRAL_OMOP_DATABASE_URL = pg_url
    settings.CENTRAL_UPLOAD_MAX_ATTEMPTS = 1
    dataset = DatasetFactory(
        pk=910_000_000 + os.getpid(), publisher=hospital_a, access_modes=["central_copy"]
    )
    client = api_as(steward_a)
    upload_id = send(client, demo_zip, dataset=dataset, complete=False).json()["id"]
    with django_capture_on_commit_callbacks(execute=False):  # no worker takes it
        assert client.post(f"/api/central/uploads/{upload_id}/complete/").status_code == 202
    # The worker died loading: its half-written schema stays, the upload says "loading".
    location = warehouse.location_for(dataset.pk, 1)
    db = connect(pg_url)
    try:
        db.execute_script(
            [f"DROP SCHEMA IF EXISTS {location} CASCADE", f"CREATE SCHEMA {location}"]
        )
        db.commit()
    finally:
        db.close()
    Upload.objects.filter(pk=upload_id).update(
        status=UploadStatus.LOADING,
        location=location,
        updated_at=timezone.now() - timedelta(minutes=settings.CENTRAL_UPLOAD_STALL_MINUTES + 1),
    )
    assert location in _schemas(pg_url)

    with django_capture_on_commit_callbacks(execute=True):
        assert services.uploads_stalled_recover() == 1

    assert Upload.objects.get(pk=upload_id).status == UploadStatus.FAILED
    assert location not in _schemas(pg_url)


class _ApiListing:
    """The central node's API through the test client, as the supervisor reads it."""

    def __init__(self, raw: str) -> None:
        from rest_framework.test import APIClient

        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Central {raw}")

    def datasets(self):
        from optima_node.central import ServedDataset

        response = self.client.get("/api/central/node/datasets/")
        assert response.status_code == 200, response.content
        return [ServedDataset.model_validate(d) for d in response.json()["datasets"]]

    def node_token(self, dataset_id: int) -> str:
        response = self.client.post(f"/api/central/node/datasets/{dataset_id}/token/")
        assert response.status_code == 200, response.content
        return response.json()["node_token"]


def test_the_central_node_reads_the_served_schema_with_its_own_database_url(
    send,
    api_as,
    steward_a,
    hospital_a,
    demo_zip,
    settings,
    tmp_path,
    pg_url,  # noqa: F811
):
    from central import services
    from optima_node.central import CentralConfig, Supervisor
    from optima_node.client import PortalUnavailable
    from optima_node.synth import csv_zip, generate

    class AwayPortal:
        def __init__(self, base_url: str, token: str) -> None:
            pass

        def heartbeat(self, heartbeat):
            raise PortalUnavailable("away")

    settings.CENTRAL_OMOP_DATABASE_URL = pg_url
    dataset = DatasetFactory(
        pk=900_000_000 + os.getpid(), publisher=hospital_a, access_modes=["central_copy"]
    )
    client = api_as(steward_a)
    send(client, demo_zip, dataset=dataset)
    _, raw = services.central_node_enrol(actor="test")
    listing = _ApiListing(raw)
    (entry,) = listing.datasets()
    assert entry.location.dialect == "postgresql"
    assert entry.location.schema_ == f"ds_{dataset.pk}"

    config = CentralConfig("http://portal.invalid", raw, tmp_path / "state", database_url=pg_url)
    supervisor = Supervisor(config, client=listing, portal_client=AwayPortal)
    try:
        supervisor.sync()
        assert supervisor.served[dataset.pk].thread.is_alive()
        agent_config = supervisor.agent_config(entry, "node_x")
        assert agent_config.omop_database_url == pg_url  # the supervisor's, with its password
        assert agent_config.cdm_schema == f"ds_{dataset.pk}"

        send(client, csv_zip(generate(120, 3, ["lung"])), dataset=dataset)  # a refresh
        supervisor.sync()
        assert supervisor.served[dataset.pk].version == 2
        db = connect(agent_config.omop_database_url, agent_config.cdm_schema)
        try:
            assert db.execute(f"SELECT COUNT(*) FROM {db.t('person')}")[0][0] == 120
        finally:
            db.close()
    finally:
        supervisor.shutdown()
        for version in DatasetVersion.objects.exclude(status="retired").order_by("number"):
            client.post(f"/api/central/versions/{version.pk}/retire/")
    assert not {f"ds_{dataset.pk}", f"ds_{dataset.pk}_v1", f"ds_{dataset.pk}_v2"} & _schemas(pg_url)
