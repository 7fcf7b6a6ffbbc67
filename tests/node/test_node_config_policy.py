"""Configuration (environment over TOML file) and the site policy file."""

from __future__ import annotations

import pytest

from optima_node.cli import main
from optima_node.config import ConfigError, load_config
from optima_node.policy import Policy, PolicyError, load_policy

ENV = {
    "PORTAL_URL": "https://portal.example/",
    "NODE_TOKEN": "tok",
    "OMOP_DATABASE_URL": "sqlite:///x.db",
}


def test_environment_wins_over_the_file(tmp_path):
    path = tmp_path / "node.toml"
    path.write_text(
        '[node]\nportal_url = "https://file.example"\nnode_token = "from-file"\nomop_database_url = "postgresql://u:pw@db/omop"\ncdm_schema = "cdm"\npoll_interval = 12\n'
    )
    config = load_config(str(path), {"NODE_TOKEN": "from-env"})
    assert (config.portal_url, config.node_token, config.cdm_schema, config.poll_interval) == (
        "https://file.example",
        "from-env",
        "cdm",
        12.0,
    )
    assert "from-env" not in repr(config) and "pw" not in repr(config)


def test_token_from_a_file(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("s3cret\n")
    config = load_config(
        None,
        {**{k: v for k, v in ENV.items() if k != "NODE_TOKEN"}, "NODE_TOKEN_FILE": str(secret)},
    )
    assert config.node_token == "s3cret" and config.portal_url == "https://portal.example"


@pytest.mark.parametrize(
    "env, message",
    [
        ({}, "missing configuration: PORTAL_URL, NODE_TOKEN, OMOP_DATABASE_URL"),
        ({**ENV, "PORTAL_URL": "ftp://x"}, "PORTAL_URL must be an http(s) URL"),
        ({**ENV, "OMOP_DATABASE_URL": "mysql://x"}, "OMOP_DATABASE_URL must start with"),
        ({**ENV, "POLL_INTERVAL": "soon"}, "POLL_INTERVAL must be a number"),
        ({**ENV, "POLL_INTERVAL": "0"}, "POLL_INTERVAL must be positive"),
    ],
)
def test_bad_configuration(env, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(None, env)


def test_unknown_config_keys_are_errors(tmp_path):
    path = tmp_path / "node.toml"
    path.write_text('portal_ulr = "https://x"\n')
    with pytest.raises(ConfigError, match="unknown keys portal_ulr"):
        load_config(str(path), {})


def test_policy_defaults():
    policy = load_policy(None)
    assert policy == Policy()
    assert (policy.min_cell_count, policy.glm_max_params_ratio, policy.km_min_time_unit_days) == (
        5,
        0.33,
        30,
    )
    assert not (
        policy.require_approval or policy.review_before_release or policy.federated_learning
    )
    assert [t.value for t in policy.allowed_analysis_types] == [
        "cohort_count",
        "characterisation",
        "kaplan_meier",
        "logistic_regression",
        "database_profile",
    ]
    assert policy.allowed_model_templates == []


@pytest.mark.parametrize(
    "text, message",
    [
        ("min_cell_count = 0\n", "min_cell_count"),
        ('min_cell_count = "five"\n', "min_cell_count"),
        ('allowed_analysis_types = ["deep_learning"]\n', "allowed_analysis_types"),
        ("glm_max_params_ratio = 2\n", "glm_max_params_ratio"),
        ("mni_cell_count = 5\n", "mni_cell_count"),
        ("min_cell_count = \n", "cannot read policy file"),
        ("[policy]\nmin_cell_count = 5\n[other]\nx = 1\n", "under \\[policy\\]"),
    ],
)
def test_bad_policy_files(tmp_path, text, message):
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=message):
        load_policy(path)


def test_policy_show(tmp_path, capsys):
    path = tmp_path / "policy.toml"
    path.write_text("[policy]\nmin_cell_count = 10\nrequire_approval = true\n")
    assert main(["policy", "show", "--policy-file", str(path)]) == 0
    out = capsys.readouterr().out
    assert "min_cell_count = 10" in out and "require_approval = true" in out
    # the printed policy is itself a valid policy file
    printed = tmp_path / "printed.toml"
    printed.write_text("\n".join(line for line in out.splitlines() if not line.startswith("#")))
    assert load_policy(printed) == load_policy(path)


def test_policy_show_with_a_bad_file_exits_nonzero(tmp_path, capsys):
    assert main(["policy", "show", "--policy-file", str(tmp_path / "missing.toml")]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"optima-node: policy file not found: {tmp_path / 'missing.toml'}"
    )
