"""``optima-node central``, the supervisor, without a portal: its configuration, and how it starts,
updates and stops one agent per listed dataset (a scripted listing; agents whose portal is away).
The supervisor against a live portal: tests/central/test_central_node.py."""

from __future__ import annotations

import logging

import pytest

from optima_node.central import (
    CentralConfig,
    DatasetRefused,
    ServedDataset,
    Supervisor,
    load_central_config,
)
from optima_node.cli import main
from optima_node.client import PortalUnavailable, TokenRejected
from optima_node.config import ConfigError
from optima_node.policy import Policy
from tests.processes import wait_for


class ScriptedListing:
    """The portal's side of the central node API: a listing the test edits, tokens counted."""

    def __init__(self) -> None:
        self.entries: dict[int, dict] = {}
        self.tokens_issued: list[int] = []
        self.refused: set[int] = set()

    def datasets(self) -> list[ServedDataset]:
        return [ServedDataset.model_validate(e) for e in self.entries.values()]

    def node_token(self, dataset_id: int) -> str:
        if dataset_id in self.refused:
            raise DatasetRefused("HTTP 409 revoked")
        self.tokens_issued.append(dataset_id)
        return f"node_token_{dataset_id}_{len(self.tokens_issued)}"


class AwayPortal:
    """An agent's portal that is unreachable (or rejects the token): the agent backs off."""

    reject: set[str] = set()

    def __init__(self, base_url: str, token: str) -> None:
        self.token = token

    def heartbeat(self, heartbeat):
        if self.token in self.reject:
            raise TokenRejected("HTTP 401")
        raise PortalUnavailable("away")


def _entry(dataset: int, url: str, version: int = 1, **policy) -> dict:
    return {
        "dataset": dataset,
        "title": f"Dataset {dataset}",
        "version": version,
        "location": {"dialect": "sqlite", "path": url.removeprefix("sqlite:///")},
        "node": None,
        "policy": Policy(**policy).model_dump(mode="json"),
    }


@pytest.fixture
def listing() -> ScriptedListing:
    AwayPortal.reject = set()
    return ScriptedListing()


@pytest.fixture
def supervisor(tmp_path, listing):
    config = CentralConfig(
        portal_url="http://portal.invalid", token="central_x", state_dir=tmp_path / "state"
    )
    made: list[Supervisor] = []

    def _make() -> Supervisor:
        made.append(Supervisor(config, client=listing, portal_client=AwayPortal))
        return made[-1]

    yield _make
    for sup in made:
        sup.shutdown()


def test_it_runs_one_agent_per_dataset_and_keeps_their_tokens(
    supervisor, listing, synth_url, tmp_path
):
    listing.entries = {1: _entry(1, synth_url), 2: _entry(2, synth_url, min_cell_count=11)}
    first = supervisor()
    first.sync()
    assert set(first.served) == {1, 2}
    assert all(s.thread.is_alive() for s in first.served.values())
    assert first.served[2].agent.policy.min_cell_count == 11
    for dataset in (1, 2):
        directory = tmp_path / "state" / f"dataset-{dataset}"
        assert (directory / "node.token").stat().st_mode & 0o777 == 0o600
        assert (directory / "release-ledger.sqlite3").exists()
        assert (directory / "identity.pem").exists()
    first.shutdown()
    assert first.served == {}

    again = supervisor()  # a restart: the tokens kept in the state directory are used
    again.sync()
    assert set(again.served) == {1, 2}
    assert listing.tokens_issued == [1, 2]


def test_a_failing_dataset_does_not_stop_the_others(supervisor, listing, synth_url, caplog):
    listing.entries = {
        1: _entry(1, synth_url),
        2: {**_entry(2, synth_url), "location": {"dialect": "postgresql", "schema": "ds_2"}},
        3: _entry(3, synth_url),
    }
    listing.refused = {3}
    sup = supervisor()
    with caplog.at_level(logging.ERROR, logger="optima_node.central"):
        sup.sync()
    assert set(sup.served) == {1}
    assert "dataset 2: cannot serve it now: a PostgreSQL central copy needs" in caplog.text
    assert "dataset 3: cannot serve it now: HTTP 409 revoked" in caplog.text
    listing.refused = set()
    sup.sync()
    assert set(sup.served) == {1, 3}


def test_a_new_version_reopens_the_database_and_a_new_policy_applies(
    supervisor, listing, synth_url
):
    listing.entries = {1: _entry(1, synth_url)}
    sup = supervisor()
    sup.sync()
    agent = sup.served[1].agent
    opened = agent.db
    listing.entries = {1: _entry(1, synth_url, version=2, require_approval=True)}
    sup.sync()
    assert agent.policy.require_approval is True
    assert sup.served[1].version == 2
    # The agent reopens before its next cycle (its back-off after the away portal: a few s).
    wait_for(lambda: agent.db is not opened, timeout=15, what="the database reopened")
    assert sup.served[1].thread.is_alive()


def test_it_stops_the_agent_of_a_dataset_no_longer_served(supervisor, listing, synth_url):
    listing.entries = {1: _entry(1, synth_url), 2: _entry(2, synth_url)}
    sup = supervisor()
    sup.sync()
    thread = sup.served[2].thread
    del listing.entries[2]
    sup.sync()
    assert set(sup.served) == {1}
    assert not thread.is_alive()


def test_a_rejected_node_token_is_replaced_on_the_next_listing(supervisor, listing, synth_url):
    listing.entries = {1: _entry(1, synth_url)}
    AwayPortal.reject = {"node_token_1_1"}
    sup = supervisor()
    sup.sync()
    wait_for(lambda: not sup.served[1].thread.is_alive(), timeout=10, what="the agent to stop")
    sup.sync()
    assert listing.tokens_issued == [1, 1]
    assert sup.served[1].thread.is_alive()


def test_the_central_credential_refused_stops_the_supervisor(tmp_path):
    class Revoked(ScriptedListing):
        def datasets(self):
            raise TokenRejected("central node credential refused (HTTP 401)")

    config = CentralConfig("http://portal.invalid", "central_x", tmp_path, list_interval=0.1)
    sup = Supervisor(config, client=Revoked(), portal_client=AwayPortal)
    with pytest.raises(TokenRejected):
        sup.run_forever()
    assert sup.served == {}


def test_the_configuration_comes_from_the_environment(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("central_abc\n")
    config = load_central_config(
        {
            "PORTAL_URL": "https://portal.example/",
            "CENTRAL_NODE_TOKEN_FILE": str(secret),
            "CENTRAL_STATE_DIR": str(tmp_path / "state"),
            "CENTRAL_OMOP_DATABASE_URL": "postgresql://u:pw@db/omop",
            "CENTRAL_POLL_INTERVAL": "5",
        }
    )
    assert config.portal_url == "https://portal.example"
    assert config.token == "central_abc"
    assert config.list_interval == 5.0
    assert "central_abc" not in repr(config) and "pw" not in repr(config)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "missing configuration: PORTAL_URL, CENTRAL_NODE_TOKEN, CENTRAL_STATE_DIR"),
        (
            {"PORTAL_URL": "ftp://x", "CENTRAL_NODE_TOKEN": "t", "CENTRAL_STATE_DIR": "/s"},
            "PORTAL_URL must be an http",
        ),
        (
            {
                "PORTAL_URL": "http://x",
                "CENTRAL_NODE_TOKEN": "t",
                "CENTRAL_STATE_DIR": "/s",
                "CENTRAL_POLL_INTERVAL": "0",
            },
            "CENTRAL_POLL_INTERVAL must be positive",
        ),
        (
            {
                "PORTAL_URL": "http://x",
                "CENTRAL_NODE_TOKEN": "t",
                "CENTRAL_STATE_DIR": "/s",
                "CENTRAL_OMOP_DATABASE_URL": "sqlite:///x",
            },
            "CENTRAL_OMOP_DATABASE_URL must start with postgresql://",
        ),
    ],
)
def test_a_bad_configuration_is_named(environ, message):
    with pytest.raises(ConfigError, match=message):
        load_central_config(environ)


def test_the_command_refuses_a_missing_configuration_with_exit_2(monkeypatch, capsys):
    for var in ("PORTAL_URL", "CENTRAL_NODE_TOKEN", "CENTRAL_NODE_TOKEN_FILE", "CENTRAL_STATE_DIR"):
        monkeypatch.delenv(var, raising=False)
    assert main(["central"]) == 2
    assert "missing configuration: PORTAL_URL" in capsys.readouterr().err


def test_a_copy_its_provider_reviews_is_pooled_per_site_so_the_review_stays_in_the_portal(
    supervisor, listing, synth_url
):
    listing.entries = {
        1: _entry(1, synth_url, review_before_release=True),
        2: _entry(2, synth_url),
    }
    sup = supervisor()
    sup.sync()
    reviewed, plain = sup.served[1].agent.policy, sup.served[2].agent.policy
    assert reviewed.review_before_release is True and reviewed.secure_aggregation is False
    assert plain.secure_aggregation is True
    # A provider that turns the review on later: its next analyses are pooled per site too.
    listing.entries[2] = _entry(2, synth_url, review_before_release=True)
    sup.sync()
    assert sup.served[2].agent.policy.secure_aggregation is False
