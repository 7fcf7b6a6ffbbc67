"""Load: 50 concurrent browsing users and 500 polling nodes against a gunicorn portal.

Run: .venv/bin/python benchmarks/load.py [--duration 30] [--users 50] [--nodes 500]
     [--poll-interval 5] [--database-url postgresql://postgres@127.0.0.1:5432/optima_load]

The portal is started by ``benchmarks/federated.py``'s ``Portal``: a database of its own (PostgreSQL
by default, created and dropped by this run; ``--database-url sqlite`` for a temporary SQLite file),
the demo seed, ``--nodes`` approved nodes, gunicorn on 127.0.0.1. Then, for ``--duration`` seconds:

- ``--users`` browsing users (closed loop, think time 0.5–1.5 s), logged in through the login form
  as demo people without a second factor, each fetching pages: dashboard, catalogue search, a
  dataset, requests, agreements, analyses, feedback, CDS pathways;
- ``--nodes`` node agents polling ``POST /api/node/runs/claim/`` every ``--poll-interval`` seconds
  (open loop: ``nodes / interval`` requests per second, from a pool of client threads).

It prints, per kind and overall: requests, throughput (requests/s), p50/p95/p99 latency (ms) and
the error rate (network errors and 5xx; for pages also 4xx). Exit 0 when measured, 1 otherwise.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from federated import BenchmarkError, Portal, percentile

PAGES = [
    "/dashboard/",
    "/catalogue/",
    "/catalogue/?q=lung",
    "/catalogue/datasets/optima-de-nsclc-immunotherapy/",
    "/governance/requests/",
    "/governance/agreements/",
    "/governance/entitlements/",
    "/federation/",
    "/feedback/",
    "/cds/",
]
# Demo people without a second factor (admin and dac.* need TOTP).
BROWSERS = [
    "researcher",
    "researcher2",
    "steward.de",
    "steward.fr",
    "steward.nl",
    "clinician.de",
    "clinician.fr",
    "siteadmin.de",
    "signatory.eicor",
    "curator",
]
PASSWORD = "optima-demo-2026"

ENROL = """
import json
from django.utils import timezone
from accounts.models import Organisation
from federation.models import Node, NodeStatus
# Approved nodes in bulk (node_enrol, one audited transaction per node, is the same row).
orgs = list(Organisation.objects.filter(kind="hospital").order_by("slug"))
nodes, tokens = [], []
for i in range(COUNT):
    node = Node(
        organisation=orgs[i % len(orgs)], name=f"load-node-{i}", status=NodeStatus.APPROVED,
        approved_at=timezone.now(),
    )
    tokens.append(node.issue_token())
    nodes.append(node)
Node.objects.bulk_create(nodes, batch_size=500)
print("BENCH-JSON " + json.dumps(tokens))
"""


@dataclass
class Sample:
    kind: str
    started: float
    done: float
    status: int  # 0: network error


def login(port: int, username: str) -> str:
    """Log in through the form; returns the Cookie header of the session."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/accounts/login/")
        response = conn.getresponse()
        html = response.read().decode()
        if response.status != 200:
            raise BenchmarkError(f"GET /accounts/login/ answered {response.status}: {html[:300]}")
        csrf_cookie = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie", "")).group(1)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
        body = urlencode({"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token})
        conn.request(
            "POST",
            "/accounts/login/",
            body=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={csrf_cookie}",
                "Referer": f"http://127.0.0.1:{port}/accounts/login/",
            },
        )
        response = conn.getresponse()
        response.read()
        cookies = response.getheader("Set-Cookie", "")
        session = re.search(r"sessionid=([^;]+)", cookies)
        if response.status != 302 or not session:
            raise BenchmarkError(f"login as {username} failed ({response.status})")
        return f"sessionid={session.group(1)}; csrftoken={csrf_cookie}"
    finally:
        conn.close()


def _call(conn, method: str, path: str, headers: dict) -> int:
    for attempt in (1, 2):
        try:
            conn.request(method, path, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            conn.close()
            if attempt == 2:
                return 0
        except (OSError, http.client.HTTPException):
            conn.close()
            return 0
    return 0


def browse(port: int, cookie: str, until: float, out: list[Sample], lock, seed: int) -> None:
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    local = []
    while time.perf_counter() < until:
        path = rng.choice(PAGES)
        started = time.perf_counter()
        status = _call(conn, "GET", path, {"Cookie": cookie})
        local.append(Sample("page", started, time.perf_counter(), status))
        time.sleep(rng.uniform(0.5, 1.5))
    conn.close()
    with lock:
        out.extend(local)


def poll(
    port: int, tokens: list[str], interval: float, t0: float, until: float, out, lock, threads
):
    """Open loop: node i polls at t0 + offset_i + k * interval; ``threads`` clients send them."""
    rate = len(tokens) / interval
    counter = iter(range(10**9))
    counter_lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        local = []
        while True:
            with counter_lock:
                i = next(counter)
            due = t0 + i / rate
            if due >= until:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            started = time.perf_counter()
            headers = {"Authorization": f"Node {tokens[i % len(tokens)]}", "Content-Length": "0"}
            status = _call(conn, "POST", "/api/node/runs/claim/", headers)
            # Latency from when the poll was due: a server falling behind cannot hide.
            local.append(Sample("node", min(started, max(due, 0)), time.perf_counter(), status))
        conn.close()
        with lock:
            out.extend(local)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    return pool


def summarise(samples: list[Sample], duration: float, kind: str) -> dict:
    if not samples:
        raise BenchmarkError(f"no {kind} request was measured")
    latencies = [(s.done - s.started) * 1000 for s in samples]
    if kind == "node":
        errors = [s for s in samples if s.status == 0 or s.status >= 400]
    else:
        errors = [s for s in samples if s.status == 0 or s.status >= 400]
    statuses: dict[int, int] = {}
    for s in samples:
        statuses[s.status] = statuses.get(s.status, 0) + 1
    return {
        "kind": kind,
        "requests": len(samples),
        "throughput": len(samples) / duration,
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
        "error_rate": len(errors) / len(samples),
        "statuses": statuses,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--poll-interval", type=float, default=5.0)
    parser.add_argument("--client-threads", type=int, default=32, help="threads sending polls")
    parser.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/optima_load",
        help="a postgresql:// URL naming a database this run creates and drops, or 'sqlite'",
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)

    database_url = None if args.database_url == "sqlite" else args.database_url
    with tempfile.TemporaryDirectory(prefix="optima-load-") as tmp:
        portal = Portal(
            workdir=Path(tmp),
            database_url=database_url,
            eager=True,
            workers=args.workers,
            threads=args.threads,
        )
        try:
            print(f"starting the portal ({'PostgreSQL' if database_url else 'SQLite'}) …")
            portal.var_dir.mkdir(parents=True, exist_ok=True)
            portal.manage("collectstatic", "--noinput", "-v", "0")  # DEBUG=0 serves the manifest
            portal.start(worker=False)
            portal.manage("seed_demo", "--quiet-logins", timeout=600)
            tokens = portal.shell(ENROL.replace("COUNT", str(args.nodes)), timeout=900)
            cookies = [login(portal.port, BROWSERS[i % len(BROWSERS)]) for i in range(args.users)]
            print(
                f"{args.users} users logged in, {len(tokens)} nodes enrolled; "
                f"loading for {args.duration:.0f} s …"
            )
            lock = threading.Lock()
            samples: list[Sample] = []
            t0 = time.perf_counter() + 0.5
            until = t0 + args.duration
            pollers = poll(
                portal.port,
                tokens,
                args.poll_interval,
                t0,
                until,
                samples,
                lock,
                args.client_threads,
            )
            users = [
                threading.Thread(
                    target=browse,
                    args=(portal.port, cookie, until, samples, lock, i),
                    daemon=True,
                )
                for i, cookie in enumerate(cookies)
            ]
            for thread in users:
                thread.start()
            for thread in users + pollers:
                thread.join(timeout=args.duration + 120)
            portal.check_alive()
        except BenchmarkError as exc:
            print(f"load benchmark failed: {exc}", file=sys.stderr)
            log = Path(tmp) / "gunicorn.log"
            if log.exists():
                print(log.read_text()[-3000:], file=sys.stderr)
            return 1
        finally:
            portal.stop()

    results = [
        summarise([s for s in samples if s.kind == kind], args.duration, kind)
        for kind in ("page", "node")
    ]
    results.append(summarise(samples, args.duration, "all"))
    print(
        f"\nportal: gunicorn {args.workers} workers x {args.threads} threads, "
        f"{'PostgreSQL' if database_url else 'SQLite'}; {args.users} browsing users, "
        f"{args.nodes} nodes polling every {args.poll_interval:g} s, {args.duration:.0f} s"
    )
    print(
        f"{'kind':<6} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'errors':>8}  statuses"
    )
    for r in results:
        print(
            f"{r['kind']:<6} {r['requests']:>9} {r['throughput']:>8.1f} {r['p50']:>8.1f} "
            f"{r['p95']:>8.1f} {r['p99']:>8.1f} {r['error_rate'] * 100:>7.2f}%  {r['statuses']}"
        )
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
