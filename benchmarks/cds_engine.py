"""Micro-benchmark of the CDS engine: mean and p95 microseconds per evaluation, per pathway.

Run: .venv/bin/python benchmarks/cds_engine.py [--repeat N]
Each pathway is evaluated on its own embedded test cases (valid inputs only), round-robin, so
the figures cover determined and undetermined results alike. The budget is < 1 ms (1000 µs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cds.engine import evaluate, load_builtin_pathways, validate_inputs

BUDGET_US = 1000.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2000, help="evaluations per pathway")
    args = parser.parse_args()
    worst = 0.0
    print(f"{'pathway':<20} {'cases':>5} {'mean µs':>9} {'p95 µs':>9} {'max µs':>9}")
    for pathway_id, pathway in sorted(load_builtin_pathways().items()):
        cases = [t.inputs for t in pathway.model.tests if not validate_inputs(pathway, t.inputs)[1]]
        for case in cases:  # warm-up
            evaluate(pathway, case)
        timings = []
        for i in range(args.repeat):
            case = cases[i % len(cases)]
            start = time.perf_counter_ns()
            evaluate(pathway, case)
            timings.append((time.perf_counter_ns() - start) / 1000)
        timings.sort()
        p95 = timings[int(0.95 * (len(timings) - 1))]
        worst = max(worst, p95)
        print(
            f"{pathway_id:<20} {len(cases):>5} {statistics.fmean(timings):>9.1f} {p95:>9.1f} {timings[-1]:>9.1f}"
        )
    print(f"budget {BUDGET_US:.0f} µs per evaluation: {'OK' if worst < BUDGET_US else 'EXCEEDED'}")
    return 0 if worst < BUDGET_US else 1


if __name__ == "__main__":
    raise SystemExit(main())
