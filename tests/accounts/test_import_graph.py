"""The import plan holds: no circle inside an app, and the import-linter contracts are kept.

Services never import their app's ``tasks`` (they enqueue by task name), so background work cannot
close a circle; ``tests/import_graph.py`` finds one if it comes back. Federation has its own test.
"""

from __future__ import annotations

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


@pytest.mark.parametrize("app", ["accounts", "catalogue", "governance", "feedback", "cds"])
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
