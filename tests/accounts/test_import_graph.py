"""The import plan holds: no circle inside an app, and the import-linter contracts are kept.

Services never import their app's ``tasks`` (they enqueue by task name), so background work cannot
close a circle; ``tests/import_graph.py`` finds one if it comes back. Federation has its own test.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.import_graph import cycles_within, describe, strongly_connected_components

ROOT = Path(__file__).resolve().parents[2]


def test_it_finds_a_circle_and_only_a_circle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert strongly_connected_components(set(edges), edges) == [["a", "b", "c"]]
    assert strongly_connected_components({"x", "y"}, {"x": {"y"}}) == []


@pytest.mark.parametrize(
    "app", ["accounts", "catalogue", "governance", "feedback", "cds", "central"]
)
def test_it_has_no_import_circle_inside(app):
    cycles = cycles_within(app)
    assert cycles == [], "\n\n".join(describe(c) for c in cycles)


def test_it_keeps_the_import_linter_contracts():
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is a dev dependency (pip install -e '.[dev]')"
    result = subprocess.run(
        [lint_imports, "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


# --- imports the graph cannot see -----------------------------------------------------------------

APPS = (
    "accounts",
    "catalogue",
    "cds",
    "feedback",
    "governance",
    "federation",
    "central",
    "optima_portal",
)
# Discovery of one named module in every app (like Django's admin autodiscovery), by design:
# each app offers `<app>.dashboard` / `<app>.demo` and accounts collects them, not a code edge.
DISCOVERY = {
    "accounts/dashboard.py": "<app>.dashboard sections",
    "accounts/management/commands/seed_demo.py": "<app>.demo seeding",
    # Known, not by design: feedback finds a linked object's choke point in its app's
    # permissions module; it goes when the apps' restrict functions become one (issue 17).
    "feedback/links.py": "<app>.permissions restrict lookup",
}
# The project package composes the apps (settings, Celery, dev runner): it may import any of them.
COMPOSER = "optima_portal"


def hidden_imports(source: str, path: str) -> list[str]:
    """Each ``importlib.import_module``/``__import__`` call in ``source`` that may name a module of
    another app (a literal of another app, or a computed name), as "path:line: target"."""
    own = path.split("/")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name not in ("import_module", "__import__"):
            continue
        target = node.args[0]
        if isinstance(target, ast.Constant) and isinstance(target.value, str):
            app = target.value.split(".")[0]
            if app == own or app not in APPS:
                continue
        found.append(f"{path}:{node.lineno}: {ast.unparse(target)}")
    return found


def test_it_finds_a_hidden_import_of_another_app():
    sneaky = 'import importlib\ndef f():\n    return importlib.import_module("feedback.services")\n'
    assert hidden_imports(sneaky, "cds/services.py") == ["cds/services.py:3: 'feedback.services'"]
    computed = "from importlib import import_module\nm = import_module(f'{x}.services')\n"
    assert hidden_imports(computed, "cds/services.py") == ["cds/services.py:2: f'{x}.services'"]
    own = 'import importlib\nimportlib.import_module("cds.migrations.0001_initial")\n'
    assert hidden_imports(own, "cds/demo.py") == []


def test_no_app_imports_another_through_importlib():
    found = []
    for app in APPS:
        if app == COMPOSER:
            continue
        for file in sorted((ROOT / app).rglob("*.py")):
            path = file.relative_to(ROOT).as_posix()
            if path not in DISCOVERY:
                found += hidden_imports(file.read_text(encoding="utf-8"), path)
    assert found == [], "imports import-linter cannot see:\n" + "\n".join(found)
