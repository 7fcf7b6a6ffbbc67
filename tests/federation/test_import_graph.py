"""The federation app's import graph (grimp, which import-linter is built on): no circle among its
modules, and background work only one way (tasks call services; services enqueue by task name)."""

from __future__ import annotations

import grimp
import pytest

PACKAGE = "federation"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, cache_dir=None)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (or a module importing itself)."""
    modules = sorted(m for m in graph.modules if m == PACKAGE or m.startswith(PACKAGE + "."))
    edges = {
        m: sorted(
            i
            for i in graph.find_modules_directly_imported_by(m)
            if i == PACKAGE or i.startswith(PACKAGE + ".")
        )
        for m in modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan; the graph is small, recursion is fine
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in edges[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1 or module in edges[module]:
                found.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return found


def test_the_graph_sees_the_app(graph):
    # A guard against a vacuous pass: the modules this file is about are in the graph.
    assert {"federation.services.runs", "federation.tasks", "federation.flare.tasks"} <= set(
        graph.modules
    )
    assert "federation.services.runs" in graph.find_modules_directly_imported_by(
        "federation.services.nodes"
    )


def test_no_import_circle_inside_federation(graph):
    cycles = _cycles(graph)
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
