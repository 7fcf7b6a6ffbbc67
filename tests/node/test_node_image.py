"""The node image end to end (issue 20): `make node-image` builds it from Debian packages, then the
install guide's steps (docs/node-install.md, the blocks marked ``<!-- step: … -->``) are run
literally with podman against a live portal, a real Celery worker and a PostgreSQL CDM, and a
cohort count completes through the container. Needs root (podman, mmdebstrap); CI's first pass."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid

import psycopg
import pytest

from federation import services
from federation.models import Analysis, AnalysisStatus, Node
from optima_node import __version__
from optima_node.analyses import REGISTRY
from optima_node.db import connect
from optima_node.policy import Policy
from optima_node.schemas import PARAMS_MODELS
from optima_node.synth import synthesise
from optima_portal.celery import app
from tests.federation.factories import LUNG, make_node
from tests.processes import ROOT, start_celery_worker, stop, wait_for

pytestmark = [
    pytest.mark.slow_check,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

GUIDE = ROOT / "docs" / "node-install.md"
OUT = ROOT / "var" / "node-image"
STEP = re.compile(r"<!-- step: (\w+) -->\n```sh\n(.*?)```", re.DOTALL)
POSTGRES = os.environ.get("OPTIMA_NODE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
CONTAINER, VOLUME = "optima-node", "optima-node-state"


def guide_steps() -> dict[str, str]:
    return dict(STEP.findall(GUIDE.read_text(encoding="utf-8")))


def run_step(script: str, env: dict[str, str], cwd) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{script}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    return done.stdout


def podman(*args: str, env: dict[str, str]) -> str:
    return subprocess.run(
        ["podman", *args], env=env, check=True, capture_output=True, text=True, timeout=120
    ).stdout.strip()


@pytest.fixture(scope="module")
def image() -> dict[str, str]:
    """Build the image the way a release does; its facts from var/node-image/image.env."""
    build = subprocess.run(
        ["make", "node-image", f"PY={sys.executable}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    assert re.search(r"image size: \d+ MB", build.stdout)
    # Podman must be there now (the script installs it): in CI a missing podman fails, not skips.
    assert shutil.which("podman"), "podman is required for the node image test"
    facts = dict(
        line.split("=", 1) for line in (OUT / "image.env").read_text().splitlines() if line
    )
    assert int(facts["NODE_IMAGE_SIZE_MB"]) <= 250
    return facts


@pytest.fixture
def cdm():
    """A throwaway PostgreSQL database filled with a synthetic CDM."""
    name = f"optima_node_image_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES}/{name}"
    db = connect(url)
    synthesise(db, 800, 11, ["lung", "prostate"])
    db.close()
    yield url
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def worker(tmp_path):
    queue = f"img-{uuid.uuid4().hex[:8]}"
    previous = (app.conf.task_always_eager, app.conf.task_default_queue)
    app.conf.task_always_eager, app.conf.task_default_queue = False, queue
    process = start_celery_worker(queue, tmp_path / "worker.log")
    yield process
    stop(process)
    app.conf.task_always_eager, app.conf.task_default_queue = previous


def test_the_guide_installs_a_node_that_runs_a_cohort_count(
    image, cdm, worker, live_server, tmp_path, hospital_a, researcher
):
    node, token = make_node(hospital_a, "image")
    Node.objects.filter(pk=node.pk).update(poll_interval_seconds=1)
    settings = {
        "NODE_VERSION": __version__,
        "NODE_IMAGE": image["NODE_IMAGE"],
        "NODE_ARCHIVE": image["NODE_IMAGE_ARCHIVE"],
        "PORTAL_URL": live_server.url,
        "CONF_DIR": str(tmp_path / "etc-optima-node"),
        "NODE_TOKEN": token,
        "OMOP_DATABASE_URL": cdm,
        "CDM_SCHEMA": "",
    }
    steps = guide_steps()
    assert list(steps) == ["settings", "load", "secrets", "check", "run", "status"]
    # The guide's settings block names exactly the variables the test supplies.
    assert set(re.findall(r"^export (\w+)=", steps["settings"], re.MULTILINE)) == set(settings)
    env = {
        **os.environ,
        **settings,
        "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(OUT / "containers.conf")),
    }
    subprocess.run(["podman", "rm", "-f", CONTAINER], env=env, capture_output=True)
    subprocess.run(["podman", "volume", "rm", "-f", VOLUME], env=env, capture_output=True)
    try:
        digest = "sha256:" + image["NODE_IMAGE_SBOM_SHA256"]
        assert f"image digest: {digest}" in run_step(steps["load"], env, tmp_path)
        sbom = json.loads((tmp_path / "sbom-installed.json").read_text())
        names = {c["name"] for c in sbom["components"]}
        assert {"python3", "optima-node", "pydantic", "numpy", "psycopg"} <= names
        assert "Django" not in names
        run_step(steps["secrets"], env, tmp_path)
        assert "result: OK" in run_step(steps["check"], env, tmp_path)
        run_step(steps["run"], env, tmp_path)
        assert podman("exec", CONTAINER, "id", "-u", env=env) == "10001"
        inspect = "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}"
        assert podman("inspect", "--format", inspect, CONTAINER, env=env) == "true 10001:10001"
        wait_for(
            lambda: Node.objects.filter(pk=node.pk, last_seen_at__isnull=False).exists(),
            timeout=60,
            what="the container's first heartbeat",
        )
        node.refresh_from_db()
        assert (node.agent_version, node.image_digest, node.dialect) == (
            __version__,
            digest,
            "postgresql",
        )
        params = {"cohort": {"condition_concept_ids": LUNG}}
        analysis = services.analysis_start(
            researcher=researcher,
            analysis_type="cohort_count",
            version=1,
            params=params,
            nodes=[node],
        )
        finished = wait_for(
            lambda: (
                Analysis.objects.filter(pk=analysis.pk)
                .exclude(status=AnalysisStatus.RUNNING)
                .first()
            ),
            timeout=120,
            interval=0.5,
            what="the cohort count to finish",
        )
        assert finished.status == AnalysisStatus.COMPLETED, finished.reason
        # What came through the container is what the agent's library computes on the same CDM.
        database = connect(cdm)
        try:
            model = PARAMS_MODELS[("cohort_count", 1)].model_validate(params)
            local = REGISTRY[("cohort_count", 1)](database, model, {}, Policy(), None)
        finally:
            database.close()
        (run,) = finished.runs.all()
        assert run.result["rows"] == json.loads(json.dumps(local["rows"]))
        assert finished.result["total"] > 0
        status = run_step(steps["status"], env, tmp_path)
        assert "healthy" in status and CONTAINER in status
    finally:
        subprocess.run(["podman", "rm", "-f", CONTAINER], env=env, capture_output=True)
        subprocess.run(["podman", "volume", "rm", "-f", VOLUME], env=env, capture_output=True)
