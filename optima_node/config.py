"""Agent configuration from environment variables, optionally layered over a TOML file."""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse


class ConfigError(ValueError):
    """The configuration is missing something or holds a bad value."""


# key in the TOML file -> environment variable; the environment wins over the file.
KEYS: dict[str, str] = {
    "portal_url": "PORTAL_URL",
    "node_token": "NODE_TOKEN",
    "omop_database_url": "OMOP_DATABASE_URL",
    "cdm_schema": "CDM_SCHEMA",
    "policy_file": "POLICY_FILE",
    "poll_interval": "POLL_INTERVAL",
    "ledger_file": "LEDGER_FILE",
    "identity_key_file": "IDENTITY_KEY_FILE",
    "review_dir": "REVIEW_DIR",
}
# Secrets that may instead be read from a file named by NAME_FILE (container secrets).
SECRET_KEYS: tuple[str, ...] = ("node_token", "omop_database_url")
# Set in the node image at build time (node/Containerfile): the digest the heartbeat reports.
IMAGE_DIGEST_VAR = "OPTIMA_NODE_IMAGE_DIGEST"


@dataclass(frozen=True)
class Config:
    portal_url: str
    node_token: str
    omop_database_url: str
    cdm_schema: str | None = None
    policy_file: str | None = None
    poll_interval: float = 30.0
    ledger_file: str = ""
    # Secure aggregation: the node's Ed25519 identity (PEM, 0600, made on first start) and the
    # directory where contributions wait for the site admin's review. Default: beside the ledger.
    identity_key_file: str = ""
    review_dir: str = ""
    image_digest: str | None = None

    def __repr__(self) -> str:  # never print the token
        return (
            f"Config(portal_url={self.portal_url!r}, node_token='***', "
            f"omop_database_url={_redact_url(self.omop_database_url)!r}, "
            f"cdm_schema={self.cdm_schema!r}, policy_file={self.policy_file!r}, "
            f"poll_interval={self.poll_interval!r}, ledger_file={self.ledger_file!r}, "
            f"identity_key_file={self.identity_key_file!r}, review_dir={self.review_dir!r}, "
            f"image_digest={self.image_digest!r})"
        )


def _redact_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


def default_ledger_file(
    omop_database_url: str, cdm_schema: str | None, environ: Mapping[str, str] | None = None
) -> str:
    """One ledger per CDM (URL without password, and schema) under the user's state directory, so
    that two agents on one machine never share, or mix, their release histories."""
    env = os.environ if environ is None else environ
    base = Path(env.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "optima-node"
    key = f"{_redact_url(omop_database_url)}|{cdm_schema or ''}"
    return str(base / f"release-ledger-{hashlib.sha256(key.encode()).hexdigest()[:16]}.sqlite3")


def read_toml(path: str | Path) -> dict[str, object]:
    try:
        with Path(path).open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    # Keys may sit at top level or under [node]; the policy lives in its own file (POLICY_FILE).
    section = data.get("node", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [node] must be a table")
    unknown = set(section) - set(KEYS)
    if unknown:
        raise ConfigError(f"config file {path}: unknown keys {', '.join(sorted(unknown))}")
    return {k: v for k, v in section.items() if k in KEYS}


def secret_from_file(var: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of ``var`` read from the file named by ``var_FILE`` (stripped), if that is set."""
    env = os.environ if environ is None else environ
    path = env.get(f"{var}_FILE")
    if not path:
        return None
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {var}_FILE {path}: {exc}") from exc
    if not value:
        raise ConfigError(f"{var}_FILE {path} is empty")
    return value


def collect(config_file: str | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Merge file and environment into raw strings. A secret may come from a file named by
    NODE_TOKEN_FILE or OMOP_DATABASE_URL_FILE (container secrets); the variable itself wins."""
    env = os.environ if environ is None else environ
    raw: dict[str, str] = {}
    if config_file:
        raw.update({k: str(v) for k, v in read_toml(config_file).items()})
    for key, var in KEYS.items():
        if env.get(var):
            raw[key] = env[var]
        elif key in SECRET_KEYS:
            value = secret_from_file(var, env)
            if value is not None:
                raw[key] = value
    return raw


def image_digest(environ: Mapping[str, str] | None = None) -> str | None:
    """The node image's digest (``sha256:<64 hex>``) when the agent runs from the image."""
    env = os.environ if environ is None else environ
    value = env.get(IMAGE_DIGEST_VAR, "").strip()
    if not value:
        return None
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", value):
        raise ConfigError(f"{IMAGE_DIGEST_VAR} must look like sha256:<64 hex digits>")
    return value


POLL_INTERVAL_MAX = 3_600.0


def load_config(config_file: str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    raw = collect(config_file, environ)
    missing = [KEYS[k] for k in ("portal_url", "node_token", "omop_database_url") if not raw.get(k)]
    if missing:
        raise ConfigError(f"missing configuration: {', '.join(missing)}")
    portal = urlparse(raw["portal_url"])
    if portal.scheme not in {"http", "https"} or not portal.netloc:
        raise ConfigError(f"PORTAL_URL must be an http(s) URL, got {raw['portal_url']!r}")
    db_scheme = urlparse(raw["omop_database_url"]).scheme
    if db_scheme not in {"sqlite", "postgresql", "postgres"}:
        raise ConfigError("OMOP_DATABASE_URL must start with sqlite:/// or postgresql://")
    try:
        poll = float(raw.get("poll_interval", 30))
    except ValueError as exc:
        raise ConfigError(f"POLL_INTERVAL must be a number, got {raw['poll_interval']!r}") from exc
    if not 0 < poll <= POLL_INTERVAL_MAX:  # also refuses nan and inf
        raise ConfigError(
            f"POLL_INTERVAL must be positive and at most {POLL_INTERVAL_MAX:g} seconds"
        )
    ledger_file = raw.get("ledger_file") or default_ledger_file(
        raw["omop_database_url"], raw.get("cdm_schema"), environ
    )
    return Config(
        portal_url=raw["portal_url"].rstrip("/"),
        node_token=raw["node_token"],
        omop_database_url=raw["omop_database_url"],
        cdm_schema=raw.get("cdm_schema") or None,
        policy_file=raw.get("policy_file") or None,
        poll_interval=poll,
        ledger_file=ledger_file,
        identity_key_file=raw.get("identity_key_file") or beside(ledger_file, ".identity.pem"),
        review_dir=raw.get("review_dir") or beside(ledger_file, ".review"),
        image_digest=image_digest(environ),
    )


def beside(ledger_file: str, suffix: str) -> str:
    """A path next to the ledger, named after it (one per CDM, like the ledger itself)."""
    path = Path(ledger_file)
    return str(path.with_name(path.stem + suffix))
