"""Figure 2: end-to-end time of a cohort count over real ``optima-node run`` agents."""

from __future__ import annotations

import http.client
import os
import random
import subprocess
import time
from collections.abc import Sequence
from typing import Any

from .common import (
    CANCER_COHORT,
    CANCERS,
    E2E_SITES,
    PY,
    ROOT,
    TARGET_E2E_SECONDS,
    BenchmarkError,
    machine_load,
    median,
    verdict,
)
from .portal import Portal, request, signal_processes

SETUP_RESEARCHER = """
import json
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm
from accounts.models import ApiToken, Membership, MembershipRole, Organisation, Role
from catalogue.models import Dataset
from catalogue.services import version_create
from governance.models import AccessRequest, Entitlement

with transaction.atomic():
    research = Organisation.objects.create(
        name="Benchmark Institute", slug="bench-research", country="BE", kind="research"
    )
    user = get_user_model().objects.create_user("bench-researcher", "bench@example.org")
    membership = Membership.objects.create(user=user, organisation=research)
    MembershipRole.objects.create(membership=membership, name=Role.RESEARCHER)
    # What an approved access request leaves behind: a request and active entitlements, read by
    # governance.selectors.missing_entitlements when the analysis starts.
    access = AccessRequest.objects.create(
        applicant=user, organisation=research, project_title="Federated benchmark"
    )
    datasets = {}
    for i in range(1, NODES + 1):
        org = Organisation.objects.create(
            name=f"Benchmark Hospital {i}", slug=f"bench-hospital-{i}", country="DE",
            kind="hospital",
        )
        dataset = Dataset.objects.create(
            publisher=org, title=f"Benchmark OMOP cohort {i}",
            description="Synthetic OMOP CDM for the federated benchmark.",
            access_modes=["federated_analytics"],
        )
        # Analyses name published datasets only (federation.selectors.analysis_datasets_by_ids).
        version = version_create(dataset=dataset, user=None, notes="")
        Dataset.objects.filter(pk=dataset.pk).update(current_version=version, status="published")
        Entitlement.objects.create(
            holder=user, dataset=dataset, access_mode="federated_analytics",
            ends_at=timezone.now() + timedelta(days=1), request=access,
        )
        assign_perm("catalogue.run_federated_analysis", user, dataset)  # as governance keeps it
        datasets[org.slug] = dataset.pk
    _, raw = ApiToken.issue(user=user, name="federated benchmark")
print("BENCH-JSON " + json.dumps({"token": raw, "datasets": datasets}))
"""

SET_POLL_INTERVAL = """
import json
from federation.models import Node

count = Node.objects.filter(name__startswith="bench-omop-").update(poll_interval_seconds=INTERVAL)
print("BENCH-JSON " + json.dumps({"nodes": count}))
"""


def _enrol(portal: Portal, slug: str, name: str, dataset_id: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            PY,
            "manage.py",
            "node_enrol",
            "--org",
            slug,
            "--name",
            name,
            "--datasets",
            str(dataset_id),
        ],
        cwd=ROOT,
        env=portal.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def enrol_sites(
    portal: Portal, sites: Sequence[tuple[int, int]], *, poll_interval: float
) -> tuple[str, dict[str, int], list[str], list[str]]:
    """A researcher with an API token and, per (seed, persons) site, a hospital, a published
    dataset under an active entitlement, an enrolled node and a synthetic SQLite CDM. Returns
    (API token, {org slug: dataset id}, node tokens, CDM URLs)."""
    from optima_node.db import connect
    from optima_node.synth import synthesise

    setup = portal.shell(SETUP_RESEARCHER.replace("NODES", str(len(sites))))
    token, datasets = setup["token"], setup["datasets"]
    enrolling = {
        slug: _enrol(portal, slug, f"bench-omop-{i}", dataset_id)
        for i, (slug, dataset_id) in enumerate(datasets.items(), start=1)
    }
    urls = []
    for i, (synth_seed, persons) in enumerate(sites, start=1):  # while the nodes enrol
        path = portal.workdir / f"site{i}.sqlite3"
        db = connect(f"sqlite:///{path}")
        try:
            synthesise(db, persons, synth_seed, CANCERS, replace=True)
        finally:
            db.close()
        urls.append(f"sqlite:///{path}")
    tokens = []
    for slug, process in enrolling.items():
        out, err = process.communicate(timeout=120)
        if process.returncode != 0:
            raise BenchmarkError(f"node_enrol --org {slug} failed:\n{err[-2000:]}")
        tokens.append(out.strip().splitlines()[-1])
    portal.shell(SET_POLL_INTERVAL.replace("INTERVAL", repr(float(poll_interval))))
    return token, datasets, tokens, urls


def spawn_agents(
    portal: Portal,
    tokens: Sequence[str],
    urls: Sequence[str],
    *,
    poll_interval: float,
    policy_file: str | None = None,
) -> list[subprocess.Popen]:
    """One ``optima-node run`` agent per node (named agent1, agent2, ...)."""
    agent_env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"NODE_TOKEN_FILE", "POLICY_FILE", "CDM_SCHEMA", "PYTEST_CURRENT_TEST"}
    }
    if policy_file:
        agent_env["POLICY_FILE"] = policy_file
    return [
        portal.spawn(
            f"agent{i}",
            [PY, "-m", "optima_node.cli", "run"],
            {
                **agent_env,
                "PORTAL_URL": portal.url,
                "NODE_TOKEN": node_token,
                "OMOP_DATABASE_URL": url,
                "LEDGER_FILE": str(portal.workdir / f"ledger{i}.sqlite3"),
                "POLL_INTERVAL": str(poll_interval),
                "PYTHONUNBUFFERED": "1",
            },
        )
        for i, (node_token, url) in enumerate(zip(tokens, urls, strict=True), start=1)
    ]


def timed_analysis(
    portal: Portal,
    conn: http.client.HTTPConnection,
    headers: dict[str, str],
    body: dict[str, Any],
    *,
    timeout: float,
) -> tuple[float, dict]:
    """Seconds from ``POST /api/analyses/`` until ``GET`` reads completed (polled every 50 ms)."""
    started = time.perf_counter()
    status, created = request("POST", portal.url + "/api/analyses/", body, headers, conn=conn)
    if status != 201:
        raise BenchmarkError(f"POST /api/analyses/ answered {status}: {created}")
    detail_url = f"{portal.url}/api/analyses/{created['id']}/"
    deadline = started + timeout
    while time.perf_counter() < deadline:
        status, detail = request("GET", detail_url, headers=headers, conn=conn)
        if status != 200:
            raise BenchmarkError(f"GET {detail_url} answered {status}: {detail}")
        if detail["status"] != "running":
            elapsed = time.perf_counter() - started
            if detail["status"] != "completed":
                raise BenchmarkError(f"the analysis ended {detail['status']}: {detail}")
            return elapsed, detail
        portal.check_alive()
        time.sleep(0.05)
    raise BenchmarkError(f"the {body['type']} did not complete within {timeout:.0f} s")


def bench_end_to_end(
    portal: Portal,
    *,
    nodes: int = 4,
    repeats: int = 5,
    poll_interval: float = 1.0,
    timeout: float = 60,
    seed: int = 7,
    warmup_runs: int = 1,
) -> dict[str, Any]:
    """Agents on small synthetic CDMs; time POST /api/analyses/ until it reads completed."""
    load = machine_load()
    sites = [E2E_SITES[i % len(E2E_SITES)] for i in range(nodes)]
    token, datasets, tokens, urls = enrol_sites(portal, sites, poll_interval=poll_interval)
    portal.wait_ready()  # before the agents: they would back off for seconds otherwise
    spawn_agents(portal, tokens, urls, poll_interval=poll_interval)

    headers = {"Authorization": f"Token {token}"}
    body = {
        "type": "cohort_count",
        "version": 1,
        "datasets": list(datasets.values()),
        "params": {"cohort": CANCER_COHORT, "stratify_by": ["sex"]},
    }
    conn = http.client.HTTPConnection("127.0.0.1", portal.port, timeout=10)

    def one() -> tuple[float, dict]:
        return timed_analysis(portal, conn, headers, body, timeout=timeout)

    try:
        # Warm-up (not timed): the agents' first heartbeats, gunicorn workers, the worker.
        for _ in range(warmup_runs):
            one()
        rng = random.Random(seed)
        times = []
        for _ in range(repeats):
            # Start at a random phase of the agents' poll cycle, not right after they polled.
            time.sleep(rng.uniform(0, poll_interval))
            elapsed, detail = one()
            times.append(elapsed)
    finally:
        conn.close()
        # The agents would poll during the next figure. The worker's warm shutdown takes a few
        # seconds: it is asked now and waited for when the portal stops.
        portal.stop_named("agent")
        signal_processes([p for p in portal.processes if p.bench_name == "worker"])  # type: ignore[attr-defined]
    return {
        "nodes": nodes,
        "persons": [p for _, p in sites],
        "poll_interval": poll_interval,
        "orchestration": (
            "CELERY_TASK_ALWAYS_EAGER=1 in the portal process"
            if portal.eager
            else f"a real Celery worker (solo pool) on the {(portal.broker_url or 'filesystem://').split(':')[0]} broker"
        ),
        "database": portal.vendor,
        "times": times,
        "median": median(times),
        "max": max(times),
        "total": detail["result"]["total"],
        "warmup_runs": warmup_runs,
        "load": load,
    }


def print_end_to_end(r: dict[str, Any]) -> bool:
    print(
        f"\n== 2. End-to-end cohort_count across {r['nodes']} local nodes "
        f"(poll interval {r['poll_interval']:g} s; {r['load']})"
    )
    print(
        f"portal: gunicorn, {r['database']} database; orchestration: {r['orchestration']}; "
        f"agents: optima-node run on synthetic SQLite CDMs of {', '.join(f'{p:,}' for p in r['persons'])} persons"
    )
    print(
        "timed: POST /api/analyses/ until GET /api/analyses/{id}/ reads completed "
        f"(polled every 50 ms), after {r['warmup_runs']} untimed warm-up analysis"
    )
    print(
        "runs: " + ", ".join(f"{t:.2f} s" for t in r["times"]) + f" (pooled total {r['total']:,})"
    )
    met = r["max"] <= TARGET_E2E_SECONDS
    print(
        f"median {r['median']:.2f} s, max {r['max']:.2f} s "
        f"(target <= {TARGET_E2E_SECONDS:g} s, judged on the max): {verdict(met)}"
    )
    return met


# =============================================================================================
# Part 3: the claim endpoint under a simulated fleet
# =============================================================================================
