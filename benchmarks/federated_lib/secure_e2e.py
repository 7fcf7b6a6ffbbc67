"""Figure 4: a four-node Kaplan–Meier end to end with and without secure aggregation.

The same portal, worker and synthetic CDMs for both modes; only the agents' site policy differs
(``secure_aggregation = false`` for per-site pooling), so the difference is the protocol: the key
exchange, the wait for every peer's key, masking, and the portal's unmasking and pooled
disclosure control.
"""

from __future__ import annotations

import http.client
import random
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import CANCER_COHORT, BenchmarkError, machine_load, median, verdict
from .end_to_end import enrol_sites, spawn_agents, timed_analysis
from .portal import Portal, signal_processes, tree_cpu_seconds

# (seed, persons): the three sites of the measurement and a fourth of the same scale.
SECURE_SITES = ((11, 1800), (12, 2600), (13, 3400), (14, 4200))
KM_PARAMS = {
    "cohort": CANCER_COHORT,
    "time_unit_days": 90,
    "max_time_units": 40,
    "stratify_by": "sex",
}
TARGET_OVERHEAD = 0.20
TARGET_CPU_MS = 50.0
MODES = ("per_site", "secure")
# Where the time goes, read back from the portal's rows and audit trail after the runs: seconds
# from the analysis' creation to its last claim, the last key and masked vector (secure) or the
# last run completed (per site), and the end.
TIMELINE = """
import json
from accounts.models import AuditEvent
from federation.models import Analysis

out = {}
for analysis in Analysis.objects.filter(pk__in=IDS):
    start = analysis.created_at
    runs = list(analysis.runs.all())
    events = AuditEvent.objects.filter(timestamp__gte=start, timestamp__lte=analysis.finished_at)

    def last(action):
        stamp = events.filter(action=action).order_by("-timestamp").values_list(
            "timestamp", flat=True).first()
        return (stamp - start).total_seconds() if stamp else None

    out[analysis.pk] = {
        "last claim": max((r.claimed_at - start).total_seconds() for r in runs),
        "last key": last("secure_round.key_posted"),
        "keys complete": last("secure_round.masking"),
        "last masked vector": last("secure_round.masked_posted"),
        "last run completed": last("run.completed"),
        "finished": (analysis.finished_at - start).total_seconds(),
        "_masked": sorted((t - start).total_seconds() for t in events.filter(
            action="secure_round.masked_posted").values_list("timestamp", flat=True)),
    }
print("BENCH-JSON " + json.dumps(out))
"""


def _cpu(agents: Sequence[subprocess.Popen]) -> list[float]:
    seconds = [tree_cpu_seconds(a.pid) for a in agents]
    if any(s is None for s in seconds):
        raise BenchmarkError("cannot read the agents' CPU time (/proc)")
    return [float(s) for s in seconds]  # type: ignore[arg-type]


def bench_secure_end_to_end(
    portal: Portal,
    *,
    sites: Sequence[tuple[int, int]] = SECURE_SITES,
    repeats: int = 5,
    poll_interval: float = 1.0,
    timeout: float = 60,
    seed: int = 7,
    warmup_runs: int = 1,
) -> dict[str, Any]:
    """The two modes alternate on the same four agents: between analyses the benchmark rewrites
    their site policy file (``secure_aggregation``), which an agent re-reads at its next cycle, so
    both modes meet the same agents at the same poll phases. (Restarting the agents per mode gave
    each mode one draw of the agents' relative phases, which moved the last claim, and with it the
    median, by up to 0.2 s.) Per pair of analyses one random start phase serves both, the order
    alternating. ``warmup_runs`` untimed analyses per mode first. Also the agents' CPU per node
    per analysis (all of it: polls, cohort, protocol)."""
    load = machine_load()
    token, datasets, tokens, urls = enrol_sites(portal, sites, poll_interval=poll_interval)
    policy_file = portal.workdir / "policy.toml"
    headers = {"Authorization": f"Token {token}"}
    body = {
        "type": "kaplan_meier",
        "version": 1,
        "datasets": list(datasets.values()),
        "params": KM_PARAMS,
    }
    portal.wait_ready()
    rng = random.Random(seed)
    figures: dict[str, dict[str, Any]] = {
        mode: {"times": [], "cpu": [], "ids": []} for mode in MODES
    }
    conn = http.client.HTTPConnection("127.0.0.1", portal.port, timeout=10)
    try:
        _set_mode(policy_file, MODES[0])
        agents = spawn_agents(
            portal, tokens, urls, poll_interval=poll_interval, policy_file=str(policy_file)
        )
        for mode in MODES:
            _switch(policy_file, mode, poll_interval)
            _warm_up(portal, conn, headers, body, mode, runs=warmup_runs, timeout=timeout)
        for i in range(repeats):
            phase = rng.uniform(0, poll_interval)
            for mode in MODES if i % 2 else MODES[::-1]:
                _switch(policy_file, mode, poll_interval)
                for attempt in range(3):
                    time.sleep(phase)
                    before = _cpu(agents)
                    elapsed, detail = timed_analysis(portal, conn, headers, body, timeout=timeout)
                    after = _cpu(agents)
                    if (detail.get("result") or {}).get("aggregation") == mode or attempt == 2:
                        break
                    time.sleep(poll_interval)  # an agent had not reported the policy yet
                _check_mode(detail, mode)
                figures[mode]["times"].append(elapsed)
                figures[mode]["ids"].append(detail["id"])
                figures[mode]["cpu"].extend(b - a for a, b in zip(before, after, strict=True))
    finally:
        conn.close()
        portal.stop_named("agent")
        signal_processes([p for p in portal.processes if p.bench_name == "worker"])  # type: ignore[attr-defined]
    for f in figures.values():
        cpu = f.pop("cpu")
        f.update(
            median=median(f["times"]),
            max=max(f["times"]),
            cpu_ms_median=median(cpu) * 1000,
            cpu_ms_max=max(cpu) * 1000,
        )
    per_site, secure = figures["per_site"], figures["secure"]
    ids = per_site["ids"] + secure["ids"]
    phases = portal.shell(TIMELINE.replace("IDS", repr(ids)))
    for mode in MODES:
        rows = [phases[str(i)] for i in figures[mode]["ids"]]
        figures[mode]["rows"] = rows
        figures[mode]["after_claim"] = median([r["finished"] - r["last claim"] for r in rows])
        figures[mode]["phases"] = {
            name: median([row[name] for row in rows])
            for name in rows[0]
            if not name.startswith("_") and all(row[name] is not None for row in rows)
        }
    return {
        "persons": [p for _, p in sites],
        "poll_interval": poll_interval,
        "database": portal.vendor,
        "load": load,
        "warmup_runs": warmup_runs,
        **{mode: figures[mode] for mode in MODES},
        "overhead_raw": (secure["median"] - per_site["median"]) / per_site["median"],
        # The wait for the last claim is the agents' poll phase, the same in both modes (same
        # agents, same random start phases): only what follows it can differ. Its difference
        # over the per-site median is the overhead, without the claim wait's noise (about
        # +-0.1 s between the two medians of ten runs).
        "overhead": (secure["after_claim"] - per_site["after_claim"]) / per_site["median"],
        "cpu_overhead_ms": secure["cpu_ms_median"] - per_site["cpu_ms_median"],
    }


def _set_mode(policy_file: Path, mode: str) -> None:
    policy_file.write_text(f"secure_aggregation = {'true' if mode == 'secure' else 'false'}\n")


def _switch(policy_file: Path, mode: str, poll_interval: float) -> None:
    """Rewrite the agents' policy for ``mode`` and give every agent a cycle to report it."""
    if (
        policy_file.read_text()
        != f"secure_aggregation = {'true' if mode == 'secure' else 'false'}\n"
    ):
        _set_mode(policy_file, mode)
        time.sleep(poll_interval + 0.3)


def _warm_up(
    portal: Portal,
    conn: http.client.HTTPConnection,
    headers: dict[str, str],
    body: dict[str, Any],
    mode: str,
    *,
    runs: int,
    timeout: float,
) -> None:
    """Untimed analyses until ``runs`` were pooled in ``mode``: the portal decides the mode from
    the policy the agents last reported, so the first one after a restart may still be the other."""
    done = attempts = 0
    while done < max(runs, 1):
        attempts += 1
        _, detail = timed_analysis(portal, conn, headers, body, timeout=timeout)
        if (detail.get("result") or {}).get("aggregation") == mode:
            done += 1
        elif attempts >= 10:
            _check_mode(detail, mode)
        else:
            time.sleep(0.5)


def _check_mode(detail: dict[str, Any], mode: str) -> None:
    got = (detail.get("result") or {}).get("aggregation")
    if got != mode:
        raise BenchmarkError(f"the analysis was pooled {got!r}, the benchmark expected {mode!r}")


def print_secure_end_to_end(r: dict[str, Any]) -> bool:
    print(
        f"\n== 4. Kaplan–Meier (90-day units, 40 units, by sex) across {len(r['persons'])} "
        f"local nodes, per-site vs secure aggregation (poll interval {r['poll_interval']:g} s; "
        f"{r['load']})"
    )
    print(
        f"portal: gunicorn, {r['database']} database, a real Celery worker; agents: optima-node "
        f"run on synthetic SQLite CDMs of {', '.join(f'{p:,}' for p in r['persons'])} persons"
    )
    print(
        "timed: POST /api/analyses/ until it reads completed, after "
        f"{r['warmup_runs']} untimed warm-up analysis per mode"
    )
    for mode in MODES:
        f = r[mode]
        print(
            f"{mode:9} runs: {', '.join(f'{t:.2f}' for t in f['times'])} s; median "
            f"{f['median']:.2f} s, max {f['max']:.2f} s; agent CPU per node per analysis "
            f"median {f['cpu_ms_median']:.0f} ms, max {f['cpu_ms_max']:.0f} ms"
        )
        print(
            "          median seconds after the start: "
            + ", ".join(f"{name} {at:.2f}" for name, at in f["phases"].items())
        )
    lags = [
        row["_masked"][-1] - row["keys complete"]
        for row in r["secure"]["rows"]
        if row["keys complete"] is not None and row["_masked"]
    ]
    if lags:
        print(
            f"          the last masked vector came {median(lags):.3f} s (median; max "
            f"{max(lags):.3f} s) after the keys were complete"
        )
    met_time = r["overhead"] <= TARGET_OVERHEAD
    met_cpu = r["cpu_overhead_ms"] <= TARGET_CPU_MS
    print(
        f"median end-to-end times: secure {r['overhead_raw'] * 100:+.1f} % against per site; from "
        f"the last claim to the end (the part the mode changes): per site "
        f"{r['per_site']['after_claim']:.3f} s, secure {r['secure']['after_claim']:.3f} s"
    )
    print(
        f"overhead of secure aggregation: {r['overhead'] * 100:+.1f} % of the per-site median "
        f"end-to-end time (target <= {TARGET_OVERHEAD * 100:.0f} %): {verdict(met_time)}"
    )
    print(
        f"extra agent CPU per node per round: {r['cpu_overhead_ms']:+.0f} ms (median; target <= "
        f"{TARGET_CPU_MS:.0f} ms): {verdict(met_cpu)}"
    )
    return met_time and met_cpu
