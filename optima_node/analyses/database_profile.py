"""database_profile v1: the CDM's profile (:mod:`optima_node.profile`) as a run like any other."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from optima_node.db import Database
from optima_node.policy import Policy
from optima_node.profile import compute_profile
from optima_node.schemas import DatabaseProfileParams


def run(
    db: Database,
    params: DatabaseProfileParams,
    state: dict[str, Any],
    policy: Policy,
    cache: MutableMapping[str, Any] | None = None,
) -> dict[str, Any]:
    return compute_profile(db, params, policy)
