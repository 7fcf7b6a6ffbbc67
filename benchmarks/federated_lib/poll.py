"""Figure 3: the claim endpoint under a simulated fleet of polling nodes."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .common import TARGET_P99_MS, BenchmarkError, machine_load, percentile, verdict
from .portal import Portal, tree_cpu_seconds

ENROL_FLEET = """
import json
from django.db import transaction
from django.utils import timezone
from accounts.models import Organisation
from federation.models import Liveness, Node, NodeStatus
from optima_node import __version__
from optima_node.schemas import CAPABILITIES

now = timezone.now()
capabilities = [{"type": t, "version": v} for t, v in CAPABILITIES]
policy = {"require_approval": False, "review_before_release": False, "min_cell_count": 5,
          "allowed_types": [t for t, _ in CAPABILITIES], "federated_learning": False}
with transaction.atomic():
    org = Organisation.objects.create(
        name="Benchmark fleet", slug="bench-fleet", country="DE", kind="hospital"
    )
    nodes, tokens = [], []
    for i in range(FLEET):
        node = Node(
            organisation=org, name=f"fleet-{i:05d}", status=NodeStatus.APPROVED,
            poll_interval_seconds=INTERVAL, approved_at=now, agent_version=__version__,
            capabilities=capabilities, cdm_version="5.4", vocabulary_version="bench",
            dialect="sqlite", person_count=1000, policy=policy, first_seen_at=now,
            last_seen_at=now, last_liveness=Liveness.ONLINE,
        )
        tokens.append(node.issue_token())
        nodes.append(node)
    Node.objects.bulk_create(nodes, batch_size=500)
with open(TOKENS_PATH, "w") as out:
    json.dump(tokens, out)
print("BENCH-JSON " + json.dumps({"nodes": len(nodes)}))
"""


@dataclass
class Sample:
    scheduled: float
    sent: float
    done: float
    status: int  # 0: a network error
    retried: bool = False  # sent again on a fresh connection after a stale keep-alive one


STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


def drive_claims(
    port: int,
    tokens: Sequence[str],
    *,
    rate: float,
    duration: float,
    warmup: float,
    concurrency: int,
    timeout: float = 10,
) -> tuple[list[Sample], int]:
    """Open-loop load: request i is due at t0 + i/rate, for node i mod len(tokens).

    Returns the samples after the warm-up and the number of requests sent in all."""
    total = int((warmup + duration) * rate)
    lock = threading.Lock()
    counter = iter(range(total))
    samples: list[Sample] = []
    t0 = time.perf_counter() + 0.2
    stop_at = t0 + warmup + duration + 30  # hard bound even if the server stalls

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        local: list[Sample] = []
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    break
                due = t0 + i / rate
                now = time.perf_counter()
                if now > stop_at:
                    break
                if due > now:
                    time.sleep(due - now)
                sent = time.perf_counter()
                headers = {
                    "Authorization": f"Node {tokens[i % len(tokens)]}",
                    "Content-Length": "0",
                }
                status, retried = 0, False
                for attempt in (1, 2):
                    reused = conn.sock is not None
                    try:
                        conn.request("POST", "/api/node/runs/claim/", headers=headers)
                        response = conn.getresponse()
                        response.read()
                        status = response.status
                        break
                    except STALE_CONNECTION:
                        # The server closed an idle keep-alive connection: reconnect once, as
                        # any HTTP client library does. Anything else counts as an error.
                        conn.close()
                        if attempt == 1 and reused:
                            retried = True
                            continue
                        break
                    except (OSError, http.client.HTTPException):
                        conn.close()
                        break
                local.append(Sample(due, sent, time.perf_counter(), status, retried))
        finally:
            conn.close()
            with lock:
                samples.extend(local)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, stop_at - time.perf_counter()) + timeout + 5)
    measured = [s for s in samples if s.scheduled >= t0 + warmup]
    return sorted(measured, key=lambda s: s.scheduled), len(samples)


def summarise_claims(samples: Sequence[Sample], rate: float) -> dict[str, Any]:
    if not samples:
        raise BenchmarkError("no claim request was measured")
    ok = [s for s in samples if s.status in (200, 204)]
    window = max(s.done for s in samples) - min(s.scheduled for s in samples)
    service = [(s.done - s.sent) * 1000 for s in samples]
    # From when the request was due: includes waiting for a free client connection when the
    # server falls behind, so a slow server cannot hide behind a slower request rate.
    from_due = [(s.done - s.scheduled) * 1000 for s in samples]
    statuses: dict[str, int] = {}
    for s in samples:
        statuses[str(s.status or "network error")] = (
            statuses.get(str(s.status or "network error"), 0) + 1
        )
    return {
        "requests": len(samples),
        "offered_rate": rate,
        "achieved_rate": len(ok) / window if window > 0 else 0.0,
        "error_rate": 1 - len(ok) / len(samples),
        "statuses": statuses,
        "service": {q: percentile(service, q) for q in (50, 95, 99)},
        "from_due": {q: percentile(from_due, q) for q in (50, 95, 99)},
        "max_ms": max(from_due),
        "reconnects": sum(s.retried for s in samples),
    }


def bench_poll(
    portal: Portal,
    *,
    fleet: int = 1000,
    interval: float = 5.0,
    duration: float = 20.0,
    warmup: float = 2.0,
    concurrency: int = 32,
) -> dict[str, Any]:
    load = machine_load()
    tokens_path = portal.workdir / "fleet-tokens.json"
    portal.shell(
        ENROL_FLEET.replace("FLEET", str(fleet))
        .replace("INTERVAL", repr(float(interval)))
        .replace("TOKENS_PATH", repr(str(tokens_path)))
    )
    tokens = json.loads(tokens_path.read_text())
    portal.wait_ready()
    rate = fleet / interval
    server = next(p for p in portal.processes if p.bench_name == "gunicorn")  # type: ignore[attr-defined]
    server_before = tree_cpu_seconds(server.pid)
    client_before = time.process_time()
    wall_before = time.perf_counter()
    samples, sent = drive_claims(
        portal.port,
        tokens,
        rate=rate,
        duration=duration,
        warmup=warmup,
        concurrency=concurrency,
    )
    wall = time.perf_counter() - wall_before
    client_cpu = time.process_time() - client_before
    server_after = tree_cpu_seconds(server.pid)
    portal.check_alive()
    server_cpu = server_after - server_before if None not in (server_before, server_after) else None
    return {
        "fleet": fleet,
        "interval": interval,
        "duration": duration,
        "warmup": warmup,
        "concurrency": concurrency,
        "workers": portal.workers,
        "threads": portal.threads,
        "database": portal.vendor,
        "cpus": os.cpu_count(),
        "load": load,
        "client_cpu_share": client_cpu / wall,
        "server_cpu_share": None if server_cpu is None else server_cpu / wall,
        "server_cpu_seconds": server_cpu,
        "sent": sent,
        **summarise_claims(samples, rate),
    }


def print_poll(r: dict[str, Any]) -> bool:
    print(
        f"\n== 3. POST /api/node/runs/claim/ under {r['fleet']:,} simulated nodes polling every "
        f"{r['interval']:g} s ({r['load']})"
    )
    print(
        f"gunicorn {r['workers']} gthread workers x {r['threads']} threads, {r['database']} database; "
        f"{r['concurrency']} keep-alive client connections, open-loop schedule, "
        f"{r['duration']:g} s measured after {r['warmup']:g} s warm-up; no runs waiting (answers 204)"
    )
    print(
        f"requests {r['requests']:,}; offered {r['offered_rate']:.0f}/s, achieved "
        f"{r['achieved_rate']:.1f}/s; errors {r['error_rate'] * 100:.2f}% "
        f"(statuses {', '.join(f'{k}: {v}' for k, v in sorted(r['statuses'].items()))}; "
        f"{r['reconnects']} resent after the server closed an idle keep-alive connection)"
    )
    if r["server_cpu_share"] is not None:
        print(
            f"CPU while loading ({r['cpus']} cores): gunicorn {r['server_cpu_share'] * 100:.0f}% "
            f"of a core, this load generator {r['client_cpu_share'] * 100:.0f}%; gunicorn CPU "
            f"per request (warm-up included) {r['server_cpu_seconds'] / r['sent'] * 1000:.1f} ms"
        )
    s, d = r["service"], r["from_due"]
    print(f"latency from send: p50 {s[50]:.1f} ms, p95 {s[95]:.1f} ms, p99 {s[99]:.1f} ms")
    print(
        f"latency from the scheduled time (incl. client queueing): p50 {d[50]:.1f} ms, "
        f"p95 {d[95]:.1f} ms, p99 {d[99]:.1f} ms, max {r['max_ms']:.1f} ms"
    )
    met = d[99] < TARGET_P99_MS and r["error_rate"] == 0
    print(
        f"p99 {d[99]:.1f} ms (target < {TARGET_P99_MS:g} ms, judged from the scheduled time, "
        f"with no errors): {verdict(met)}"
    )
    return met
