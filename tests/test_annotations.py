"""The public surface of every app's services and selectors is annotated (issue 17): each parameter
of a public function (no leading underscore) says its type, so ``actor: User`` and
``dataset: Dataset`` read the same everywhere and a checker can follow them."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPS = ("accounts", "catalogue", "cds", "feedback", "governance", "federation", "central")


def surface_modules(root: Path) -> list[Path]:
    """services.py, selectors.py (and services_*.py …) and every module of a services/ or
    selectors/ package, in each app and its sub-packages."""
    found = set()
    for app in APPS:
        for path in (root / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            named = path.stem.startswith(("services", "selectors"))
            inside = any(p in ("services", "selectors") for p in path.relative_to(root).parts[:-1])
            if named or inside:
                found.add(path)
    return sorted(found)


def unannotated(source: str, where: str) -> list[str]:
    """``where:line function(parameter)`` for each parameter of a public module-level function
    without an annotation (``self``/``cls`` and ``*args``/``**kwargs`` included)."""
    missing = []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if node.name.startswith("_"):
            continue
        a = node.args
        params = [*a.posonlyargs, *a.args, *a.kwonlyargs]
        params += [p for p in (a.vararg, a.kwarg) if p is not None]
        missing += [
            f"{where}:{node.lineno} {node.name}({p.arg})" for p in params if p.annotation is None
        ]
    return missing


def test_it_finds_an_unannotated_parameter():
    source = (
        "def ok(*, user: User, n: int = 1) -> None: ...\n"
        "def bad(user, *, dataset: Dataset, **extra): ...\n"
        "def _private(x): ...\n"
    )
    assert unannotated(source, "m.py") == ["m.py:2 bad(user)", "m.py:2 bad(extra)"]


def test_it_reads_the_services_and_selectors_of_every_app():
    names = {p.relative_to(ROOT).as_posix() for p in surface_modules(ROOT)}
    assert {"catalogue/services.py", "federation/selectors.py"} <= names
    assert {"federation/services/runs.py", "federation/flare/services.py"} <= names


def test_public_services_and_selectors_are_annotated():
    missing = []
    for path in surface_modules(ROOT):
        missing += unannotated(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    assert missing == [], f"{len(missing)} unannotated parameters:\n" + "\n".join(missing)
