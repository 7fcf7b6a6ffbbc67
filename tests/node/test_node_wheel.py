"""The node agent's own distribution (node/pyproject.toml): the `optima-node` wheel holds the
`optima_node` package and its data files only, declares only the agent's dependencies (no Django),
and is versioned with the agent (``optima_node.__version__``)."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from email.parser import Parser

import pytest

import optima_node
from tests.import_graph import PORTAL_PACKAGES as GRAPH_PACKAGES
from tests.processes import ROOT

# The portal's own packages: every one the import graph reads, but the agent.
PORTAL_PACKAGES = set(GRAPH_PACKAGES) - {"optima_node"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), "node/"],
        cwd=ROOT,
        check=True,
        timeout=300,
    )
    (path,) = out.glob("optima_node-*.whl")
    return path


def test_it_is_versioned_with_the_agent(wheel):
    assert wheel.name == f"optima_node-{optima_node.__version__}-py3-none-any.whl"


def test_it_holds_the_agent_and_its_data_files_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"optima_node", f"optima_node-{optima_node.__version__}.dist-info"}
    assert not PORTAL_PACKAGES & tops
    assert "optima_node/spec/OMOP_CDMv5.4_Field_Level.csv" in names
    assert "optima_node/circe/sql.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    sources = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "optima_node").rglob("*.py"))
    assert sorted(n for n in names if n.endswith(".py")) == sources


def test_its_dependencies_are_the_agents_without_django(wheel):
    archive = zipfile.ZipFile(wheel)
    info = f"optima_node-{optima_node.__version__}.dist-info"
    meta = Parser().parsestr(archive.read(f"{info}/METADATA").decode())
    required = [r.split(";")[0].strip() for r in meta.get_all("Requires-Dist")]
    names = {re.match(r"[\w.-]+", r).group().lower() for r in required}
    assert {"pydantic", "numpy", "cryptography", "psycopg", "nvflare"} == names
    assert not [r for r in required if "django" in r.lower() or "celery" in r.lower()]
    assert "optima-node = optima_node.cli:main" in archive.read(f"{info}/entry_points.txt").decode()
