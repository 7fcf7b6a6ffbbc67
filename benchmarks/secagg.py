"""Secure aggregation benchmark: CPU per node per round, and the portal's unmasking.

Run: .venv/bin/python benchmarks/secagg.py [--nodes 4] [--rounds 20]

For a Kaplan-Meier vector of each size (3 strata by sex x 41 time units x 2 cells; 10 age groups
x 41 x 2, the contract's 90-day/40-unit analysis by age group; and 10 x 10,001 x 2, the largest
the parameter limits allow), ``--nodes`` simulated nodes run ``--rounds`` rounds in
this process. Per node and round the CPU time (``time.process_time``) of what a node adds for
secure aggregation is measured: ``new_round_key`` (X25519 key pair + Ed25519 signature), then
``encode_array`` of its raw table (as the agent does) and ``mask`` (verifying every peer's announcement, one X25519
exchange, HKDF and ChaCha20 stream per pair, the modular sums). The portal side (``unmask_sum``,
``decode``, ``control``) is timed per round. Target: <= 50 ms CPU per node per round.

:func:`measure` is what a benchmark runner calls; it returns the figures as a dict.
Exit status: 0 when measured (a missed target is printed, not failed), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.pooled_disclosure import control
from optima_node import secagg
from optima_node.secagg_layout import decode, encode_array, stratum_labels

TARGET_MS = 50.0
SIZES: dict[str, dict[str, Any]] = {
    "3 strata (sex) x 41 units": {"stratify_by": "sex", "max_time_units": 40},
    "10 age groups x 41 units": {"stratify_by": "age_group", "max_time_units": 40},
    "10 age groups x 10,001 units": {"stratify_by": "age_group", "max_time_units": 10_000},
}


def km_params(size: dict[str, Any]) -> dict[str, Any]:
    return {
        "cohort": {"condition_concept_ids": [4115276]},
        "time_unit_days": 90,
        "max_time_units": size["max_time_units"],
        "stratify_by": size["stratify_by"],
    }


def raw_km_table(params: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A node's raw table with every cell non-zero (encode's worst case; the vector is fixed)."""
    return {
        "time_unit_days": params["time_unit_days"],
        "max_time_units": params["max_time_units"],
        "stratify_by": params["stratify_by"],
        "strata": [
            {
                "stratum": label,
                "rows": [
                    {"time": t, "events": rng.randint(0, 30), "censored": rng.randint(0, 30)}
                    for t in range(params["max_time_units"] + 1)
                ],
            }
            for label in stratum_labels(params["stratify_by"], params)
        ],
    }


def measure(*, nodes: int = 4, rounds: int = 20, sizes: dict | None = None) -> dict[str, Any]:
    """Figures per vector size: node CPU ms per round (median, max) and portal ms per round."""
    rng = random.Random(14)
    identities = {i: Ed25519PrivateKey.generate() for i in range(1, nodes + 1)}
    pinned = {i: secagg.public_identity(k) for i, k in identities.items()}
    figures: dict[str, Any] = {}
    for name, size in (sizes or SIZES).items():
        params = km_params(size)
        tables = {i: raw_km_table(params, rng) for i in identities}
        length = len(encode_array("kaplan_meier", params, tables[1]))
        node_ms: list[float] = []
        portal_ms: list[float] = []
        for r in range(rounds):
            round_id = f"bench-{r}"
            keys, spent = {}, {}
            for i, identity in identities.items():
                start = time.process_time()
                keys[i] = secagg.new_round_key(
                    identity, analysis_id=1, round_id=round_id, node_id=i, vector_length=length
                )
                spent[i] = time.process_time() - start
            relayed = [k.announcement for k in keys.values()]
            masked = []
            for i in identities:
                start = time.process_time()
                vector = encode_array("kaplan_meier", params, tables[i])
                masked.append(
                    secagg.mask(
                        vector,
                        key=keys[i],
                        peers=relayed,
                        identities=pinned,
                        analysis_id=1,
                        round_id=round_id,
                    )
                )
                node_ms.append(1000 * (spent[i] + time.process_time() - start))
            start = time.process_time()
            pooled = decode("kaplan_meier", params, secagg.unmask_sum(masked))
            control("kaplan_meier", params, pooled, 5)
            portal_ms.append(1000 * (time.process_time() - start))
        figures[name] = {
            "vector_length": length,
            "node_cpu_ms_median": statistics.median(node_ms),
            "node_cpu_ms_max": max(node_ms),
            "portal_cpu_ms_median": statistics.median(portal_ms),
            "target_met": statistics.median(node_ms) <= TARGET_MS,
        }
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    if args.nodes < 3 or args.rounds < 1:
        parser.error("--nodes must be at least 3 and --rounds at least 1")
    print(f"secure aggregation, {args.nodes} nodes, {args.rounds} rounds; load {os.getloadavg()}")
    for name, f in measure(nodes=args.nodes, rounds=args.rounds).items():
        verdict = "target met" if f["target_met"] else "target missed"
        print(
            f"  {name:<30} {f['vector_length']:>7} cells: node CPU/round median "
            f"{f['node_cpu_ms_median']:.1f} ms (max {f['node_cpu_ms_max']:.1f}), "
            f"portal {f['portal_cpu_ms_median']:.1f} ms; <= {TARGET_MS:.0f} ms: {verdict}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
