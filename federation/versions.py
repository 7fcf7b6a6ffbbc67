"""Which agent and CDM versions the portal's release expects (node registry warnings)."""

from __future__ import annotations

import re

import optima_node

SUPPORTED_CDM_VERSIONS: tuple[str, ...] = ("5.4",)


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def agent_is_outdated(agent_version: str) -> bool:
    """True when the agent is older than the agent shipped with this portal release."""
    reported = _numbers(agent_version)
    return bool(reported) and reported < _numbers(optima_node.__version__)


def cdm_is_supported(cdm_version: str) -> bool:
    numbers = _numbers(cdm_version)
    return any(numbers[:2] == _numbers(v)[:2] for v in SUPPORTED_CDM_VERSIONS)
