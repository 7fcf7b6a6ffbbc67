"""Analysis of a central copy: the operator enrols the central node (the real node agent, driven
in-process over the node API), an entitled researcher runs a Kaplan–Meier on the dataset through
it, and the result equals lifelines on person rows read with plain SQL from the loaded version.
A refresh re-points the node's stable name at the new version."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from accounts.models import AuditEvent
from central.models import DatasetVersion
from federation import services as federation_services
from federation.models import AnalysisStatus, NodeDataset
from optima_node.db import connect
from optima_node.synth import csv_zip, generate
from tests.federation.factories import (
    EXACT,
    LUNG,
    SimNode,
    grant_federated_analytics,
    make_dataset,
)
from tests.federation.test_stats import reference_persons

lifelines = pytest.importorskip("lifelines")

pytestmark = pytest.mark.django_db


def _enrol(dataset) -> dict[str, str]:
    out = io.StringIO()
    call_command("central_node", "enroll", "--dataset", str(dataset.pk), stdout=out)
    lines = out.getvalue().splitlines()
    return dict(line.split("=", 1) for line in lines[1:])


def _persons(url: str) -> int:
    db = connect(url)
    try:
        return int(db.execute("SELECT COUNT(*) FROM person")[0][0])
    finally:
        db.close()


def test_a_researcher_runs_a_kaplan_meier_through_the_central_node(
    send,
    api_as,
    steward_a,
    hospital_a,
    researcher,
    django_capture_on_commit_callbacks,
):
    dataset = make_dataset(hospital_a, "Lung cancer central copy")
    dataset.access_modes = ["federated_analytics", "central_copy"]
    dataset.save(update_fields=["access_modes"])
    with pytest.raises(CommandError, match="no loaded central copy"):
        _enrol(dataset)
    send(api_as(steward_a), csv_zip(generate(800, 5, ["lung", "prostate"])), dataset=dataset)

    config = _enrol(dataset)
    node = NodeDataset.objects.get(dataset=dataset).node
    assert node.organisation == hospital_a  # the provider's node: its site admin's gates
    assert set(config) == {"PORTAL_URL", "OMOP_DATABASE_URL", "NODE_TOKEN"}
    served_url = config["OMOP_DATABASE_URL"]
    assert AuditEvent.objects.filter(action="central.node_enrolled").count() == 1

    grant_federated_analytics(researcher, dataset)
    unit = 30
    analysis = federation_services.analysis_create(
        researcher=researcher,
        analysis_type="kaplan_meier",
        version=1,
        params={
            "cohort": {"condition_concept_ids": LUNG},
            "time_unit_days": unit,
            "max_time_units": 120,
        },
        datasets=[dataset],
        title="Central KM",
    )
    sim = SimNode(node, config["NODE_TOKEN"], served_url, policy=EXACT)
    try:
        for _ in range(10):
            with django_capture_on_commit_callbacks(execute=True):
                if not sim.cycle():
                    break
    finally:
        sim.close()
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED, analysis.reason

    rows = reference_persons(served_url, LUNG)
    durations = [min(r["days"] // unit, 120) for r in rows]
    events = [bool(r["event"]) and r["days"] // unit <= 120 for r in rows]
    fitter = lifelines.KaplanMeierFitter().fit(durations, events)
    (stratum,) = analysis.result["strata"]
    for row in stratum["table"]:
        expected = fitter.survival_function_at_times(row["time"]).iloc[0]
        assert row["survival"] == pytest.approx(expected, abs=1e-10)
    assert sum(r["n_events"] + r["n_censored"] for r in stratum["table"]) == len(rows)

    # A refresh: the same stable name now reads the new version, the old one stays until retired.
    send(api_as(steward_a), csv_zip(generate(500, 6, ["lung"])), dataset=dataset)
    assert _persons(served_url) == 500
    first = DatasetVersion.objects.get(number=1)
    assert api_as(steward_a).post(f"/api/central/versions/{first.pk}/retire/").status_code == 200
    assert _persons(served_url) == 500


def test_the_command_names_an_unknown_dataset():
    with pytest.raises(CommandError, match="No dataset with id 999999"):
        _enrol(type("Missing", (), {"pk": 999999})())
