"""The site side of federated learning: features with the agent's cohort semantics, the numpy
templates, the pooled AUC from binned counts, and the site policy (no nvflare needed)."""

from __future__ import annotations

import numpy as np
import pytest

from optima_node.analyses.logistic_regression import design as glm_design
from optima_node.cohort import build_cohort
from optima_node.db import connect
from optima_node.flare.client import decode_params, encode_params, evaluate, prepare
from optima_node.flare.features import design, is_validation, split
from optima_node.flare.site import SiteRefused, check_policy, site_config
from optima_node.flare.templates import Template, auc, auc_from_histograms, score_histograms
from optima_node.policy import Policy
from optima_node.schemas import FederatedLearningParams, LogisticRegressionParams
from tests.federation.fl_factories import FL_PARAMS


@pytest.fixture
def omop(site_urls):
    database = connect(site_urls[0])
    yield database
    database.close()


def test_outcome_and_covariates_follow_the_federated_analysis_semantics(omop):
    params = FederatedLearningParams.model_validate(FL_PARAMS)
    x, y, person_id = design(omop, params)
    glm = LogisticRegressionParams.model_validate(
        {
            "cohort": FL_PARAMS["cohort"],
            "outcome": FL_PARAMS["outcome"],
            "covariates": ["age_at_index", "sex_male", "index_year"],
        }
    )
    x_glm, y_glm = glm_design(build_cohort(omop, glm.cohort), glm)
    assert np.array_equal(y, y_glm)
    # Same persons, same values: ours are standardised with fixed constants, the regression's
    # design is centred at the same fixed centres (COVARIATE_CENTRES: age 65, year 2015).
    assert np.allclose(x[:, 0] * 12.0, x_glm[:, 1])
    assert np.allclose(x[:, 2] * 4.5, x_glm[:, 3])
    assert params.features == ["age_at_index", "sex_male", "index_year", "stage", "stage_known"]
    stage = x[:, 3] + 2.5
    assert set(np.unique(stage[x[:, 4] == 1])) <= {1.0, 2.0, 3.0, 4.0}
    assert len(person_id) == len(y)


def test_the_validation_split_is_fixed_and_about_one_in_five(omop):
    params = FederatedLearningParams.model_validate(FL_PARAMS)
    data = split(*design(omop, params))
    share = len(data.y_val) / data.n
    assert 0.15 < share < 0.25
    ids = np.arange(1, 10_001)
    assert np.array_equal(is_validation(ids), is_validation(ids.copy()))


def test_without_stage_the_inputs_are_three():
    params = FederatedLearningParams.model_validate(
        {**FL_PARAMS, "covariates": ["age_at_index", "sex_male", "index_year"]}
    )
    assert params.features == ["age_at_index", "sex_male", "index_year"]


@pytest.mark.parametrize("name", ["logistic_regression", "mlp"])
def test_gradients_match_finite_differences(name):
    rng = np.random.default_rng(1)
    template = Template(name, 3, hidden_units=4)
    x, y = rng.normal(size=(40, 3)), (rng.random(40) < 0.4).astype(float)
    theta = template.init(3) + rng.normal(scale=0.1, size=template.size)
    grad = template.gradient(theta, x, y, l2=0.0)
    eps = 1e-6
    numeric = np.array(
        [
            (template.loss(theta + eps * e, x, y) - template.loss(theta - eps * e, x, y))
            / (2 * eps)
            for e in np.eye(template.size)
        ]
    )
    assert np.allclose(grad, numeric, atol=1e-6)


def test_the_mlp_learns_a_non_linear_signal():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(800, 2))
    y = ((x[:, 0] * x[:, 1]) > 0).astype(float)
    mlp, lr = Template("mlp", 2, hidden_units=8), Template("logistic_regression", 2)
    theta_mlp = mlp.train(mlp.init(0), x, y, epochs=300, learning_rate=1.0, batch_size=64)
    theta_lr = lr.train(lr.init(0), x, y, epochs=300, learning_rate=1.0)
    assert auc(y, mlp.predict_proba(theta_mlp, x)) > 0.9
    assert auc(y, lr.predict_proba(theta_lr, x)) < 0.6


def test_auc_and_its_binned_pooled_version():
    assert auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert auc(np.array([1, 1]), np.array([0.1, 0.2])) is None
    rng = np.random.default_rng(2)
    y = (rng.random(2000) < 0.3).astype(float)
    p = np.clip(0.3 + 0.2 * (y - 0.3) + rng.normal(scale=0.15, size=2000), 0, 1)
    halves = [slice(0, 1000), slice(1000, 2000)]
    hists = [score_histograms(y[h], p[h]) for h in halves]
    pos = np.sum([h[0] for h in hists], axis=0).tolist()
    neg = np.sum([h[1] for h in hists], axis=0).tolist()
    assert abs(auc_from_histograms(pos, neg) - auc(y, p)) < 0.01


def test_parameters_travel_as_one_shell_safe_token():
    params = {**FL_PARAMS, "cohort": {"condition_concept_ids": [1, 2], "sex": "female"}}
    token = encode_params(params)
    assert " " not in token and '"' not in token
    assert decode_params(token) == params


def test_site_policy_decides_participation_and_templates():
    with pytest.raises(SiteRefused, match="does not take part"):
        check_policy(Policy(), "logistic_regression")
    with pytest.raises(SiteRefused, match="'mlp' is not allowed"):
        check_policy(
            Policy(federated_learning=True, allowed_model_templates=["logistic_regression"]), "mlp"
        )
    check_policy(Policy(federated_learning=True, allowed_model_templates=["mlp"]), "mlp")
    summary = Policy(federated_learning=True, allowed_model_templates=["mlp"]).summary()
    assert summary.allowed_model_templates == ["mlp"]


def test_the_flare_client_reads_the_node_agents_config_per_site(tmp_path, site_urls):
    policy = tmp_path / "policy.toml"
    policy.write_text(
        Policy(federated_learning=True, allowed_model_templates=["logistic_regression"]).to_toml()
    )
    (tmp_path / "site-x.toml").write_text(
        f'[node]\nomop_database_url = "{site_urls[1]}"\npolicy_file = "{policy}"\n'
    )
    env = {"OPTIMA_NODE_CONFIG": str(tmp_path / "{site}.toml")}
    config = site_config("site-x", env)
    assert config.policy.federated_learning
    with pytest.raises(SiteRefused, match=r"not found|unusable"):
        site_config("site-y", env)
    with pytest.raises(SiteRefused, match="OPTIMA_NODE_CONFIG is not set"):
        site_config("site-x", {})


def test_a_site_prepares_its_data_or_refuses(tmp_path, site_urls, monkeypatch):
    allowed = tmp_path / "allowed.toml"
    allowed.write_text(
        Policy(federated_learning=True, allowed_model_templates=["logistic_regression"]).to_toml()
    )
    (tmp_path / "s1.toml").write_text(
        f'omop_database_url = "{site_urls[0]}"\npolicy_file = "{allowed}"\n'
    )
    (tmp_path / "s2.toml").write_text(f'omop_database_url = "{site_urls[0]}"\n')
    monkeypatch.setenv("OPTIMA_NODE_CONFIG", str(tmp_path / "{site}.toml"))
    params = FederatedLearningParams.model_validate(FL_PARAMS)
    template, data = prepare("s1", params)
    metrics = evaluate(template, template.init(0), data.x_val, data.y_val)
    assert metrics["val_auc"] == 0.5 and metrics["n_val"] == len(data.y_val)
    assert sum(metrics["val_hist_pos"]) + sum(metrics["val_hist_neg"]) == len(data.y_val)
    with pytest.raises(SiteRefused, match="does not take part"):
        prepare("s2", params)
