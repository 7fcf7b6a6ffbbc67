"""Federated learning on a real NVIDIA FLARE POC system (server + three clients on 127.0.0.1).

The portal's services build and submit the job through FLARE's admin API, follow it to the end and
release the global model. The logistic-regression template is checked against a centrally trained
reference (Newton–Raphson maximum likelihood on the pooled training data of the three sites):

* tolerance: every identifiable coefficient within 0.05 (age, sex, index year, stage, and the
  intercept + "stage known" sum, which are collinear when every person has a stage), predicted
  probabilities on the pooled validation persons within 0.01, pooled validation AUC within 0.005.
  FedAvg with several local epochs on unequal sites converges near, not onto, the pooled optimum
  (client drift): with these settings the largest gap is about 0.027, on the stage coefficient;
* and exactly what FedAvg should give: the same rounds replayed in-process in numpy (same data,
  same template code, weights = training sizes) agree with FLARE's global model within 1e-6.

A site stopped mid-job (min_sites = 3) ends the job ``failed`` with a reason naming it, bounded by
the per-task timeout. Everything is stopped in teardown; every wait has a timeout.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from django.test import override_settings

from federation.flare import nvflare_available
from federation.flare import services as fl
from federation.models import FlJobStatus
from optima_node.db import connect
from optima_node.flare.features import design, split
from optima_node.flare.templates import auc, template_for
from optima_node.policy import Policy
from optima_node.schemas import FederatedLearningParams
from optima_node.synth import synthesise
from tests.factories import OrganisationFactory
from tests.federation.fl_factories import FL_PARAMS, grant_federated_learning, make_fl_site

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db,
    pytest.mark.skipif(not nvflare_available(), reason="nvflare is not installed"),
]

SITES = (("fl-site-a", 1, 1500), ("fl-site-b", 2, 1200), ("fl-site-c", 3, 900))
TASK_TIMEOUT = 20
TRAIN = {**FL_PARAMS, "rounds": 8, "local_epochs": 20, "learning_rate": 1.0, "min_sites": 3}


@pytest.fixture(scope="module")
def poc(tmp_path_factory):
    from federation.flare.poc import Poc, free_port

    root = tmp_path_factory.mktemp("flare")
    for name, seed, persons in SITES:
        path = root / f"{name}.sqlite3"
        database = connect(f"sqlite:///{path}")
        synthesise(database, persons, seed, ["prostate", "breast", "lung"])
        database.close()
        policy = root / f"{name}.policy.toml"
        policy.write_text(
            Policy(
                federated_learning=True, allowed_model_templates=["logistic_regression"]
            ).to_toml()
        )
        (root / f"{name}.toml").write_text(
            f'omop_database_url = "sqlite:///{path}"\npolicy_file = "{policy}"\n'
        )
    system = Poc(root / "poc", [s for s, _, _ in SITES], free_port(), str(root / "{site}.toml"))
    system.prepare()
    system.start(timeout=90)
    try:
        yield system, root
    finally:
        from federation.flare import session

        session.close_all()
        system.stop()


@pytest.fixture
def fl_setup(poc, researcher, tmp_path):
    system, _root = poc
    nodes = []
    for i, (name, _, _) in enumerate(SITES):
        org = OrganisationFactory(name=f"FL Hospital {i}", slug=f"fl-hospital-{i}")
        nodes.append(make_fl_site(org, name))
    datasets = [n.served_datasets.get().dataset for n in nodes]
    for dataset in datasets:
        grant_federated_learning(researcher, dataset)
    with override_settings(
        FLARE_ADMIN_STARTUP_KIT=str(system.admin_kit),
        FLARE_ADMIN_USER="admin@optima.example",
        FLARE_WORK_DIR=str(tmp_path / "portal-flare"),
        FLARE_TASK_TIMEOUT_SECONDS=TASK_TIMEOUT,
    ):
        yield system, nodes, datasets


def follow(fl_job, *, timeout: float, until=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fl_job = fl.fl_poll(fl_job_id=fl_job.pk)
        if not fl_job.is_open or (until and until(fl_job)):
            return fl_job
        time.sleep(1.0)
    raise AssertionError(f"FL job still {fl_job.status} after {timeout} s: {fl_job.progress}")


def central_reference(root: Path, params: FederatedLearningParams):
    parts = []
    for name, _, _ in SITES:
        database = connect(f"sqlite:///{root / f'{name}.sqlite3'}")
        parts.append(split(*design(database, params)))
        database.close()
    x = np.vstack([p.x_train for p in parts])
    y = np.concatenate([p.y_train for p in parts])
    xi = np.column_stack([np.ones(len(y)), x])
    beta = np.zeros(xi.shape[1])
    for _ in range(50):
        mu = 1.0 / (1.0 + np.exp(-xi @ beta))
        info = (xi * (mu * (1.0 - mu))[:, None]).T @ xi
        step = np.linalg.pinv(info) @ (xi.T @ (y - mu))
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    x_val = np.vstack([p.x_val for p in parts])
    y_val = np.concatenate([p.y_val for p in parts])
    return beta, x_val, y_val


def replay_fedavg(root: Path, params: FederatedLearningParams) -> np.ndarray:
    parts = []
    for name, _, _ in SITES:
        database = connect(f"sqlite:///{root / f'{name}.sqlite3'}")
        parts.append(split(*design(database, params)))
        database.close()
    template = template_for(params)
    theta = template.init(params.seed)
    weights = np.array([len(p.y_train) for p in parts], dtype=float)
    for round_no in range(params.rounds):
        local = [
            template.train(
                theta,
                p.x_train,
                p.y_train,
                epochs=params.local_epochs,
                learning_rate=params.learning_rate,
                batch_size=params.batch_size,
                l2=params.l2,
                seed=params.seed + round_no,
            )
            for p in parts
        ]
        theta = (weights[:, None] * np.stack(local)).sum(axis=0) / weights.sum()
    return theta


def test_logistic_regression_trains_on_three_flare_sites_close_to_the_central_fit(
    fl_setup, poc, researcher, platform_admin
):
    _system, _nodes, datasets = fl_setup
    started = time.monotonic()
    fl_job = fl.fl_create(
        researcher=researcher, datasets=datasets, params=TRAIN, title="5-year death", submit=False
    )
    fl_job = fl.fl_submit(fl_job_id=fl_job.pk)
    assert fl_job.status == FlJobStatus.SUBMITTED, fl_job.reason
    assert fl_job.flare_job_id

    fl_job = follow(fl_job, timeout=150)
    assert fl_job.status == FlJobStatus.AWAITING_RELEASE, (fl_job.reason, fl_job.progress)
    assert time.monotonic() - started < 150

    # Per-round, per-site progress and metrics came back through FLARE.
    rounds = fl_job.progress["rounds"]
    assert [r["round"] for r in rounds] == list(range(1, 9))
    for r in rounds:
        assert set(r["sites"]) == {s for s, _, _ in SITES}
        assert all(v["status"] == "contributed" for v in r["sites"].values())
        assert r["pooled"]["train_loss"] > 0
    assert rounds[-1]["pooled"]["train_loss"] < rounds[0]["pooled"]["train_loss"]
    final = fl_job.progress["final"]
    assert 0.7 < final["pooled"]["val_auc"] < 0.9

    # The global model against the central reference on the pooled data.
    params = FederatedLearningParams.model_validate(TRAIN)
    beta, x_val, y_val = central_reference(poc[1], params)
    theta = np.asarray(fl_job.global_model["parameters"])
    features = fl_job.global_model["features"]
    assert features == ["age_at_index", "sex_male", "index_year", "stage", "stage_known"]
    known = features.index("stage_known") + 1
    identifiable = [i for i in range(1, len(theta)) if i != known]
    assert np.abs(theta[identifiable] - beta[identifiable]).max() < 0.05
    assert abs((theta[0] + theta[known]) - (beta[0] + beta[known])) < 0.05
    assert np.abs(theta - replay_fedavg(poc[1], params)).max() < 1e-6
    template = template_for(params)
    p_fed, p_ref = template.predict_proba(theta, x_val), template.predict_proba(beta, x_val)
    assert np.abs(p_fed - p_ref).max() < 0.01
    assert abs(auc(y_val, p_fed) - auc(y_val, p_ref)) < 0.005
    # The pooled AUC FLARE reported (from binned counts) is close to the exact one.
    assert abs(final["pooled"]["val_auc"] - auc(y_val, p_fed)) < 0.01

    # Release gate, then the registry.
    model = fl.fl_release(actor=platform_admin, fl_job=fl_job, name="5-year death")
    assert (model.name, model.version) == ("5-year death", 1)
    assert {s["site"] for s in model.sites} == {s for s, _, _ in SITES}
    payload = fl.model_download(actor=researcher, model=model)
    assert np.allclose(fl.predict(payload, x_val), p_fed)


def test_a_site_stopped_mid_job_ends_the_job_failed_naming_it(fl_setup, researcher):
    system, _nodes, datasets = fl_setup
    params = {**TRAIN, "rounds": 60, "local_epochs": 100, "min_sites": 3}
    fl_job = fl.fl_create(researcher=researcher, datasets=datasets, params=params, submit=False)
    fl_job = fl.fl_submit(fl_job_id=fl_job.pk)
    assert fl_job.status == FlJobStatus.SUBMITTED, fl_job.reason
    fl_job = follow(
        fl_job, timeout=60, until=lambda j: len((j.progress or {}).get("rounds") or []) >= 1
    )
    assert fl_job.is_open
    system.stop_site("fl-site-c")
    fl_job = follow(fl_job, timeout=TASK_TIMEOUT + 60)
    assert fl_job.status == FlJobStatus.FAILED
    assert "fl-site-c" in fl_job.reason
    assert fl_job.analysis.status == "failed"
