"""The run loop: heartbeat, claim, execute behind the disclosure gate, post; back off when offline."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from optima_node import __version__, secagg, secure_run
from optima_node.analyses import REGISTRY, AnalysisRefused
from optima_node.analyses.common import load_cohort
from optima_node.analyses.released import released_sets
from optima_node.client import PortalClient, PortalProtocolError, PortalUnavailable, TokenRejected
from optima_node.db import Database
from optima_node.disclosure import Decision, Refused, Released, gate
from optima_node.ledger import ReleaseLedger, Requester, params_digest
from optima_node.policy import Policy, PolicyError, load_policy
from optima_node.review import ReviewError, ReviewStore
from optima_node.schemas import (
    CAPABILITIES,
    PARAMS_MODELS,
    Capability,
    Heartbeat,
    ReasonCode,
    RunAssignment,
    RunResult,
    SecurePeers,
)

log = logging.getLogger("optima_node")

MAX_RUNS_PER_CYCLE = 100  # so a busy portal cannot starve heartbeats
PERSON_COUNT_TTL_SECONDS = 600.0
SECURE_POLL_MIN = 0.25  # seconds between peer polls while a secure round moves
# After a long-poll the portal answered at once (its held-poll slots were busy): poll again after
# this, doubling up to SECURE_POLL_MIN, so a node that found no slot is not the round's straggler.
SECURE_RETRY_MIN = 0.04
SECURE_LONG_POLL = 5.0  # seconds the portal may hold a peers poll while keys are still missing


@dataclass
class Backoff:
    """Exponential back-off with full jitter, capped; reset after any success."""

    base: float = 2.0
    cap: float = 300.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * (2**self.attempt))
        self.attempt += 1
        return ceiling * (0.5 + 0.5 * self.rng.random())

    def reset(self) -> None:
        self.attempt = 0


class _BoundedCache(OrderedDict[str, Any]):
    """The few most recent cohorts, so GLM rounds do not rebuild them every time. Entries expire
    so that a long-running agent picks up a refreshed CDM (e.g. after a nightly ETL)."""

    def __init__(self, size: int = 4, ttl_seconds: float = 3600.0) -> None:
        super().__init__()
        self.size = size
        self.ttl_seconds = ttl_seconds
        self._stored: dict[str, float] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._stored[key] = time.monotonic()
        self.move_to_end(key)
        while len(self) > self.size:
            oldest, _ = self.popitem(last=False)
            self._stored.pop(oldest, None)

    def clear(self) -> None:
        # Also forget the timestamps: otherwise a cleared key still "contains" (and then fails).
        super().clear()
        self._stored.clear()

    def __contains__(self, key: object) -> bool:
        stored = self._stored.get(key) if isinstance(key, str) else None
        if stored is None:
            return False
        if time.monotonic() - stored > self.ttl_seconds:
            del self[key]
            del self._stored[key]
            return False
        return True


@dataclass
class Agent:
    client: PortalClient
    db: Database
    policy: Policy
    poll_interval: float = 30.0
    stop: threading.Event = field(default_factory=threading.Event)
    backoff: Backoff = field(default_factory=Backoff)
    cache: _BoundedCache = field(default_factory=_BoundedCache)
    # Reopens the database after an unexpected error (a dropped PostgreSQL connection).
    reconnect: Callable[[], Database] | None = None
    # What this node released to whom; the CLI opens the site's file (config ``ledger_file``).
    # An agent built without one keeps its history in memory for its lifetime.
    ledger: ReleaseLedger = field(default_factory=ReleaseLedger.in_memory)
    # Secure aggregation: the long-term identity that signs round keys (None: the node takes no
    # part), the review directory of the release gate, and the secure runs in progress.
    identity: Ed25519PrivateKey | None = None
    reviews: ReviewStore | None = None
    secure_work: dict[int, secure_run.SecureWork] = field(default_factory=dict)
    # The node image's digest, reported in heartbeats (None outside the image).
    image_digest: str | None = None
    # The site policy's file (None: the policy was given, not read): re-read at each cycle when it
    # changed, so a site admin's edit applies to the next claims without a restart.
    policy_file: str | None = None
    # Set by a supervisor (``optima-node central``) when a new version of the data is served under
    # the same name: the agent reopens its database before its next cycle (a SQLite reader would
    # otherwise keep reading the old file).
    reopen: threading.Event = field(default_factory=threading.Event)
    _person_count: tuple[float, int] | None = None
    _policy_stamp: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self._policy_stamp = self._stamp()
        if self.reviews is not None:
            for work in secure_run.resume_held(self.reviews):
                self.secure_work[work.run.run_id] = work

    # --- site policy ---------------------------------------------------------------------------

    def _stamp(self) -> tuple[int, int] | None:
        if not self.policy_file:
            return None
        try:
            stat = os.stat(self.policy_file)
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def reload_policy(self) -> bool:
        """Re-read the policy file if it changed; True when the policy in force changed. A file
        that no longer loads (missing, invalid) keeps the policy in force, and says so in the log
        once per change: a typo must never open the gate wider or stop the node."""
        stamp = self._stamp()
        if not self.policy_file or stamp == self._policy_stamp:
            return False
        self._policy_stamp = stamp
        try:
            policy = load_policy(self.policy_file)
        except PolicyError as exc:
            log.error("%s; the policy in force stays", exc)
            return False
        if policy == self.policy:
            return False
        log.warning("site policy reloaded from %s: %s", self.policy_file, policy.summary())
        self.policy = policy
        return True

    # --- heartbeat --------------------------------------------------------------------------

    def build_heartbeat(self) -> Heartbeat:
        cdm_version, vocabulary_version = "unknown", "unknown"
        try:
            if self.db.has_table("cdm_source"):
                sql = f"SELECT cdm_version, vocabulary_version FROM {self.db.t('cdm_source')}"  # noqa: S608
                rows = self.db.execute(sql)
                if rows:
                    cdm_version = str(rows[0][0] or "unknown")
                    vocabulary_version = str(rows[0][1] or "unknown")
            person_count = self._rounded_person_count()
        finally:
            self.db.rollback()
        return Heartbeat(
            agent_version=__version__,
            capabilities=[Capability(type=t, version=v) for t, v in CAPABILITIES],
            cdm_version=cdm_version,
            vocabulary_version=vocabulary_version,
            dialect=self.db.dialect,
            person_count=person_count,
            policy=self.policy.summary(),
            identity_key=secagg.public_identity(self.identity) if self.identity else None,
            image_digest=self.image_digest,
        )

    def _rounded_person_count(self) -> int:
        now = time.monotonic()
        if self._person_count is None or now - self._person_count[0] > PERSON_COUNT_TTL_SECONDS:
            count = int(self.db.execute(f"SELECT COUNT(*) FROM {self.db.t('person')}")[0][0])  # noqa: S608
            self._person_count = (now, round(count, -1))
        return self._person_count[1]

    # --- one run ----------------------------------------------------------------------------

    def execute(self, run: RunAssignment) -> RunResult:
        status, result, reason = "completed", None, None
        try:
            decision = self._decide(run)
        except Exception:
            # The traceback stays in the local log; the portal learns only that it failed.
            log.exception("run %s (%s v%s) failed", run.run_id, run.type, run.version)
            status, reason = "failed", ReasonCode.ANALYSIS_ERROR
        else:
            if isinstance(decision, Released):
                result = decision.payload()
            else:
                status, reason = "refused", decision.reason_code
        finally:
            self.db.rollback()
        return RunResult(
            run_id=run.run_id,
            attempt=run.attempt,
            status=status,
            result=result,
            reason_code=reason,
            hold_for_release=self.policy.review_before_release,
            agent_version=__version__,
        )

    def policy_for(self, run: RunAssignment) -> Policy:
        """The site policy, with the stricter of its minimum cell count and the one the portal
        sends from the datasets' terms of use (the portal can tighten, never loosen)."""
        if run.min_cell_count and run.min_cell_count > self.policy.min_cell_count:
            return self.policy.model_copy(update={"min_cell_count": run.min_cell_count})
        return self.policy

    def _decide(self, run: RunAssignment) -> Decision:
        policy = self.policy_for(run)
        key = (run.type, run.version)
        runner = REGISTRY.get(key)
        if runner is None:
            return Refused(ReasonCode.UNSUPPORTED_ANALYSIS)
        if not policy.allows(run.type):
            return Refused(ReasonCode.POLICY_TYPE_NOT_ALLOWED)
        try:
            params = PARAMS_MODELS[key].model_validate(run.params)
        except ValidationError:
            return Refused(ReasonCode.INVALID_PARAMETERS)
        try:
            output = runner(self.db, params, run.state, policy, self.cache)
        except AnalysisRefused as refusal:
            return Refused(refusal.reason)
        except ValidationError:
            return Refused(ReasonCode.INVALID_PARAMETERS)
        decision = gate(run.type, run.version, output, policy)
        if isinstance(decision, Released):
            return self._check_differencing(run, params, decision, policy)
        return decision

    def _check_differencing(
        self, run: RunAssignment, params: Any, decision: Released, policy: Policy
    ) -> Decision:
        """The last step before release: the ledger compares the persons this result reveals
        with what was released before (and records them); a small difference refuses."""
        if not hasattr(params, "cohort"):
            return decision  # the database profile describes the database, not a cohort
        digest = params_digest(run.type, params.model_dump_json())
        analysis_id = str(run.analysis_id)
        sets = None
        # A regression's later rounds release the same persons as its first: linked, not recomputed.
        if run.round == 1 or not self.ledger.repeat_of_recorded(analysis_id, digest):
            cohort = load_cohort(self.db, params.cohort, self.cache)
            sets = released_sets(run.type, params, decision.result, cohort)
        released = self.ledger.check_and_record(
            who=Requester(run.requester_id, tuple(run.project_ids)),
            analysis_type=run.type,
            analysis_id=analysis_id,
            run_id=run.run_id,
            round_=run.round,
            digest_of_params=digest,
            sets=sets,
            min_cell_count=policy.min_cell_count,
            scope=policy.differencing_scope,
        )
        return decision if released else Refused(ReasonCode.DIFFERENCING_RISK)

    # --- secure aggregation (optima_node.secure_run) ---------------------------------------

    def secure_begin(self, run: RunAssignment) -> None:
        """A claimed secure run: compute and keep the contribution, then hold it for review or
        announce this node's key for the round."""
        assert run.secure is not None
        try:
            if self.identity is None:
                raise secure_run.SecureRefused(
                    ReasonCode.SECURE_AGGREGATION_REFUSED, "the node has no identity key"
                )
            if self.policy.review_before_release and self.reviews is None:
                raise secure_run.SecureRefused(
                    ReasonCode.SECURE_AGGREGATION_REFUSED, "no review directory to hold it in"
                )
            table = secure_run.raw_table(self.db, run, self.policy, self.cache)
            vector = secure_run.encode(run, table)
        except secure_run.SecureRefused as refusal:
            log.info("run %s: not taking part in secure aggregation (%s)", run.run_id, refusal)
            self._secure_end(run, "refused", refusal.reason)
            return
        except Exception:
            log.exception("run %s (%s v%s) failed", run.run_id, run.type, run.version)
            self._secure_end(run, "failed", ReasonCode.ANALYSIS_ERROR)
            return
        finally:
            self.db.rollback()
        work = secure_run.SecureWork(run=run, vector=vector, round_id=run.secure.round_id)
        self.secure_work[run.run_id] = work
        if self.policy.review_before_release:
            assert self.reviews is not None
            self.reviews.hold(run.run_id, secure_run.review_record(run, table))
            work.held = True
            self.client.secure_hold(run.run_id, secure_run.hold_post(work))
            log.info("run %s: held for review at the node (optima-node review)", run.run_id)
            return
        self._announce(work)

    def _announce(self, work: secure_run.SecureWork) -> None:
        assert work.run.secure is not None and self.identity is not None
        work.key = secagg.new_round_key(
            self.identity,
            analysis_id=int(work.run.analysis_id),
            round_id=work.round_id,
            node_id=work.run.secure.node_id,
            vector_length=len(work.vector),
        )
        work.masked_posted = False
        outcome, peers = self.client.secure_announce(
            work.run.run_id, secure_run.secure_key_post(work)
        )
        if outcome == "gone":
            self._secure_forget(work.run.run_id)
        elif peers is not None:  # this node's key completed the round: mask at once
            self._mask_and_post(work, peers)

    def _secure_forget(self, run_id: int) -> None:
        self.secure_work.pop(run_id, None)
        if self.reviews is not None:
            self.reviews.forget(run_id)

    def _secure_end(self, run: RunAssignment, status: str, reason: ReasonCode) -> None:
        """Leave the round: the run is refused or failed at the portal (a reason code only)."""
        self._secure_forget(run.run_id)
        self.client.post_result(
            RunResult(
                run_id=run.run_id,
                attempt=run.attempt,
                status=status,
                result=None,
                reason_code=reason,
                hold_for_release=False,
                agent_version=__version__,
            )
        )

    def secure_step(self, hold: float = 0.0) -> int:
        """Move every secure run in progress one step; returns how many made progress. ``hold``:
        seconds the portal may hold the peers poll of a run whose key is in but not its peers'."""
        progress = 0
        for work in list(self.secure_work.values()):
            if self.stop.is_set():
                break
            progress += self._secure_step(work, hold)
        return progress

    def _awaiting_peers(self) -> bool:
        """One secure run in progress, and it waits for its peers' keys: worth a long-poll. With
        several, each is polled in turn with the short back-off (one held poll would stall the
        others)."""
        if len(self.secure_work) != 1:
            return False
        work = next(iter(self.secure_work.values()))
        return not work.held and work.key is not None and not work.masked_posted

    def _secure_step(self, work: secure_run.SecureWork, hold: float = 0.0) -> int:
        run_id = work.run.run_id
        if work.held:
            try:
                held = self.reviews.get(run_id) if self.reviews is not None else None
            except ReviewError:
                held = None
            if held is None:
                self.secure_work.pop(run_id, None)
                return 0
            if held.status == "pending":
                return 0
            if held.status == "declined":
                self._secure_end(work.run, "refused", ReasonCode.RELEASE_DECLINED)
                return 1
            work.held = False
            self._announce(work)
            return 1
        waiting = work.key is not None and not work.masked_posted
        peers = self.client.secure_peers(run_id, wait=hold if waiting else 0.0)
        if peers is None or peers.status == "summed":
            self._secure_forget(run_id)
            return 0
        if peers.round_id != work.round_id or work.key is None:
            # A new round (a node was lost): a fresh key, never the old one.
            work.round_id = peers.round_id
            self._announce(work)
            return 1
        return self._mask_and_post(work, peers)

    def _mask_and_post(self, work: secure_run.SecureWork, peers: SecurePeers) -> int:
        run_id = work.run.run_id
        if peers.round_id != work.round_id or peers.status != "masking" or work.masked_posted:
            return 0
        try:
            secure_run.check_peers(peers, work, self.policy)
            masked = secagg.mask(
                work.vector,
                key=work.key,
                peers=peers.announcements,
                identities=peers.identities,
                analysis_id=int(work.run.analysis_id),
                round_id=work.round_id,
            )
        except secagg.SecAggError as exc:
            log.warning("run %s: secure round refused: %s", run_id, exc.reason)
            self._secure_end(work.run, "refused", ReasonCode.SECURE_AGGREGATION_REFUSED)
            return 1
        work.masked_posted = True
        self.client.secure_post_masked(run_id, secure_run.masked_post(work, masked))
        return 1

    # --- loop -------------------------------------------------------------------------------

    def cycle(self) -> int:
        """Heartbeat, move secure rounds on, then claim and execute until the portal has nothing
        more. Returns the runs done and secure steps made."""
        self.reload_policy()
        if self.reopen.is_set():
            self.reopen.clear()
            self._reopen_database()
        ack = self.client.heartbeat(self.build_heartbeat())
        self.poll_interval = ack.poll_interval_seconds
        done = self.secure_step()
        while done < MAX_RUNS_PER_CYCLE and not self.stop.is_set():
            run = self.client.claim()
            if run is None:
                break
            if run.secure is not None:
                self.secure_begin(run)
                done += 1
                continue
            started = time.monotonic()
            outcome_result = self.execute(run)
            outcome = self.client.post_result(outcome_result)
            log.info(
                "run %s attempt %s (%s v%s round %s): %s%s in %.1fs; portal: %s",
                run.run_id,
                run.attempt,
                run.type,
                run.version,
                run.round,
                outcome_result.status,
                f" ({outcome_result.reason_code.value})" if outcome_result.reason_code else "",
                time.monotonic() - started,
                outcome,
            )
            if outcome == "conflict":
                log.warning(
                    "run %s: the portal already holds a different result; moving on", run.run_id
                )
            elif outcome == "gone":
                log.warning("run %s expired or was cancelled at the portal; moving on", run.run_id)
            done += 1
        return done + self.secure_step()

    def _reopen_database(self) -> None:
        if self.reconnect is None:
            return
        self.db.close()
        try:
            self.db = self.reconnect()
            self.cache.clear()
            self._person_count = None
        except Exception as exc:
            log.warning("cannot reopen the database yet: %s", exc)

    def run_forever(self) -> None:
        """Until stopped. TokenRejected propagates: a revoked node must stop, not retry."""
        while not self.stop.is_set():
            try:
                self.cycle()
            except (PortalUnavailable, PortalProtocolError) as exc:
                delay = self.backoff.next_delay()
                log.warning("portal unavailable (%s); retrying in %.0fs", exc, delay)
                self.stop.wait(delay)
                continue
            except TokenRejected:
                raise
            except Exception:
                # Most likely the database went away; a daemon should survive that and retry.
                delay = self.backoff.next_delay()
                log.exception("agent cycle failed; retrying in %.0fs", delay)
                self._reopen_database()
                self.stop.wait(delay)
                continue
            self.backoff.reset()
            self._wait_between_cycles()

    def _wait_between_cycles(self) -> None:
        """Wait one poll interval; while secure rounds are open, poll their peers in between:
        a long-poll (the portal answers when the last key is in) while this node's key waits for
        its peers', else every SECURE_POLL_MIN seconds, backing off (doubling) while nothing moves."""
        if not self.secure_work:
            self.stop.wait(self.poll_interval)
            return
        deadline = time.monotonic() + self.poll_interval
        wait = SECURE_POLL_MIN
        retry = SECURE_RETRY_MIN
        while self.secure_work and not self.stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            hold = min(SECURE_LONG_POLL, remaining) if self._awaiting_peers() else 0.0
            if not hold:
                self.stop.wait(min(wait, remaining))
            asked = time.monotonic()
            try:
                progressed = self.secure_step(hold=hold)
            except (PortalUnavailable, PortalProtocolError):
                break
            if progressed:
                wait, retry = SECURE_POLL_MIN, SECURE_RETRY_MIN
                continue
            if hold and time.monotonic() - asked < hold / 2:
                # Answered at once although nothing moved: the portal holds no poll for this node
                # now (its slots are busy with other nodes' polls, or it is older). The next poll
                # likely finds a free slot: soon at first, backing off to SECURE_POLL_MIN (at most
                # 4 a second while keys are missing, within the node API's rate limit).
                self.stop.wait(min(retry, max(deadline - time.monotonic(), 0)))
                retry = min(retry * 2, SECURE_POLL_MIN)
                continue
            retry = SECURE_RETRY_MIN
            wait = min(wait * 2, self.poll_interval)
        remaining = deadline - time.monotonic()
        if remaining > 0:
            self.stop.wait(remaining)
