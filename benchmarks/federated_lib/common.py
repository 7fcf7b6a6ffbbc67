"""Shared by the federated-analysis benchmarks: paths, cohorts, targets, small statistics."""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
sys.path.insert(0, str(ROOT))

PY = sys.executable
CANCERS = ["prostate", "breast", "lung"]
# Everyone with a cancer (443392 and its descendants) or the synthetic hypertension record, so the
# regression's design matrix holds nearly every person of the database.
ALL_PERSONS_COHORT = {"condition_concept_ids": [443392, 320128], "include_descendants": True}
CANCER_COHORT = {"condition_concept_ids": [443392], "include_descendants": True}
E2E_SITES = ((1, 8000), (2, 5000), (3, 3500), (4, 2000))  # (seed, persons), as the demo nodes

TARGET_ROUND_RATIO = 2.0
TARGET_E2E_SECONDS = 3.0
TARGET_P99_MS = 100.0


class BenchmarkError(RuntimeError):
    """A figure could not be measured (a process failed, a timeout passed)."""


def verdict(met: bool) -> str:
    return "target met" if met else "target missed"


def machine_load() -> str:
    """The 1-minute load average: figures from a busy machine are not comparable."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return f"{os.cpu_count()} cores"
    return f"load average {load:.1f} on {os.cpu_count()} cores"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, int(-(-q * len(ordered) // 100)))  # ceil(q/100 * n)
    return ordered[min(rank, len(ordered)) - 1]


# =============================================================================================
# Part 1: one logistic-regression round at the node vs. one pooled numpy IRLS iteration
# =============================================================================================
