"""Analysis of central copies through the central node, end to end with real processes: the
operator enrols the central node, ``optima-node central`` (a subprocess) serves the central copies
of two providers against the portal on a live server, an entitled researcher runs a Kaplan–Meier
on both, and the pooled result equals lifelines on person rows read with plain SQL from the loaded
versions. A refresh (a new version served) is picked up without restarting the supervisor."""

from __future__ import annotations

import io
import signal
import subprocess
import sys

import pytest
from django.core.management import call_command

from accounts.models import AuditEvent, Role
from central import services, warehouse
from federation import services as federation_services
from federation.models import Analysis, AnalysisStatus, Node, NodeDataset
from optima_node.db import connect
from optima_node.synth import csv_zip, generate
from tests.factories import make_member
from tests.federation.factories import LUNG, grant_federated_analytics, make_dataset
from tests.federation.test_stats import reference_persons
from tests.processes import ROOT, subprocess_env, wait_for

lifelines = pytest.importorskip("lifelines")

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

UNIT = 30
EXACT_POLICY = "[policy]\nmin_cell_count = 1\nkm_min_time_unit_days = 1\n"


def _central_dataset(organisation, title):
    dataset = make_dataset(organisation, title)
    dataset.access_modes = ["federated_analytics", "central_copy"]
    dataset.save(update_fields=["access_modes"])
    return dataset


def _enrol() -> str:
    out = io.StringIO()
    call_command("central_node", "enroll", stdout=out)
    lines = dict(line.split("=", 1) for line in out.getvalue().splitlines()[1:])
    assert set(lines) == {"PORTAL_URL", "CENTRAL_NODE_TOKEN"}
    return lines["CENTRAL_NODE_TOKEN"]


def _served_url(dataset) -> str:
    return f"sqlite:///{warehouse.served_location(dataset.pk)}"


def _persons(url: str) -> int:
    db = connect(url)
    try:
        return int(db.execute("SELECT COUNT(*) FROM person")[0][0])
    finally:
        db.close()


def _km(researcher, datasets, title: str) -> Analysis:
    analysis = federation_services.analysis_create(
        researcher=researcher,
        analysis_type="kaplan_meier",
        version=1,
        params={
            "cohort": {"condition_concept_ids": LUNG},
            "time_unit_days": UNIT,
            "max_time_units": 120,
        },
        datasets=datasets,
        title=title,
    )
    done = (AnalysisStatus.COMPLETED, AnalysisStatus.FAILED, AnalysisStatus.CANCELLED)
    wait_for(
        lambda: Analysis.objects.get(pk=analysis.pk).status in done,
        timeout=90,
        what=f"the analysis {title!r}",
    )
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED, analysis.reason
    return analysis


def _assert_km_matches(analysis: Analysis, urls: list[str]) -> None:
    rows = [row for url in urls for row in reference_persons(url, LUNG)]
    durations = [min(r["days"] // UNIT, 120) for r in rows]
    events = [bool(r["event"]) and r["days"] // UNIT <= 120 for r in rows]
    fitter = lifelines.KaplanMeierFitter().fit(durations, events)
    (stratum,) = analysis.result["strata"]
    for row in stratum["table"]:
        expected = fitter.survival_function_at_times(row["time"]).iloc[0]
        assert row["survival"] == pytest.approx(expected, abs=1e-10)
    assert sum(r["n_events"] + r["n_censored"] for r in stratum["table"]) == len(rows)


def test_the_central_node_serves_two_providers_and_follows_a_refresh(
    live_server,
    settings,
    tmp_path,
    send,
    api_as,
    hospital_a,
    hospital_b,
    steward_a,
    steward_b,
    site_admin_a,
    researcher,
):
    settings.FEDERATION_POLL_INTERVAL_SECONDS = 0.5
    site_admin_b = make_member(hospital_b, Role.SITE_ADMIN, username="siteadmin_b")
    dataset_a = _central_dataset(hospital_a, "Lung cancer central copy A")
    dataset_b = _central_dataset(hospital_b, "Lung cancer central copy B")
    send(api_as(steward_a), csv_zip(generate(800, 5, ["lung", "prostate"])), dataset=dataset_a)
    send(api_as(steward_b), csv_zip(generate(600, 9, ["lung"])), dataset=dataset_b)
    # Each provider's site admin sets the policy of its central copy.
    for dataset, admin in ((dataset_a, site_admin_a), (dataset_b, site_admin_b)):
        services.central_policy_set(user=admin, dataset=dataset, text=EXACT_POLICY)

    token = _enrol()
    log_path = tmp_path / "central.log"
    state = tmp_path / "central-state"
    with open(log_path, "w") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "optima_node.cli", "central"],
            cwd=ROOT,
            env=subprocess_env(
                PORTAL_URL=live_server.url,
                CENTRAL_NODE_TOKEN=token,
                CENTRAL_STATE_DIR=str(state),
                CENTRAL_POLL_INTERVAL="1",
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        nodes = Node.objects.filter(name__startswith="central-copy-")
        wait_for(
            lambda: (
                nodes.filter(last_seen_at__isnull=False).count() == 2
                and all((n.policy or {}).get("min_cell_count") == 1 for n in nodes)
            ),
            timeout=60,
            what="two central copies' heartbeats under the providers' policy",
        )
        for dataset, provider in ((dataset_a, hospital_a), (dataset_b, hospital_b)):
            node = NodeDataset.objects.get(dataset=dataset).node
            assert node.organisation == provider  # the provider's node: its site admin's gates
            assert node.name == f"central-copy-{dataset.pk}"
            token_file = state / f"dataset-{dataset.pk}" / "node.token"
            assert token_file.stat().st_mode & 0o777 == 0o600
        prefixes = {n.pk: n.token_prefix for n in nodes}

        grant_federated_analytics(researcher, dataset_a)
        grant_federated_analytics(researcher, dataset_b)
        both = _km(researcher, [dataset_a, dataset_b], "Central KM, two providers")
        _assert_km_matches(both, [_served_url(dataset_a), _served_url(dataset_b)])

        # A refresh of A: the supervisor (not restarted) reopens A's database.
        send(api_as(steward_a), csv_zip(generate(500, 6, ["lung"])), dataset=dataset_a)
        assert _persons(_served_url(dataset_a)) == 500
        wait_for(
            lambda: f"dataset {dataset_a.pk}: version 2 served now" in log_path.read_text(),
            timeout=30,
            what="the supervisor noticing version 2",
        )
        refreshed = _km(researcher, [dataset_a], "Central KM after the refresh")
        _assert_km_matches(refreshed, [_served_url(dataset_a)])
        assert supervisor.poll() is None
        # Nothing was rotated: each dataset's node kept the token it was given once.
        assert {n.pk: n.token_prefix for n in nodes} == prefixes
        assert AuditEvent.objects.filter(action="central.dataset_token_issued").count() == 2

        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait(timeout=15)
    log_text = log_path.read_text()
    assert "stopping every dataset's agent" in log_text
    assert token not in log_text
