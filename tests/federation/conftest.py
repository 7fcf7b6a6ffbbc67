from __future__ import annotations

import pytest

from optima_node.db import connect
from optima_node.synth import synthesise
from tests.factories import OrganisationFactory
from tests.federation.factories import EXACT, SimNode, make_node

SITES = ((11, 1500), (22, 1200), (33, 900))


@pytest.fixture(scope="session")
def site_urls(tmp_path_factory) -> list[str]:
    urls = []
    for seed, persons in SITES:
        path = tmp_path_factory.mktemp(f"site{seed}") / "omop.sqlite3"
        db = connect(f"sqlite:///{path}")
        synthesise(db, persons, seed, ["prostate", "breast", "lung"])
        db.close()
        urls.append(f"sqlite:///{path}")
    return urls


@pytest.fixture
def sim_nodes(db, hospital_a, hospital_b, site_urls):
    """Three approved nodes (hospital A, B and C) with exact-count policies, each with its own DB."""
    hospital_c = OrganisationFactory(name="Hospital C", slug="hospital-c", country="NL")
    sims = []
    for org, url in zip((hospital_a, hospital_b, hospital_c), site_urls, strict=True):
        node, token = make_node(org, f"{org.slug}-omop")
        sims.append(SimNode(node, token, url, policy=EXACT))
    yield sims
    for sim in sims:
        sim.close()


@pytest.fixture
def run_nodes(django_capture_on_commit_callbacks):
    """Drive every simulated node through cycles until nothing is left (GLM rounds included)."""

    def _run(sims, max_cycles: int = 40) -> int:
        total = 0
        for _ in range(max_cycles):
            with django_capture_on_commit_callbacks(execute=True):
                done = sum(sim.cycle() for sim in sims)
            total += done
            if not done:
                return total
        return total

    return _run
