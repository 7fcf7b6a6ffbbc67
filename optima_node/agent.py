"""The run loop: heartbeat, claim, execute behind the disclosure gate, post; back off when offline."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from optima_node import __version__
from optima_node.analyses import REGISTRY, AnalysisRefused
from optima_node.analyses.common import load_cohort
from optima_node.analyses.released import released_sets
from optima_node.client import PortalClient, PortalProtocolError, PortalUnavailable, TokenRejected
from optima_node.db import Database
from optima_node.disclosure import Decision, Refused, Released, gate
from optima_node.ledger import ReleaseLedger, Requester, params_digest
from optima_node.policy import Policy
from optima_node.schemas import (
    CAPABILITIES,
    PARAMS_MODELS,
    Capability,
    Heartbeat,
    ReasonCode,
    RunAssignment,
    RunResult,
)

log = logging.getLogger("optima_node")

MAX_RUNS_PER_CYCLE = 100  # so a busy portal cannot starve heartbeats
PERSON_COUNT_TTL_SECONDS = 600.0


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
    _person_count: tuple[float, int] | None = None

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

    def _decide(self, run: RunAssignment) -> Decision:
        key = (run.type, run.version)
        runner = REGISTRY.get(key)
        if runner is None:
            return Refused(ReasonCode.UNSUPPORTED_ANALYSIS)
        if not self.policy.allows(run.type):
            return Refused(ReasonCode.POLICY_TYPE_NOT_ALLOWED)
        try:
            params = PARAMS_MODELS[key].model_validate(run.params)
        except ValidationError:
            return Refused(ReasonCode.INVALID_PARAMETERS)
        try:
            output = runner(self.db, params, run.state, self.policy, self.cache)
        except AnalysisRefused as refusal:
            return Refused(refusal.reason)
        except ValidationError:
            return Refused(ReasonCode.INVALID_PARAMETERS)
        decision = gate(run.type, run.version, output, self.policy)
        if isinstance(decision, Released):
            return self._check_differencing(run, params, decision)
        return decision

    def _check_differencing(self, run: RunAssignment, params: Any, decision: Released) -> Decision:
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
            min_cell_count=self.policy.min_cell_count,
            scope=self.policy.differencing_scope,
        )
        return decision if released else Refused(ReasonCode.DIFFERENCING_RISK)

    # --- loop -------------------------------------------------------------------------------

    def cycle(self) -> int:
        """Heartbeat, then claim and execute until the portal has nothing more. Returns runs done."""
        ack = self.client.heartbeat(self.build_heartbeat())
        self.poll_interval = ack.poll_interval_seconds
        done = 0
        while done < MAX_RUNS_PER_CYCLE and not self.stop.is_set():
            run = self.client.claim()
            if run is None:
                break
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
        return done

    def _reopen_database(self) -> None:
        if self.reconnect is None:
            return
        self.db.close()
        try:
            self.db = self.reconnect()
            self.cache.clear()
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
            self.stop.wait(self.poll_interval)
