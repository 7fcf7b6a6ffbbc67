"""What a site's FLARE client needs from the node agent: its OMOP database and its policy.

The FLARE client reads the node agent's own configuration file (``OPTIMA_NODE_CONFIG``, the
TOML the agent runs with; ``{site}`` in the path is replaced by the FLARE site name, which lets
one machine host several POC sites). Nothing here imports ``nvflare``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from optima_node.config import ConfigError, collect
from optima_node.db import Database, connect
from optima_node.policy import Policy, load_policy

CONFIG_ENV = "OPTIMA_NODE_CONFIG"


class SiteRefused(Exception):
    """The site does not take part (policy) or cannot (configuration); the reason is safe to share."""


@dataclass(frozen=True)
class SiteConfig:
    omop_database_url: str
    cdm_schema: str | None
    policy: Policy

    def connect(self) -> Database:
        return connect(self.omop_database_url, self.cdm_schema)


def site_config(site_name: str, environ=None) -> SiteConfig:
    env = os.environ if environ is None else environ
    template = env.get(CONFIG_ENV, "")
    if not template:
        raise SiteRefused(f"{CONFIG_ENV} is not set at site {site_name}")
    path = template.replace("{site}", site_name)
    try:
        raw = collect(path, environ={})
        policy = load_policy(raw.get("policy_file"))
    except (ConfigError, ValueError) as exc:
        raise SiteRefused(f"site configuration unusable: {exc}") from exc
    if not raw.get("omop_database_url"):
        raise SiteRefused("site configuration has no omop_database_url")
    return SiteConfig(raw["omop_database_url"], raw.get("cdm_schema") or None, policy)


def check_policy(policy: Policy, template: str) -> None:
    if not policy.federated_learning:
        raise SiteRefused("policy: this site does not take part in federated learning")
    if template not in policy.allowed_model_templates:
        raise SiteRefused(f"policy: model template {template!r} is not allowed at this site")
