"""The agent against a fake portal: run --once end to end, token revocation, back-off, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from optima_node.agent import Agent, Backoff
from optima_node.cli import main
from optima_node.client import PortalClient, TokenRejected
from optima_node.db import connect
from optima_node.policy import Policy
from optima_node.schemas import Heartbeat, RunResult
from tests.node.fake_portal import assignment

REPO = Path(__file__).resolve().parents[2]
LUNG = {"condition_concept_ids": [4115276, 4110591]}


@pytest.fixture
def agent_env(monkeypatch, fake_portal, synth_url, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[policy]\nmin_cell_count = 5\nreview_before_release = true\nallowed_analysis_types = ["cohort_count", "characterisation", "kaplan_meier", "logistic_regression"]\n'
    )
    env = {
        "PORTAL_URL": fake_portal.url,
        "NODE_TOKEN": fake_portal.token,
        "OMOP_DATABASE_URL": synth_url,
        "POLICY_FILE": str(policy),
        "POLL_INTERVAL": "0.05",
        "LEDGER_FILE": str(tmp_path / "ledger.sqlite3"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_run_once_end_to_end(agent_env, fake_portal):
    fake_portal.runs.extend(
        [
            assignment(1, "cohort_count", {"cohort": LUNG, "stratify_by": ["sex"]}),
            assignment(2, "characterisation", {"cohort": LUNG}),
            assignment(
                3, "kaplan_meier", {"cohort": LUNG, "time_unit_days": 30, "stratify_by": "sex"}
            ),
            assignment(
                4,
                "logistic_regression",
                {
                    "cohort": LUNG,
                    "outcome": {"kind": "death_within_days", "days": 365},
                    "covariates": ["age_at_index", "sex_male"],
                },
                state={"beta": [0, 0, 0]},
            ),
            assignment(5, "kaplan_meier", {"cohort": LUNG, "time_unit_days": 1}),
            assignment(6, "survival_forest", {}),
            assignment(7, "cohort_count", {"cohort": {"condition_concept_ids": "lung"}}),
        ]
    )
    fake_portal.result_status[2] = 409  # a different result already stored: log and move on
    fake_portal.result_status[6] = 410  # expired: log and move on
    assert main(["run", "--once"]) == 0

    assert all(r["auth"] == f"Node {fake_portal.token}" for r in fake_portal.requests)
    assert all(r["body"] is None for r in fake_portal.requests if r["path"].endswith("/claim/"))
    heartbeat = Heartbeat.model_validate(fake_portal.heartbeats()[0])
    assert heartbeat.dialect == "sqlite" and heartbeat.cdm_version == "5.4"
    assert heartbeat.person_count % 10 == 0 and heartbeat.person_count == 4000
    assert heartbeat.policy.review_before_release and heartbeat.policy.min_cell_count == 5
    assert {(c.type, c.version) for c in heartbeat.capabilities} == {
        ("cohort_count", 1),
        ("characterisation", 1),
        ("kaplan_meier", 1),
        ("logistic_regression", 1),
        ("database_profile", 1),
    }

    results = {r["run_id"]: RunResult.model_validate(r) for r in fake_portal.results()}
    assert sorted(results) == [1, 2, 3, 4, 5, 6, 7]
    assert all(r.hold_for_release and r.agent_version == "0.1.0" for r in results.values())
    for run_id in (1, 2, 3, 4):
        assert results[run_id].status == "completed", run_id
    assert results[4].result["terms"] == ["intercept", "age_at_index", "sex_male"]
    assert results[1].result["rows"][0]["strata"] == {"sex": "female"}
    assert (results[5].status, results[5].reason_code.value, results[5].result) == (
        "refused",
        "time_unit_below_minimum",
        None,
    )
    assert (results[6].status, results[6].reason_code.value) == ("refused", "unsupported_analysis")
    assert (results[7].status, results[7].reason_code.value) == ("refused", "invalid_parameters")
    # the run loop stops claiming once the portal answers 204
    assert fake_portal.requests[-1]["path"] == "/api/node/runs/claim/"


def test_policy_can_forbid_an_analysis_type(agent_env, fake_portal, tmp_path, monkeypatch):
    policy = tmp_path / "strict.toml"
    policy.write_text('allowed_analysis_types = ["cohort_count"]\n')
    monkeypatch.setenv("POLICY_FILE", str(policy))
    fake_portal.runs.append(assignment(1, "kaplan_meier", {"cohort": LUNG}))
    assert main(["run", "--once"]) == 0
    (result,) = fake_portal.results()
    assert (result["status"], result["reason_code"], result["result"]) == (
        "refused",
        "policy_type_not_allowed",
        None,
    )


def test_a_revoked_token_stops_the_agent_with_a_clear_message(agent_env, fake_portal, capsys):
    fake_portal.reject_token_detail = "token revoked"
    assert main(["run", "--once"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "optima-node: node token rejected by the portal: HTTP 401 token revoked"


def test_a_revoked_token_also_ends_the_forever_loop(fake_portal, synth_url):
    fake_portal.reject_token_detail = "token revoked"
    agent = Agent(PortalClient(fake_portal.url, fake_portal.token), connect(synth_url), Policy())
    with pytest.raises(TokenRejected):
        agent.run_forever()


def test_an_unreachable_portal_fails_once_mode(agent_env, monkeypatch, capsys):
    monkeypatch.setenv("PORTAL_URL", "http://127.0.0.1:9")
    assert main(["run", "--once"]) == 4
    assert "portal unreachable" in capsys.readouterr().err


class RecordingStop(threading.Event):
    """Records the waits of the run loop and stops it after a few."""

    def __init__(self, waits: int) -> None:
        super().__init__()
        self.delays: list[float] = []
        self.waits = waits

    def wait(self, timeout=None):
        self.delays.append(timeout)
        if len(self.delays) >= self.waits:
            self.set()
        return self.is_set()


def test_it_backs_off_exponentially_with_jitter_and_a_cap(synth_url):
    stop = RecordingStop(waits=10)
    agent = Agent(
        PortalClient("http://127.0.0.1:9", "t", timeout=1),
        connect(synth_url),
        Policy(),
        stop=stop,
        backoff=Backoff(base=1.0, cap=20.0),
    )
    agent.run_forever()
    delays = stop.delays
    assert len(delays) == 10
    for attempt, delay in enumerate(delays):
        ceiling = min(20.0, 2.0**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 20.0 and delays[-1] >= 10.0


def test_backoff_resets_after_success(fake_portal, synth_url):
    stop = RecordingStop(waits=2)
    backoff = Backoff(attempt=5)
    agent = Agent(
        PortalClient(fake_portal.url, fake_portal.token),
        connect(synth_url),
        Policy(),
        stop=stop,
        backoff=backoff,
    )
    agent.run_forever()
    assert backoff.attempt == 0
    assert stop.delays == [fake_portal.poll_interval_seconds] * 2


def test_sigterm_stops_the_agent_cleanly(agent_env, fake_portal):
    env = {**os.environ, **agent_env, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "optima_node", "run"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 15
        while len(fake_portal.heartbeats()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(fake_portal.heartbeats()) >= 2, "agent never polled"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "received SIGTERM" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()


def test_a_database_failure_backs_off_and_reconnects(fake_portal, synth_url):
    class Broken:
        dialect = "sqlite"

        def __getattr__(self, name):
            raise RuntimeError("connection lost")

        def close(self):
            pass

    stop = RecordingStop(waits=2)
    agent = Agent(
        PortalClient(fake_portal.url, fake_portal.token),
        Broken(),
        Policy(),
        stop=stop,
        reconnect=lambda: connect(synth_url),
    )
    agent.run_forever()
    assert stop.delays[0] >= 1.0  # backed off after the failure
    assert (
        stop.delays[1] == fake_portal.poll_interval_seconds
    )  # then worked on the reopened database
    assert len(fake_portal.heartbeats()) == 1
