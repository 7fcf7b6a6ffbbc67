"""Secrets from mounted files (NAME_FILE), the image digest variable and `check` defaults: the node
image is configured by environment variables and secret files only (docs/node-install.md)."""

from __future__ import annotations

import pytest

from optima_node.cli import main
from optima_node.config import ConfigError, load_config
from optima_node.db import connect
from optima_node.synth import synthesise

BASE = {"PORTAL_URL": "https://portal.example"}


def _secret(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_it_reads_the_token_and_database_url_from_files(tmp_path):
    env = {
        **BASE,
        "NODE_TOKEN_FILE": _secret(tmp_path, "token", "node_abc\n"),
        "OMOP_DATABASE_URL_FILE": _secret(tmp_path, "db", "postgresql://u:pw@db:5432/omop\n"),
    }
    config = load_config(None, env)
    assert config.node_token == "node_abc"
    assert config.omop_database_url == "postgresql://u:pw@db:5432/omop"
    assert "pw" not in repr(config) and "node_abc" not in repr(config)


def test_the_variable_wins_over_its_file(tmp_path):
    env = {
        **BASE,
        "NODE_TOKEN": "from-env",
        "NODE_TOKEN_FILE": _secret(tmp_path, "token", "from-file"),
        "OMOP_DATABASE_URL": "sqlite:///x.db",
    }
    assert load_config(None, env).node_token == "from-env"


@pytest.mark.parametrize(
    ("content", "message"), [(None, "cannot read NODE_TOKEN_FILE"), ("\n", "is empty")]
)
def test_it_refuses_a_missing_or_empty_secret_file(tmp_path, content, message):
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    env = {**BASE, "NODE_TOKEN_FILE": str(path), "OMOP_DATABASE_URL": "sqlite:///x.db"}
    with pytest.raises(ConfigError, match=message):
        load_config(None, env)


def test_it_takes_the_image_digest_from_the_environment(tmp_path):
    env = {**BASE, "NODE_TOKEN": "t", "OMOP_DATABASE_URL": "sqlite:///x.db"}
    assert load_config(None, env).image_digest is None
    digest = "sha256:" + "ab" * 32
    assert load_config(None, {**env, "OPTIMA_NODE_IMAGE_DIGEST": digest}).image_digest == digest
    with pytest.raises(ConfigError, match="OPTIMA_NODE_IMAGE_DIGEST must look like"):
        load_config(None, {**env, "OPTIMA_NODE_IMAGE_DIGEST": "latest"})


def test_check_takes_the_database_from_the_environment(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'omop.sqlite3'}"
    db = connect(url)
    synthesise(db, 50, 1, ["lung"])
    db.close()
    monkeypatch.delenv("OMOP_DATABASE_URL", raising=False)
    monkeypatch.setenv("OMOP_DATABASE_URL_FILE", _secret(tmp_path, "db", url))
    assert main(["check"]) == 0
    assert "result: OK" in capsys.readouterr().out


def test_check_without_a_database_says_how_to_give_one(monkeypatch, capsys):
    monkeypatch.delenv("OMOP_DATABASE_URL", raising=False)
    monkeypatch.delenv("OMOP_DATABASE_URL_FILE", raising=False)
    assert main(["check"]) == 2
    assert "give --db or set OMOP_DATABASE_URL" in capsys.readouterr().err
