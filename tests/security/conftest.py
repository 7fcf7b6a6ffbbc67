"""Fixtures shared by the node-facing attack tests."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from optima_node.db import connect
from optima_node.synth import synthesise


@pytest.fixture
def fresh_throttle_counts():
    """Rate-limit counters live in the shared cache: each test starts and ends with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="session")
def site_url(tmp_path_factory) -> str:
    """A small synthetic OMOP site (600 persons with lung cancer) for a simulated node agent."""
    path = tmp_path_factory.mktemp("site") / "omop.sqlite3"
    db = connect(f"sqlite:///{path}")
    synthesise(db, 600, 7, ["lung"])
    db.close()
    return f"sqlite:///{path}"
