"""benchmarks/secagg.py at a toy size, so the script cannot rot."""

from __future__ import annotations

import importlib.util
import sys

from tests.processes import ROOT


def test_it_measures_node_and_portal_cpu_per_round():
    spec = importlib.util.spec_from_file_location(
        "benchmarks_secagg", ROOT / "benchmarks" / "secagg.py"
    )
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    size = {"tiny": {"stratify_by": "sex", "max_time_units": 3}}
    (figures,) = bench.measure(nodes=3, rounds=2, sizes=size).values()
    assert figures["vector_length"] == 3 * 4 * 2
    assert 0 < figures["node_cpu_ms_median"] <= figures["node_cpu_ms_max"]
    assert figures["portal_cpu_ms_median"] > 0
