"""No Python module over 700 lines (issue 17): split a file when it holds two ideas, and long before
it is this long. Migrations and the vendored SHACL shapes (with their validator) are not ours to
shape."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 700
SKIPPED_DIRS = {".venv", "node_modules", "migrations", ".git", "__pycache__"}
VENDORED = (Path("catalogue/shapes"),)


def too_long(root: Path, limit: int = LIMIT) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if SKIPPED_DIRS & set(relative.parts[:-1]):
            continue
        if any(relative.is_relative_to(v) for v in VENDORED):
            continue
        with path.open(encoding="utf-8") as handle:
            lines = sum(1 for _ in handle)
        if lines > limit:
            found.append(f"{relative.as_posix()}: {lines} lines")
    return found


def test_it_measures_what_it_should(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "long.py").write_text("x = 1\n" * 701)
    (tmp_path / "app" / "ok.py").write_text("x = 1\n" * 700)
    (tmp_path / "app" / "migrations").mkdir()
    (tmp_path / "app" / "migrations" / "0001_initial.py").write_text("x = 1\n" * 2000)
    (tmp_path / "catalogue" / "shapes").mkdir(parents=True)
    (tmp_path / "catalogue" / "shapes" / "validator.py").write_text("x = 1\n" * 2000)
    assert too_long(tmp_path) == ["app/long.py: 701 lines"]


def test_no_python_file_is_over_700_lines():
    assert too_long(ROOT) == []
