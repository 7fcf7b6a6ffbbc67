"""The node's side of secure aggregation that needs no portal: the stricter minimum cell count,
where the identity and the review directory live, the review CLI and the heartbeat's report."""

from __future__ import annotations

import itertools
import stat
from types import SimpleNamespace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from optima_node import secagg
from optima_node.agent import Agent, _BoundedCache
from optima_node.cli import main
from optima_node.config import load_config
from optima_node.policy import Policy
from optima_node.review import ReviewStore
from optima_node.schemas import RunAssignment

ENV = {
    "PORTAL_URL": "https://portal.example/",
    "NODE_TOKEN": "tok",
    "OMOP_DATABASE_URL": "sqlite:///x.db",
}


def assignment(**extra) -> RunAssignment:
    return RunAssignment(
        run_id=7,
        attempt=1,
        analysis_id=3,
        type="cohort_count",
        version=1,
        params={"cohort": {"condition_concept_ids": [1]}},
        **extra,
    )


def test_it_applies_the_stricter_of_the_terms_and_the_site_policy():
    agent = Agent(client=None, db=None, policy=Policy(min_cell_count=5))
    assert agent.policy_for(assignment(min_cell_count=10)).min_cell_count == 10
    assert agent.policy_for(assignment(min_cell_count=3)).min_cell_count == 5
    assert agent.policy_for(assignment()).min_cell_count == 5


def test_the_identity_and_review_directory_live_beside_the_ledger(tmp_path):
    config = load_config(None, {**ENV, "LEDGER_FILE": str(tmp_path / "ledger.sqlite3")})
    assert config.identity_key_file == str(tmp_path / "ledger.identity.pem")
    assert config.review_dir == str(tmp_path / "ledger.review")
    custom = load_config(None, {**ENV, "IDENTITY_KEY_FILE": "/x/id.pem", "REVIEW_DIR": "/x/r"})
    assert (custom.identity_key_file, custom.review_dir) == ("/x/id.pem", "/x/r")


def test_the_heartbeat_reports_the_policy_and_the_identity(synth_url):
    from optima_node.db import connect

    identity = Ed25519PrivateKey.generate()
    agent = Agent(client=None, db=connect(synth_url), policy=Policy(), identity=identity)
    beat = agent.build_heartbeat()
    agent.db.close()
    assert beat.identity_key == secagg.public_identity(identity)
    assert beat.policy.secure_aggregation and beat.policy.secure_aggregation_min_nodes == 3


def test_a_site_admin_reviews_held_contributions_with_the_cli(tmp_path, capsys, monkeypatch):
    ledger = tmp_path / "ledger.sqlite3"
    for key, value in {**ENV, "LEDGER_FILE": str(ledger)}.items():
        monkeypatch.setenv(key, value)
    store = ReviewStore(tmp_path / "ledger.review")
    table = {"stratify_by": ["sex"], "rows": [{"strata": {"sex": "male"}, "count": 3}]}
    store.hold(7, {"run": {}, "type": "cohort_count", "analysis_id": "3", "table": table})
    store.hold(8, {"run": {}, "type": "kaplan_meier", "analysis_id": "4", "table": {}})
    path = tmp_path / "ledger.review" / "run-7.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    assert main(["review", "list"]) == 0
    listed = capsys.readouterr().out
    assert "run 7" in listed and "run 8" in listed and "pending" in listed
    assert main(["review", "show", "7"]) == 0
    assert '"count": 3' in capsys.readouterr().out  # the admin sees the cleartext cell
    assert main(["review", "release", "7"]) == 0
    assert main(["review", "decline", "8", "--note", "too early"]) == 0
    assert {h.run_id: h.status for h in store.all()} == {7: "released", 8: "declined"}
    assert main(["review", "release", "8"]) == 2  # already decided
    assert "already declined" in capsys.readouterr().err


def test_identity_prints_a_stable_fingerprint(tmp_path, capsys, monkeypatch):
    for key, value in {**ENV, "LEDGER_FILE": str(tmp_path / "l.sqlite3")}.items():
        monkeypatch.setenv(key, value)
    assert main(["identity"]) == 0
    first = capsys.readouterr().out
    assert main(["identity"]) == 0
    assert capsys.readouterr().out == first
    key_file = tmp_path / "l.identity.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    public = secagg.public_identity(secagg.load_or_create_identity(key_file))
    assert secagg.fingerprint(public) in first


def test_a_cleared_cohort_cache_forgets_its_entries():
    cache = _BoundedCache()
    cache["cohort:x"] = 1
    cache.clear()
    assert "cohort:x" not in cache


def test_between_cycles_the_agent_polls_open_secure_rounds_with_back_off(monkeypatch):
    import time

    import optima_node.agent as agent_module

    monkeypatch.setattr(agent_module, "SECURE_POLL_MIN", 0.02)
    agent = Agent(client=None, db=None, policy=Policy(), poll_interval=0.3)
    polls: list[float] = []

    def step(hold: float = 0.0) -> int:
        assert hold == 0  # nothing to long-poll for: the key is not posted yet
        polls.append(time.monotonic())
        return 0

    monkeypatch.setattr(agent, "secure_step", step)
    agent.secure_work[1] = SimpleNamespace(held=True, key=None, masked_posted=False)
    started = time.monotonic()
    agent._wait_between_cycles()
    assert 0.25 <= time.monotonic() - started < 1.0  # one poll interval, not more
    assert 3 <= len(polls) <= 6  # 0.02, 0.04, 0.08, 0.16 …: backing off, not spinning
    agent.secure_work.clear()
    polls.clear()
    agent._wait_between_cycles()
    assert polls == []  # nothing open: a plain wait


def _awaiting_peers() -> SimpleNamespace:
    return SimpleNamespace(held=False, key=object(), masked_posted=False)


def test_while_its_key_waits_for_the_peers_the_agent_long_polls_the_portal(monkeypatch):
    import time

    agent = Agent(client=None, db=None, policy=Policy(), poll_interval=0.3)
    holds: list[float] = []

    def step(hold: float = 0.0) -> int:
        holds.append(hold)
        time.sleep(hold)  # a portal that holds the request while nothing moves
        return 0

    monkeypatch.setattr(agent, "secure_step", step)
    agent.secure_work[1] = _awaiting_peers()
    started = time.monotonic()
    agent._wait_between_cycles()
    assert 0.25 <= time.monotonic() - started < 1.0
    assert holds and all(0 < h <= 0.3 for h in holds)  # no more than the interval left
    assert len(holds) <= 3  # held polls, not a spin

    # Several rounds open: a held poll would stall the others, so each is polled in turn.
    agent.secure_work[2] = _awaiting_peers()
    holds.clear()
    agent._wait_between_cycles()
    assert holds and set(holds) == {0.0}


def test_a_poll_the_portal_does_not_hold_is_retried_shortly_not_in_a_spin(monkeypatch):

    import optima_node.agent as agent_module

    monkeypatch.setattr(agent_module, "SECURE_POLL_MIN", 0.02)
    agent = Agent(client=None, db=None, policy=Policy(), poll_interval=0.3)
    polls: list[float] = []

    def step(hold: float = 0.0) -> int:
        polls.append(hold)
        return 0  # answered at once, nothing moved

    monkeypatch.setattr(agent, "secure_step", step)
    agent.secure_work[1] = _awaiting_peers()
    agent._wait_between_cycles()
    assert 5 <= len(polls) <= 16  # every SECURE_POLL_MIN over the 0.3 s interval, not a spin
    assert all(h > 0 for h in polls)  # each time asking to be held again


def test_a_poll_the_portal_could_not_hold_is_retried_soon_then_backs_off(monkeypatch):
    """A node whose long-poll found the portal's slots busy must not be the round's straggler
    (it used to wait SECURE_POLL_MIN, a quarter second, after the others had masked): it asks
    again after SECURE_RETRY_MIN, doubling up to SECURE_POLL_MIN."""
    import time

    import optima_node.agent as agent_module

    agent = Agent(client=None, db=None, policy=Policy(), poll_interval=0.5)
    polls: list[float] = []

    def step(hold: float = 0.0) -> int:
        polls.append(time.monotonic())
        return 0  # answered at once, nothing moved

    monkeypatch.setattr(agent, "secure_step", step)
    agent.secure_work[1] = _awaiting_peers()
    agent._wait_between_cycles()
    gaps = [b - a for a, b in itertools.pairwise(polls)]
    assert gaps[0] < agent_module.SECURE_POLL_MIN / 2  # soon
    assert gaps == sorted(gaps) or len(gaps) < 3  # then backing off
    assert len(polls) <= 6  # 0.04, 0.08, 0.16, 0.25 …: not a spin


def test_the_agent_applies_an_edited_policy_file_at_its_next_cycle(tmp_path, caplog):
    path = tmp_path / "policy.toml"
    path.write_text("min_cell_count = 5\n")
    agent = Agent(client=None, db=None, policy=Policy(min_cell_count=5), policy_file=str(path))
    assert agent.reload_policy() is False  # unchanged
    path.write_text("min_cell_count = 10\nsecure_aggregation = false\n")
    assert agent.reload_policy() is True
    assert agent.policy.min_cell_count == 10 and agent.policy.secure_aggregation is False


def test_the_next_heartbeat_reports_the_edited_policy(tmp_path, synth_url):
    from optima_node.db import connect

    path = tmp_path / "policy.toml"
    path.write_text("secure_aggregation = true\n")
    beats = []
    client = SimpleNamespace(
        heartbeat=lambda beat: beats.append(beat) or SimpleNamespace(poll_interval_seconds=30),
        claim=lambda: None,
    )
    agent = Agent(client=client, db=connect(synth_url), policy=Policy(), policy_file=str(path))
    try:
        agent.cycle()
        path.write_text("secure_aggregation = false\n")
        agent.cycle()
    finally:
        agent.db.close()
    assert [b.policy.secure_aggregation for b in beats] == [True, False]


def test_a_policy_file_that_no_longer_loads_keeps_the_policy_in_force(tmp_path, caplog):
    path = tmp_path / "policy.toml"
    path.write_text("min_cell_count = 10\n")
    agent = Agent(client=None, db=None, policy=Policy(min_cell_count=10), policy_file=str(path))
    path.write_text("min_cell_count = 0\n")  # below the floor: invalid, never applied
    assert agent.reload_policy() is False
    assert agent.policy.min_cell_count == 10
    assert "invalid policy file" in caplog.text and "the policy in force stays" in caplog.text
    path.unlink()
    assert agent.reload_policy() is False
    assert agent.policy.min_cell_count == 10
    path.write_text("min_cell_count = 20\n")
    assert agent.reload_policy() is True and agent.policy.min_cell_count == 20
