"""The federation app's import graph (grimp, which import-linter is built on): no circle among its
modules, and background work only one way (tasks call services; services enqueue by task name)."""

from __future__ import annotations

import grimp
import pytest

from tests.import_graph import cycles_within

PACKAGE = "federation"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, cache_dir=None)


def test_the_graph_sees_the_app(graph):
    # A guard against a vacuous pass: the modules this file is about are in the graph.
    assert {"federation.services.runs", "federation.tasks", "federation.flare.tasks"} <= set(
        graph.modules
    )
    assert "federation.services.runs" in graph.find_modules_directly_imported_by(
        "federation.services.nodes"
    )


def test_no_import_circle_inside_federation(graph):
    cycles = cycles_within(PACKAGE, graph)
    # Each circle shown as the two chains that close it (its first two modules, both ways).
    chains = [
        (
            graph.find_shortest_chain(importer=c[0], imported=c[1]),
            graph.find_shortest_chain(importer=c[1], imported=c[0]),
        )
        for c in cycles
    ]
    assert cycles == [], f"import circles: {cycles}; chains: {chains}"


@pytest.mark.parametrize("services", ["federation.services", "federation.flare.services"])
@pytest.mark.parametrize("tasks", ["federation.tasks", "federation.flare.tasks"])
def test_services_never_import_tasks(graph, services, tasks):
    chain = graph.find_shortest_chains(importer=services, imported=tasks, as_packages=True)
    assert not chain, f"{services} reaches {tasks}: {chain}"


def test_the_worker_registers_the_federated_learning_tasks(graph):
    # Celery's autodiscovery imports federation.tasks only; it must bring the FLARE tasks along.
    assert "federation.flare.tasks" in graph.find_modules_directly_imported_by("federation.tasks")
