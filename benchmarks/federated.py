"""Federated analysis benchmarks: figures against the targets of the federation issue.

Run: .venv/bin/python benchmarks/federated.py [--parts 1,2,3] [--persons 1000000]
     [--database-url postgresql://postgres@127.0.0.1:5432/optima_bench] [--help for the rest]

1. Node-side time of one logistic-regression round on a synthetic OMOP CDM (SQLite, written by
   ``optima_node.synth``) of ``--persons`` persons, as a ratio to one pooled numpy IRLS iteration
   on the same design matrix (target <= 2x). The cohort extraction (SQL + numpy) is timed apart.
2. End-to-end time of a ``cohort_count`` over four ``optima-node run`` agents polling every second:
   ``POST /api/analyses/`` until the analysis reads ``completed`` (target <= 3 s), through a
   gunicorn portal and a real Celery worker (``--eager``: tasks run inside the portal instead).
3. ``POST /api/node/runs/claim/`` under 1,000 simulated nodes polling every 5 s (200 requests/s)
   for ``--duration`` seconds against the same gunicorn portal: achieved rate, latency
   percentiles and error rate (target p99 < 100 ms).
4. Secure aggregation: a four-node Kaplan–Meier (sites of 1,800 / 2,600 / 3,400 / 4,200 persons)
   end to end with and without it, over real agents, gunicorn and a Celery worker on a portal of
   its own (target overhead <= 20 %, extra agent CPU <= 50 ms per node per round); then the
   protocol's CPU per node per round for KM vectors of realistic and of the largest allowed size
   (``secagg.py``, in its own process, target <= 50 ms).

Parts 2 and 3 share one portal: a temporary SQLite database (default) or, with
``--database-url postgresql://…/NAME``, a database NAME the script creates and drops (it refuses to
touch a database that already exists), migrated for the run, with ``OPTIMA_VAR_DIR`` in a
temporary directory and the Celery broker on that directory (``filesystem://``) unless
``--broker-url`` names another. Everything listens on 127.0.0.1 only; every process the script
starts is stopped and the temporary directory removed on the way out.

Exit status: 0 when every figure was measured (missed targets are printed as "target missed",
they do not fail the run); 1 when a measurement could not be made; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# One module per figure in federated_lib/; these names are the script's public surface (tests,
# benchmarks/load.py).
from federated_lib.common import (
    ROOT,
    BenchmarkError,
    median,
    percentile,
    verdict,
)
from federated_lib.end_to_end import bench_end_to_end, print_end_to_end
from federated_lib.node_round import bench_node_round, irls_iteration, print_node_round
from federated_lib.poll import Sample, bench_poll, print_poll, summarise_claims
from federated_lib.portal import Portal, request
from federated_lib.secure_e2e import bench_secure_end_to_end, print_secure_end_to_end

__all__ = [
    "ROOT",
    "BenchmarkError",
    "Portal",
    "Sample",
    "bench_end_to_end",
    "bench_node_round",
    "bench_poll",
    "bench_secure_end_to_end",
    "irls_iteration",
    "main",
    "median",
    "percentile",
    "print_end_to_end",
    "print_node_round",
    "print_poll",
    "print_secure_end_to_end",
    "request",
    "summarise_claims",
    "verdict",
]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", default="1,2,3,4", help="which figures, e.g. 1 or 2,3")
    group = parser.add_argument_group("1. node round")
    group.add_argument("--persons", type=int, default=1_000_000)
    group.add_argument("--repeats", type=int, default=7, help="timed repetitions per figure")
    group = parser.add_argument_group("portal (2 and 3)")
    group.add_argument(
        "--database-url",
        help="postgresql://user@127.0.0.1:5432/NAME: created and dropped by this run "
        "(default: a temporary SQLite file)",
    )
    group.add_argument(
        "--broker-url",
        help="Celery broker (default filesystem:// in the temporary directory); a shared Redis "
        "database must not be consumed by any other worker",
    )
    group.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    group.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker")
    group = parser.add_argument_group("2. end to end")
    group.add_argument("--e2e-nodes", type=int, default=4)
    group.add_argument("--e2e-repeats", type=int, default=5)
    group.add_argument("--poll-interval", type=float, default=1.0, help="agents' poll seconds")
    group.add_argument(
        "--eager", action="store_true", help="run Celery tasks in the portal, no worker"
    )
    group = parser.add_argument_group("3. poll endpoint")
    group.add_argument("--nodes", type=int, default=1000, help="simulated nodes")
    group.add_argument("--node-interval", type=float, default=5.0, help="their poll seconds")
    group.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    group.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    group.add_argument("--concurrency", type=int, default=32, help="client connections")
    args = parser.parse_args(argv)
    try:
        args.parts = {int(p) for p in args.parts.split(",") if p.strip()}
    except ValueError:
        parser.error("--parts takes numbers 1 to 4")
    limits = [
        (not args.parts or not args.parts <= {1, 2, 3, 4}, "--parts takes numbers 1 to 4"),
        (args.persons < 100, "--persons must be at least 100"),
        (not 1 <= args.repeats <= 100, "--repeats must be 1..100"),
        (not 1 <= args.e2e_nodes <= 16, "--e2e-nodes must be 1..16"),
        (not 1 <= args.e2e_repeats <= 100, "--e2e-repeats must be 1..100"),
        (not 0.1 <= args.poll_interval <= 30, "--poll-interval must be 0.1..30"),
        (not 1 <= args.nodes <= 100_000, "--nodes must be 1..100000"),
        (not 0.1 <= args.node_interval <= 300, "--node-interval must be 0.1..300"),
        (not 0.5 <= args.duration <= 600, "--duration must be 0.5..600"),
        (not 0 <= args.warmup <= 60, "--warmup must be 0..60"),
        (not 1 <= args.concurrency <= 512, "--concurrency must be 1..512"),
        (not 1 <= args.workers <= 32, "--workers must be 1..32"),
        (not 1 <= args.threads <= 32, "--threads must be 1..32"),
    ]
    for bad, message in limits:
        if bad:
            parser.error(message)
    return args


def node_round(args: argparse.Namespace, workdir: Path) -> None:
    print_node_round(bench_node_round(args.persons, workdir, repeats=args.repeats))


def end_to_end(args: argparse.Namespace, portal: Portal) -> None:
    print_end_to_end(
        bench_end_to_end(
            portal,
            nodes=args.e2e_nodes,
            repeats=args.e2e_repeats,
            poll_interval=args.poll_interval,
        )
    )


def poll(args: argparse.Namespace, portal: Portal) -> None:
    print_poll(
        bench_poll(
            portal,
            fleet=args.nodes,
            interval=args.node_interval,
            duration=args.duration,
            warmup=args.warmup,
            concurrency=args.concurrency,
        )
    )


def secure_aggregation(args: argparse.Namespace, workdir: Path) -> None:
    """Part 4: per-site vs secure end to end on a portal of its own, then ``secagg.py`` (the
    protocol's CPU per vector size) in its own process."""
    with portal_for(args, workdir, "secure-portal") as portal:
        portal.workdir.mkdir(parents=True, exist_ok=True)
        portal.start(wait=False)
        print_secure_end_to_end(
            bench_secure_end_to_end(
                portal, repeats=args.e2e_repeats, poll_interval=args.poll_interval
            )
        )
    print("\n== 4. secure aggregation CPU per vector size: secagg.py", flush=True)
    script = Path(__file__).resolve().parent / "secagg.py"
    subprocess.run([sys.executable, str(script)], check=True, timeout=1800)


def portal_for(args: argparse.Namespace, workdir: Path, name: str = "portal") -> Portal:
    # Part 4's portal starts after parts 2 and 3 dropped theirs: the same database name serves.
    return Portal(
        workdir / name,
        database_url=args.database_url,
        broker_url=args.broker_url,
        eager=args.eager,
        workers=args.workers,
        threads=args.threads,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="optima-fed-bench-"))
    try:
        if 1 in args.parts:
            node_round(args, workdir)
        if args.parts & {2, 3}:
            with portal_for(args, workdir) as portal:
                portal.workdir.mkdir(parents=True, exist_ok=True)
                portal.start(worker=2 in args.parts, wait=False)  # boots during the setup
                if 2 in args.parts:
                    end_to_end(args, portal)
                if 3 in args.parts:
                    poll(args, portal)
        if 4 in args.parts:
            secure_aggregation(args, workdir)
    except (BenchmarkError, subprocess.TimeoutExpired, subprocess.CalledProcessError) as exc:
        print(f"\nbenchmark error: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
