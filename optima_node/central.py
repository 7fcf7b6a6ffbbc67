"""``optima-node central``: the platform's central node, one supervisor serving every central copy.

The operator enrols the central node in the portal (``/central/node/`` or ``manage.py
central_node enroll``) and runs this with::

    PORTAL_URL, CENTRAL_NODE_TOKEN (or CENTRAL_NODE_TOKEN_FILE), CENTRAL_STATE_DIR,
    CENTRAL_OMOP_DATABASE_URL (or _FILE; PostgreSQL only: the portal hands out no password),
    CENTRAL_POLL_INTERVAL (seconds between listings, default 60)

Every listing (``GET /api/central/node/datasets/``) names the served central copies: for each, the
supervisor runs one ordinary :class:`~optima_node.agent.Agent` in a thread of its own, as that
dataset's node (``central-copy-<id>`` of the data provider, whose site admin keeps the approval
and release gates), under the provider's policy, with its own node token (asked for once and kept
0600 in the state directory, so a restart rotates nothing), ledger, review directory and
identity key under ``CENTRAL_STATE_DIR/dataset-<id>/``. A dataset no longer listed has its agent
stopped; a new served version makes its agent reopen the database; a changed policy applies to
the next run. One dataset failing (its database, its token) never stops the others.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from optima_node import __version__
from optima_node.agent import Agent
from optima_node.client import PortalClient, PortalUnavailable, TokenRejected
from optima_node.config import Config, ConfigError, secret_from_file
from optima_node.db import connect
from optima_node.ledger import ReleaseLedger
from optima_node.policy import Policy, policy_from_mapping
from optima_node.review import ReviewStore
from optima_node.secagg import load_or_create_identity

log = logging.getLogger("optima_node.central")

LIST_INTERVAL_DEFAULT = 60.0
STOP_TIMEOUT = 30.0


class DatasetRefused(Exception):
    """The portal refused one dataset (not served any more, or its node revoked by the provider)."""


@dataclass(frozen=True)
class CentralConfig:
    portal_url: str
    token: str
    state_dir: Path
    database_url: str | None = None
    list_interval: float = LIST_INTERVAL_DEFAULT

    def __repr__(self) -> str:  # never print the credential or the database password
        return (
            f"CentralConfig(portal_url={self.portal_url!r}, token='***', "
            f"state_dir={str(self.state_dir)!r}, database_url={'***' if self.database_url else None}, "
            f"list_interval={self.list_interval!r})"
        )


def load_central_config(environ: Mapping[str, str] | None = None) -> CentralConfig:
    env = os.environ if environ is None else environ
    portal = env.get("PORTAL_URL", "").strip()
    token = env.get("CENTRAL_NODE_TOKEN") or secret_from_file("CENTRAL_NODE_TOKEN", env)
    state = env.get("CENTRAL_STATE_DIR", "").strip()
    missing = [
        name
        for name, value in (
            ("PORTAL_URL", portal),
            ("CENTRAL_NODE_TOKEN", token),
            ("CENTRAL_STATE_DIR", state),
        )
        if not value
    ]
    if missing:
        raise ConfigError(f"missing configuration: {', '.join(missing)}")
    if not portal.startswith(("http://", "https://")):
        raise ConfigError(f"PORTAL_URL must be an http(s) URL, got {portal!r}")
    database_url = env.get("CENTRAL_OMOP_DATABASE_URL") or secret_from_file(
        "CENTRAL_OMOP_DATABASE_URL", env
    )
    if database_url and not database_url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("CENTRAL_OMOP_DATABASE_URL must start with postgresql://")
    raw_interval = env.get("CENTRAL_POLL_INTERVAL", str(LIST_INTERVAL_DEFAULT))
    try:
        interval = float(raw_interval)
    except ValueError as exc:
        raise ConfigError(f"CENTRAL_POLL_INTERVAL must be a number, got {raw_interval!r}") from exc
    if not 0 < interval <= 3600:
        raise ConfigError("CENTRAL_POLL_INTERVAL must be positive and at most 3600 seconds")
    return CentralConfig(
        portal_url=portal.rstrip("/"),
        token=str(token),
        state_dir=Path(state),
        database_url=database_url or None,
        list_interval=interval,
    )


class Location(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    dialect: Literal["sqlite", "postgresql"]
    path: str | None = None
    url: str | None = None
    schema_: str | None = Field(default=None, alias="schema")


class ServedDataset(BaseModel):
    """One entry of the portal's listing."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    dataset: int
    title: str = ""
    version: int
    location: Location
    policy: dict[str, Any] = {}


class CentralClient:
    """The central node's calls to the portal (``Authorization: Central <credential>``)."""

    def __init__(self, base_url: str, token: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _request(self, method: str, path: str) -> Any:
        request = urllib.request.Request(  # noqa: S310 - scheme checked in the configuration
            f"{self.base_url}{path}",
            data=b"" if method == "POST" else None,
            method=method,
            headers={
                "Authorization": f"Central {self.token}",
                "Accept": "application/json",
                "User-Agent": f"optima-node/{__version__} central",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read() if exc.fp else b""
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise PortalUnavailable(f"{self.base_url}: {getattr(exc, 'reason', exc)}") from exc
        if status in (401, 403):
            raise TokenRejected(f"central node credential refused (HTTP {status})")
        if status == 429 or status >= 500:
            raise PortalUnavailable(f"{self.base_url}{path}: HTTP {status}")
        try:
            payload = json.loads(raw or b"null")
        except ValueError as exc:
            raise PortalUnavailable(f"{path}: the answer is not JSON") from exc
        if status >= 400:
            message = (payload or {}).get("error", {}).get("message", "") if payload else ""
            raise DatasetRefused(f"HTTP {status} {message}".strip())
        return payload

    def datasets(self) -> list[ServedDataset]:
        payload = self._request("GET", "/api/central/node/datasets/")
        try:
            return [ServedDataset.model_validate(d) for d in payload["datasets"]]
        except (KeyError, TypeError, PydanticValidationError) as exc:
            raise PortalUnavailable(f"the dataset listing does not validate: {exc}") from exc

    def node_token(self, dataset_id: int) -> str:
        payload = self._request("POST", f"/api/central/node/datasets/{int(dataset_id)}/token/")
        token = (payload or {}).get("node_token")
        if not isinstance(token, str) or not token:
            raise PortalUnavailable("the token answer holds no node_token")
        return token


@dataclass
class _Served:
    dataset: int
    version: int
    policy: Policy
    agent: Agent
    ledger: ReleaseLedger
    token_file: Path
    thread: threading.Thread | None = None
    token_rejected: bool = False


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staged = path.with_suffix(".next")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    os.replace(staged, path)


def central_policy(entry: ServedDataset) -> Policy:
    """The provider's policy for its central copy, with one rule of the central route: a copy whose
    provider reviews every result before release (``review_before_release``) is pooled per site,
    never in a secure round. In a secure round the review happens at the node, before masking,
    and this node is the platform's machine, out of the provider's reach; per site, the held
    result waits in the portal, where the provider's site admin releases it. (The platform holds
    the copy itself: masking the copy's table from the portal hides nothing from the platform.)"""
    policy = policy_from_mapping(entry.policy, f"policy of dataset {entry.dataset}")
    if policy.review_before_release and policy.secure_aggregation:
        policy = policy.model_copy(update={"secure_aggregation": False})
    return policy


@dataclass
class Supervisor:
    config: CentralConfig
    client: CentralClient | None = None
    # How an agent reaches the portal; tests pass one that goes through Django's test client.
    portal_client: Callable[[str, str], PortalClient] = PortalClient
    stop: threading.Event = field(default_factory=threading.Event)
    served: dict[int, _Served] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.client is None:
            self.client = CentralClient(self.config.portal_url, self.config.token)

    # --- one dataset -----------------------------------------------------------------------

    def directory(self, dataset_id: int) -> Path:
        return self.config.state_dir / f"dataset-{int(dataset_id)}"

    def database(self, entry: ServedDataset) -> tuple[str, str | None]:
        location = entry.location
        if location.dialect == "sqlite":
            if not location.path:
                raise ConfigError("the listing names no SQLite path")
            return f"sqlite:///{location.path}", None
        if not self.config.database_url:
            raise ConfigError(
                "a PostgreSQL central copy needs CENTRAL_OMOP_DATABASE_URL (or _FILE)"
            )
        return self.config.database_url, location.schema_

    def node_token(self, dataset_id: int) -> tuple[str, Path]:
        path = self.directory(dataset_id) / "node.token"
        if path.exists():
            token = path.read_text(encoding="utf-8").strip()
            if token:
                return token, path
        token = self.client.node_token(dataset_id)  # type: ignore[union-attr]
        _write_secret(path, token)
        log.info("dataset %s: node token obtained", dataset_id)
        return token, path

    def agent_config(self, entry: ServedDataset, token: str) -> Config:
        url, schema = self.database(entry)
        directory = self.directory(entry.dataset)
        return Config(
            portal_url=self.config.portal_url,
            node_token=token,
            omop_database_url=url,
            cdm_schema=schema,
            ledger_file=str(directory / "release-ledger.sqlite3"),
            identity_key_file=str(directory / "identity.pem"),
            review_dir=str(directory / "review"),
        )

    def start(self, entry: ServedDataset) -> None:
        policy = central_policy(entry)
        token, token_file = self.node_token(entry.dataset)
        config = self.agent_config(entry, token)
        directory = self.directory(entry.dataset)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        ledger = ReleaseLedger(config.ledger_file)
        try:
            identity = load_or_create_identity(Path(config.identity_key_file))
            db = connect(config.omop_database_url, config.cdm_schema)
        except BaseException:
            ledger.close()
            raise
        agent = Agent(
            self.portal_client(config.portal_url, config.node_token),
            db,
            policy,
            poll_interval=config.poll_interval,
            reconnect=lambda: connect(config.omop_database_url, config.cdm_schema),
            ledger=ledger,
            identity=identity,
            reviews=ReviewStore(config.review_dir),
        )
        served = _Served(entry.dataset, entry.version, policy, agent, ledger, token_file)
        served.thread = threading.Thread(
            target=self._run, args=(served,), name=f"dataset-{entry.dataset}", daemon=True
        )
        self.served[entry.dataset] = served
        served.thread.start()
        log.info("dataset %s (%s): serving version %s", entry.dataset, entry.title, entry.version)

    def _run(self, served: _Served) -> None:
        try:
            served.agent.run_forever()
        except TokenRejected as exc:
            served.token_rejected = True
            log.error(
                "dataset %s: node token rejected (%s); stopping its agent", served.dataset, exc
            )
        except Exception:
            log.exception("dataset %s: agent stopped", served.dataset)
        finally:
            served.agent.db.close()
            served.ledger.close()

    def retire(self, dataset_id: int, why: str) -> None:
        served = self.served.pop(dataset_id)
        served.agent.stop.set()
        if served.thread is not None:
            served.thread.join(STOP_TIMEOUT)
        if served.token_rejected:
            # The token was rotated or the node revoked: ask for a fresh one on the next listing
            # (which the portal refuses for a node the provider revoked).
            served.token_file.unlink(missing_ok=True)
        log.info("dataset %s: agent stopped (%s)", dataset_id, why)

    # --- the listing -----------------------------------------------------------------------

    def sync(self) -> None:
        """List the served datasets; start, update and stop agents to match. Raises
        TokenRejected when the central node's own credential is refused."""
        listed = {entry.dataset: entry for entry in self.client.datasets()}  # type: ignore[union-attr]
        for dataset_id in [d for d in self.served if d not in listed]:
            self.retire(dataset_id, "no longer served")
        for dataset_id, entry in listed.items():
            if self.stop.is_set():
                return
            served = self.served.get(dataset_id)
            if served is not None and not (served.thread and served.thread.is_alive()):
                self.retire(dataset_id, "its agent ended; starting it again")
                served = None
            try:
                if served is None:
                    self.start(entry)
                    continue
                self.update(served, entry)
            except TokenRejected:
                raise
            except Exception as exc:  # one dataset failing must not stop the others
                log.error("dataset %s: cannot serve it now: %s", dataset_id, exc)

    def update(self, served: _Served, entry: ServedDataset) -> None:
        if entry.version != served.version:
            log.info(
                "dataset %s: version %s served now (was %s); reopening its database",
                entry.dataset,
                entry.version,
                served.version,
            )
            served.version = entry.version
            served.agent.reopen.set()
        policy = central_policy(entry)
        if policy != served.policy:
            log.info("dataset %s: the provider's policy changed", entry.dataset)
            served.policy = policy
            served.agent.policy = policy

    def run_forever(self) -> None:
        """Until stopped (SIGTERM). TokenRejected propagates: a revoked central node stops."""
        try:
            while not self.stop.is_set():
                try:
                    self.sync()
                except PortalUnavailable as exc:
                    log.warning("portal unavailable (%s); the agents keep running", exc)
                self.stop.wait(self.config.list_interval)
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        for served in self.served.values():
            served.agent.stop.set()
        for dataset_id in list(self.served):
            self.retire(dataset_id, "the supervisor stops")
