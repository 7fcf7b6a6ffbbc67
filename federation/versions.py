"""Which agent and CDM versions the portal's release expects (node registry warnings)."""

from __future__ import annotations

import re

import optima_node

SUPPORTED_CDM_VERSIONS: tuple[str, ...] = ("5.4",)
# The agent shipped with this portal release (the optima-node wheel and image of the same commit).
AGENT_RELEASE: str = optima_node.__version__
# Sites upgrade about every three months; one minor release behind is tolerated.
TOLERATED_MINORS_BEHIND = 1


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def agent_is_outdated(agent_version: str) -> bool:
    """True when the agent is more than one minor version behind the agent of this release
    (any older major version counts too); the site admin is warned and notified."""
    reported = _numbers(agent_version)
    release = _numbers(AGENT_RELEASE)
    if not reported or not release:
        return False
    major, minor = (*reported, 0, 0)[:2]
    release_major, release_minor = (*release, 0, 0)[:2]
    if major != release_major:
        return major < release_major
    return release_minor - minor > TOLERATED_MINORS_BEHIND


def cdm_is_supported(cdm_version: str) -> bool:
    numbers = _numbers(cdm_version)
    return any(numbers[:2] == _numbers(v)[:2] for v in SUPPORTED_CDM_VERSIONS)
