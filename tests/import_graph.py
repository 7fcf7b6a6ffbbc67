"""The portal's import graph (grimp, which import-linter is built on) and the circles in it.

Reusable by every app's test: ``cycles_within("governance")`` lists each group of the app's own
modules that import one another in a circle (a strongly connected component of more than one
module). Imports inside functions count: a lazy import is still an arrow.
"""

from __future__ import annotations

from functools import cache

import grimp

PORTAL_PACKAGES = (
    "accounts",
    "catalogue",
    "cds",
    "feedback",
    "governance",
    "federation",
    "central",
    "optima_node",
    "optima_portal",
)


@cache
def portal_graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PORTAL_PACKAGES, cache_dir=None)


def strongly_connected_components(nodes: set[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit). Components of more than one node only,
    each sorted, in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in nodes:
                    continue
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(edges.get(succ, ())))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def cycles_within(package: str, graph: grimp.ImportGraph | None = None) -> list[list[str]]:
    """The import circles among ``package``'s own modules (empty when there are none)."""
    graph = graph or portal_graph()
    modules = {m for m in graph.modules if m == package or m.startswith(package + ".")}
    edges = {m: set(graph.find_modules_directly_imported_by(m)) & modules for m in modules}
    return strongly_connected_components(modules, edges)


def describe(cycle: list[str], graph: grimp.ImportGraph | None = None) -> str:
    """The arrows of one circle, with line numbers, for a readable failure."""
    graph = graph or portal_graph()
    members = set(cycle)
    arrows = []
    for importer in cycle:
        for imported in sorted(set(graph.find_modules_directly_imported_by(importer)) & members):
            lines = [
                d["line_number"]
                for d in graph.get_import_details(importer=importer, imported=imported)
            ]
            arrows.append(f"{importer} -> {imported} (line {', '.join(map(str, lines))})")
    return "\n".join(arrows)
