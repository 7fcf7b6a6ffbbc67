"""Import boundaries: the portal imports optima_node.schemas with only pydantic; no Django anywhere."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import optima_node

REPO = Path(__file__).resolve().parents[2]


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_schemas_import_with_only_pydantic():
    blocked = "import sys\nfor m in ('numpy', 'scipy', 'psycopg', 'django', 'sqlite3'): sys.modules[m] = None\n"
    result = run_python(blocked + "import optima_node.schemas as s; print(len(s.RESULT_MODELS))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "5"


def test_no_module_imports_django_or_needs_psycopg():
    modules = [
        m.name
        for m in pkgutil.walk_packages(optima_node.__path__, "optima_node.")
        if not m.name.endswith("__main__")
    ]
    code = (
        "import sys, importlib\n"
        "for m in ('django', 'psycopg'): sys.modules[m] = None\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('django', 'rest_framework')) and sys.modules[m] is not None))\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_federation_stats_has_no_django():
    result = run_python("import sys\nsys.modules['django'] = None\nimport federation.stats")
    assert result.returncode == 0, result.stderr
