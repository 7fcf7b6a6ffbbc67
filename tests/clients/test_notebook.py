"""docs/notebooks/federated-survival.ipynb runs clean against a live network (nbclient): any
failing cell fails the test, and the two figures it saves exist."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient

from tests.processes import ROOT

pytestmark = [pytest.mark.slow_check, pytest.mark.integration]
NOTEBOOK = ROOT / "docs" / "notebooks" / "federated-survival.ipynb"


def test_the_notebook_is_committed_without_outputs():
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_the_notebook_runs_clean_against_a_live_network(live_network, tmp_path, monkeypatch):
    figures = tmp_path / "figures"
    # The kernel inherits this process' environment.
    monkeypatch.setenv("OPTIMA_URL", live_network.url)
    monkeypatch.setenv("OPTIMA_TOKEN", live_network.token)
    monkeypatch.setenv("OPTIMA_FIGURES_DIR", str(figures))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()  # raises CellExecutionError naming the cell that failed
    assert sorted(p.name for p in figures.iterdir()) == ["forest.png", "km-by-sex.png"]
    assert all((figures / name).stat().st_size > 10_000 for name in ("forest.png", "km-by-sex.png"))
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs)
