"""Federated learning, portal side: entitlements, site policies, FLARE state mapping, monitoring,
abort, the release gate, the registry and downloads (FLARE's admin API faked; the real one is in
tests/integration/test_flare_poc.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import override_settings

from accounts.models import AuditEvent, Role
from federation.analysis_types import FL_TYPE, FL_VERSION, validate_params
from federation.flare import services as fl
from federation.flare import states
from federation.models import AnalysisStatus, FlJob, FlJobStatus, TrainedModel
from tests.factories import OrganisationFactory, make_member
from tests.federation.fl_factories import (
    FL_PARAMS,
    FL_POLICY,
    FakeFlare,
    grant_federated_learning,
    make_fl_site,
)


@pytest.fixture
def flare(monkeypatch, tmp_path, settings):
    settings.FLARE_ADMIN_STARTUP_KIT = str(tmp_path / "kit")
    settings.FLARE_WORK_DIR = str(tmp_path / "work")
    return FakeFlare(monkeypatch, tmp_path)


@pytest.fixture
def sites(hospital_a, hospital_b):
    return [make_fl_site(hospital_a, "a-omop"), make_fl_site(hospital_b, "b-omop")]


@pytest.fixture
def datasets(sites, researcher):
    found = [s.served_datasets.get().dataset for s in sites]
    for dataset in found:
        grant_federated_learning(researcher, dataset)
    return found


@pytest.fixture
def start(django_capture_on_commit_callbacks):
    """fl_create with its on-commit submission run (eager Celery in tests)."""

    def _start(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            fl_job = fl.fl_create(**kwargs)
        fl_job.refresh_from_db()
        return fl_job

    return _start


def actions(obj) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_id=str(obj.pk), action__startswith="fl.")
        .order_by("seq")
        .values_list("action", flat=True)
    )


def test_params_are_checked_against_the_json_schema_with_paths():
    with pytest.raises(ValidationError) as err:
        validate_params(
            FL_TYPE, FL_VERSION, {**FL_PARAMS, "template": "random_forest", "rounds": 0}
        )
    messages = err.value.message_dict["params"]
    assert any(m.startswith("rounds:") for m in messages)
    assert any(m.startswith("template:") for m in messages)
    with pytest.raises(ValidationError) as err:
        validate_params(
            FL_TYPE, FL_VERSION, {**FL_PARAMS, "covariates": ["age_at_index", "age_at_index"]}
        )
    assert "twice" in " ".join(err.value.message_dict["params"])
    normalised = validate_params(FL_TYPE, FL_VERSION, FL_PARAMS)
    assert normalised["covariates"] == ["age_at_index", "sex_male", "index_year", "stage"]


def test_an_entitlement_for_federated_learning_is_needed_on_every_dataset(sites, researcher, flare):
    first, second = (s.served_datasets.get().dataset for s in sites)
    grant_federated_learning(researcher, first)
    with pytest.raises(PermissionDenied) as err:
        fl.fl_create(researcher=researcher, datasets=[first, second], params=FL_PARAMS)
    assert str(second.pk) in str(err.value) and str(first.pk) not in str(err.value).split(":")[1]
    assert not FlJob.objects.exists()


def test_an_analytics_entitlement_is_not_enough(sites, researcher, flare):
    from tests.federation.factories import grant_federated_analytics

    found = [s.served_datasets.get().dataset for s in sites]
    for dataset in found:
        grant_federated_analytics(researcher, dataset)
    with pytest.raises(PermissionDenied):
        fl.fl_create(researcher=researcher, datasets=found, params=FL_PARAMS)


def test_site_policy_decides_who_takes_part(hospital_a, hospital_b, researcher, flare):
    yes = make_fl_site(hospital_a, "a-omop")
    no = make_fl_site(hospital_b, "b-omop", policy={**FL_POLICY, "federated_learning": False})
    third = make_fl_site(
        OrganisationFactory(name="Hospital C", slug="hospital-c"),
        "c-omop",
        policy={**FL_POLICY, "allowed_model_templates": ["mlp"]},
    )
    found = [n.served_datasets.get().dataset for n in (yes, no, third)]
    for dataset in found:
        grant_federated_learning(researcher, dataset)
    with pytest.raises(ValidationError) as err:
        fl.fl_create(researcher=researcher, datasets=found, params=FL_PARAMS)
    message = " ".join(err.value.message_dict["params"])
    assert "b-omop: its site policy does not take part" in message
    assert "c-omop: its site policy does not allow the logistic_regression template" in message

    fl_job = fl.fl_create(
        researcher=researcher, datasets=found, params={**FL_PARAMS, "min_sites": 1}, submit=False
    )
    assert fl_job.sites == ["a-omop"]
    event = AuditEvent.objects.get(action="fl.submitting", object_id=str(fl_job.pk))
    assert {e["node"] for e in event.payload["left_out"]} == {"b-omop", "c-omop"}


def test_flare_states_map_onto_portal_states():
    assert states.map_status("SUBMITTED") == states.SUBMITTED
    assert states.map_status("DISPATCHED") == states.SUBMITTED
    assert states.map_status("RUNNING") == states.RUNNING
    assert states.map_status("FINISHED:COMPLETED") == states.FINISHED
    assert states.map_status("FINISHED:ABORTED") == states.ABORTED
    for failed in ("FINISHED:EXECUTION_EXCEPTION", "FINISHED:ABNORMAL", "FINISHED:FAILED_TO_RUN"):
        assert states.map_status(failed) == states.FAILED
    assert states.map_status("FINISHED:SOMETHING_NEW") == states.FAILED
    assert states.map_status("") == states.SUBMITTED


def test_a_job_is_built_submitted_followed_released_and_registered(
    sites, datasets, researcher, site_admin_a, flare, start
):
    fl_job = start(researcher=researcher, datasets=datasets, params=FL_PARAMS, title="Death at 5 y")
    # Eager Celery in tests: the submit task ran on commit and built a real FLARE job folder.
    fl_job.refresh_from_db()
    assert fl_job.status == FlJobStatus.SUBMITTED and fl_job.flare_job_id == "flare-1"
    folder = flare.submitted[0]
    meta = json.loads(Path(folder, "meta.json").read_text())
    assert set(meta["deploy_map"]) == {"app_server", "app_a-omop", "app_b-omop"}
    assert meta["min_clients"] == 2
    client = json.loads(Path(folder, "app_a-omop/config/config_fed_client.json").read_text())
    args = client["executors"][0]["executor"]["args"]
    assert args["task_script_path"] == "optima_node/flare/client.py"

    flare.status, flare.report = "RUNNING", FakeFlare.report_for(fl_job.sites, rounds=1)
    fl_job = fl.fl_poll(fl_job_id=fl_job.pk)
    assert fl_job.status == FlJobStatus.RUNNING
    assert fl_job.progress["rounds"][0]["sites"]["a-omop"]["val_auc"] == 0.7
    assert fl_job.analysis.status == AnalysisStatus.RUNNING

    flare.status, flare.report = "FINISHED:COMPLETED", FakeFlare.report_for(fl_job.sites)
    fl_job = fl.fl_poll(fl_job_id=fl_job.pk)
    assert fl_job.status == FlJobStatus.AWAITING_RELEASE
    assert fl_job.global_model["parameters"] == pytest.approx(flare.weights)
    assert fl_job.global_model["features"][-1] == "stage_known"
    assert set(fl_job.timing) >= {"submit", "monitor", "download", "polls"}

    with pytest.raises(PermissionDenied):
        fl.fl_release(actor=researcher, fl_job=fl_job)
    model = fl.fl_release(actor=site_admin_a, fl_job=fl_job)
    assert (model.name, model.version) == ("Death at 5 y", 1)
    assert {s["site"] for s in model.sites} == {"a-omop", "b-omop"}
    assert model.metrics["pooled_val_auc"] == 0.74
    assert "Death at 5 y v1" in model.model_card and "FedAvg on NVIDIA FLARE" in model.model_card
    assert set(model.datasets.all()) == set(datasets)
    fl_job.refresh_from_db()
    assert fl_job.status == FlJobStatus.RELEASED
    assert fl_job.analysis.status == AnalysisStatus.COMPLETED
    assert actions(fl_job) == [
        "fl.submitting",
        "fl.submitted",
        "fl.running",
        "fl.awaiting_release",
        "fl.released",
    ]
    assert AuditEvent.objects.filter(action="model.registered", object_id=str(model.pk)).exists()

    # The same name again is the next version.
    second = start(researcher=researcher, datasets=datasets, params=FL_PARAMS, title="x")
    flare.status = "FINISHED:COMPLETED"
    fl.fl_poll(fl_job_id=second.pk)
    again = fl.fl_release(
        actor=site_admin_a, fl_job=FlJob.objects.get(pk=second.pk), name="Death at 5 y"
    )
    assert again.version == 2


def test_a_failed_flare_job_fails_with_the_controller_reason(
    sites, datasets, researcher, flare, start
):
    fl_job = start(researcher=researcher, datasets=datasets, params=FL_PARAMS)
    flare.status = "FINISHED:EXECUTION_EXCEPTION"
    flare.report = FakeFlare.report_for(
        fl_job.sites,
        rounds=1,
        failure="round 2: 1 of the required 2 sites contributed (missing: b-omop)",
    )
    fl_job = fl.fl_poll(fl_job_id=fl_job.pk)
    assert fl_job.status == FlJobStatus.FAILED
    assert "missing: b-omop" in fl_job.reason
    assert fl_job.analysis.status == AnalysisStatus.FAILED
    assert fl_job.global_model is None


def test_a_completed_flare_job_whose_controller_failed_is_not_released(
    sites, datasets, researcher, flare, start
):
    fl_job = start(researcher=researcher, datasets=datasets, params=FL_PARAMS)
    flare.status = "FINISHED:COMPLETED"
    flare.report = FakeFlare.report_for(fl_job.sites, failure="sites not connected: b-omop")
    fl_job = fl.fl_poll(fl_job_id=fl_job.pk)
    assert fl_job.status == FlJobStatus.FAILED and "b-omop" in fl_job.reason


def test_submission_fails_clearly_when_flare_is_unreachable(
    sites, datasets, researcher, flare, start
):
    flare.unreachable = True
    fl_job = start(researcher=researcher, datasets=datasets, params=FL_PARAMS)
    fl_job.refresh_from_db()
    assert fl_job.status == FlJobStatus.FAILED
    assert fl_job.reason.startswith("Submission failed: cannot connect to the FLARE server")


def test_polling_an_unreachable_flare_changes_nothing(sites, datasets, researcher, flare, start):
    fl_job = start(researcher=researcher, datasets=datasets, params=FL_PARAMS)
    flare.unreachable = True
    assert fl.fl_poll(fl_job_id=fl_job.pk).status == FlJobStatus.SUBMITTED


def test_without_admin_kit_setting_or_poc_the_portal_says_what_to_do(settings, tmp_path):
    settings.FLARE_ADMIN_STARTUP_KIT = ""
    settings.FLARE_WORK_DIR = str(tmp_path)
    with pytest.raises(fl.FlareUnavailable, match="FLARE_ADMIN_STARTUP_KIT"):
        fl.admin_kit()


def test_the_researcher_aborts_a_running_job(sites, datasets, researcher, flare, start):
    fl_job = start(researcher=researcher, datasets=datasets, params=FL_PARAMS)
    fl_job = fl.fl_abort(actor=researcher, fl_job=fl_job)
    assert fl_job.status == FlJobStatus.ABORTED and flare.aborted == ["flare-1"]
    assert fl_job.analysis.status == AnalysisStatus.CANCELLED
    assert actions(fl_job)[-1] == "fl.aborted"
    with pytest.raises(ValidationError):
        fl.fl_abort(actor=researcher, fl_job=fl_job)


def test_release_gate_site_admins_of_participants_and_reviewers_only(
    sites, datasets, researcher, hospital_a, platform_admin, flare, start
):
    elsewhere = make_member(
        OrganisationFactory(name="Other", slug="other"), Role.SITE_ADMIN, username="sa_other"
    )
    fl_job = start(researcher=researcher, datasets=datasets, params=FL_PARAMS)
    flare.status, flare.report = "FINISHED:COMPLETED", FakeFlare.report_for(fl_job.sites)
    fl_job = fl.fl_poll(fl_job_id=fl_job.pk)
    assert not fl.can_release(researcher, fl_job)
    assert not fl.can_release(elsewhere, fl_job)
    assert fl.can_release(platform_admin, fl_job)
    with pytest.raises(PermissionDenied):
        fl.fl_decline(actor=elsewhere, fl_job=fl_job)
    fl_job = fl.fl_decline(actor=platform_admin, fl_job=fl_job, reason="Too few sites.")
    assert fl_job.status == FlJobStatus.DECLINED and fl_job.global_model is None
    assert fl_job.analysis.status == AnalysisStatus.FAILED
    with pytest.raises(ValidationError):
        fl.fl_release(actor=platform_admin, fl_job=fl_job)
    assert not TrainedModel.objects.exists()


def test_downloads_need_the_entitlement_on_every_training_dataset(
    sites, datasets, researcher, site_admin_a, flare, start
):
    other = make_member(
        OrganisationFactory(name="Lab", slug="lab"), Role.RESEARCHER, username="other_researcher"
    )
    fl_job = start(researcher=researcher, datasets=datasets, params=FL_PARAMS)
    flare.status, flare.report = "FINISHED:COMPLETED", FakeFlare.report_for(fl_job.sites)
    model = fl.fl_release(actor=site_admin_a, fl_job=fl.fl_poll(fl_job_id=fl_job.pk))
    payload = fl.model_download(actor=researcher, model=model)
    assert payload["parameters"] == pytest.approx(flare.weights)
    assert payload["scaling"]["age_at_index"] == [65.0, 12.0]
    assert AuditEvent.objects.filter(action="model.downloaded", object_id=str(model.pk)).exists()
    grant_federated_learning(other, datasets[0])
    with pytest.raises(PermissionDenied):
        fl.model_download(actor=other, model=model)
    grant_federated_learning(other, datasets[1])
    assert fl.model_download(actor=other, model=model)["version"] == 1


@override_settings(FLARE_ADMIN_STARTUP_KIT="")
def test_the_portal_imports_without_nvflare(monkeypatch):
    import federation.flare as flare_pkg

    monkeypatch.setattr(flare_pkg.importlib.util, "find_spec", lambda name: None)
    assert not flare_pkg.nvflare_available()
    with pytest.raises(flare_pkg.FlareUnavailable, match="pip install"):
        flare_pkg.require_nvflare()


def test_a_lost_submission_is_retried_by_the_beat_sweep_without_a_second_flare_job(
    sites, datasets, researcher, flare
):
    from datetime import timedelta

    from django.utils import timezone

    from federation.flare.tasks import fl_monitor_open

    flare.unreachable = True
    fl_job = fl.fl_create(researcher=researcher, datasets=datasets, params=FL_PARAMS, submit=False)
    FlJob.objects.filter(pk=fl_job.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    flare.unreachable = False
    # The first attempt reached FLARE but its answer was lost: FLARE knows the token already.
    fl_job.refresh_from_db()
    flare.tokens[fl.submit_token(fl_job)] = "flare-original"
    fl_monitor_open()
    fl_job.refresh_from_db()
    assert fl_job.status == FlJobStatus.SUBMITTED and fl_job.flare_job_id == "flare-original"
    assert flare.submitted == []
