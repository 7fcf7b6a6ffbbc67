"""Secure aggregation end to end: a four-node Kaplan–Meier with and without it, in-process.

Run: .venv/bin/python benchmarks/secagg_e2e.py [--persons-scale 1.0] [--repeats 3]

Four synthetic OMOP sites (the demo sizes, 8,000 / 5,000 / 3,500 / 2,000 persons), four approved
nodes and their agents' real code driven in one process over Django's test client (no HTTP, eager
Celery), on a temporary SQLite database and ``OPTIMA_VAR_DIR``. For each mode the analysis
(KM, 90-day units, 40 units, by sex) is timed from ``analysis_start`` until it reads completed;
the cohort cache is cleared before each run so both modes build their cohorts. Reported: the
median end-to-end time of each mode, the overhead of secure aggregation in % (target <= 20 %),
and the CPU seconds per node per round spent in the protocol (key, masking; target <= 50 ms).

``secure_vs_per_site(...)`` is the function the coordinator wires into ``benchmarks/federated.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SITES = ((1, 8000), (2, 5000), (3, 3500), (4, 2000))
KM_PARAMS = {
    "cohort": {"condition_concept_ids": [443392], "include_descendants": True},
    "time_unit_days": 90,
    "max_time_units": 40,
    "stratify_by": "sex",
}
TARGET_OVERHEAD = 0.20
TARGET_CPU_PER_NODE_ROUND = 0.050


def _setup_django(workdir: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "optima_portal.settings")
    os.environ["OPTIMA_VAR_DIR"] = str(workdir / "var")
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'portal.sqlite3'}"
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    import django
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    django.setup()
    setup_test_environment()
    call_command("migrate", verbosity=0)


class _Protocol:
    """CPU seconds the agents spend in the secure-aggregation protocol itself."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def wrap(self, module: Any, name: str) -> None:
        original = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.process_time() - started
                self.calls += name == "mask"

        setattr(module, name, timed)


def secure_vs_per_site(
    *, persons_scale: float = 1.0, repeats: int = 3, workdir: Path | None = None
) -> dict[str, Any]:
    """Median end-to-end seconds of a four-node KM with and without secure aggregation."""
    own = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="secagg-e2e-")) if own else workdir
    try:
        _setup_django(workdir)
        return _measure(workdir, persons_scale, repeats)
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)


def _measure(workdir: Path, persons_scale: float, repeats: int) -> dict[str, Any]:
    from accounts.models import Organisation, Role
    from federation import services
    from federation.models import AnalysisStatus
    from optima_node import secagg
    from optima_node.db import connect
    from optima_node.policy import Policy
    from optima_node.synth import synthesise
    from tests.factories import make_member
    from tests.federation.factories import SimNode

    sims = []
    for seed, persons in SITES:
        path = workdir / f"site{seed}.sqlite3"
        db = connect(f"sqlite:///{path}")
        synthesise(db, max(int(persons * persons_scale), 50), seed, ["prostate", "breast", "lung"])
        db.close()
        org = Organisation.objects.create(name=f"Hospital {seed}", slug=f"hospital-{seed}")
        node, token = services.node_enrol(actor="benchmark", organisation=org, name=f"n{seed}")
        sims.append(SimNode(node, token, f"sqlite:///{path}", policy=Policy()))
    researcher = make_member(
        Organisation.objects.create(name="Institute", slug="institute"),
        Role.RESEARCHER,
        username="bench",
    )
    protocol = _Protocol()
    protocol.wrap(secagg, "mask")
    protocol.wrap(secagg, "new_round_key")

    def one(secure: bool) -> float:
        for sim in sims:
            sim.agent.policy = Policy(secure_aggregation=secure)
            sim.agent.cache.clear()
            sim.heartbeat()
        started = time.perf_counter()
        analysis = services.analysis_start(
            researcher=researcher,
            analysis_type="kaplan_meier",
            version=1,
            params=KM_PARAMS,
            nodes=[s.node for s in sims],
        )
        assert analysis.aggregation == ("secure" if secure else "per_site")
        for _ in range(20):
            if not sum(sim.cycle() for sim in sims):
                break
        elapsed = time.perf_counter() - started
        analysis.refresh_from_db()
        if analysis.status != AnalysisStatus.COMPLETED:
            raise RuntimeError(f"the analysis ended {analysis.status}: {analysis.reason}")
        return elapsed

    try:
        per_site = [one(False) for _ in range(repeats)]
        before = protocol.seconds
        secure = [one(True) for _ in range(repeats)]
        protocol_cpu = protocol.seconds - before
    finally:
        for sim in sims:
            sim.close()
    per_site_s, secure_s = statistics.median(per_site), statistics.median(secure)
    rounds = repeats * len(sims)
    return {
        "nodes": len(sims),
        "per_site_seconds": per_site_s,
        "secure_seconds": secure_s,
        "overhead": (secure_s - per_site_s) / per_site_s,
        "protocol_cpu_per_node_round": protocol_cpu / rounds,
    }


def print_result(r: dict[str, Any]) -> bool:
    met_overhead = r["overhead"] <= TARGET_OVERHEAD
    met_cpu = r["protocol_cpu_per_node_round"] <= TARGET_CPU_PER_NODE_ROUND
    print(f"Kaplan–Meier over {r['nodes']} nodes, end to end (in-process):")
    print(f"  per-site pooling     {r['per_site_seconds'] * 1000:8.1f} ms")
    print(f"  secure aggregation   {r['secure_seconds'] * 1000:8.1f} ms")
    print(
        f"  overhead             {r['overhead'] * 100:8.1f} %  "
        f"(target <= {TARGET_OVERHEAD * 100:.0f} %: {'met' if met_overhead else 'missed'})"
    )
    print(
        f"  protocol CPU per node per round {r['protocol_cpu_per_node_round'] * 1000:.1f} ms "
        f"(target <= {TARGET_CPU_PER_NODE_ROUND * 1000:.0f} ms: {'met' if met_cpu else 'missed'})"
    )
    return met_overhead and met_cpu


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons-scale", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print_result(secure_vs_per_site(persons_scale=args.persons_scale, repeats=args.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
