"""benchmarks/federated.py at toy sizes, so the script cannot rot: every figure is measured once,
through the same functions and real processes (gunicorn, ``optima-node run`` agents,
``manage.py node_enrol`` and the setup snippets) as a full run. To stay fast the portal runs on
this test's (already migrated) database instead of migrating one of its own, and with eager
Celery tasks instead of a worker."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.processes import ROOT, database_url_for_subprocess

pytestmark = pytest.mark.integration


def _load():
    spec = importlib.util.spec_from_file_location(
        "benchmarks_federated", ROOT / "benchmarks" / "federated.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _load()


def test_percentiles_and_claim_summary():
    assert bench.percentile([5, 1, 4, 2, 3], 50) == 3
    assert bench.percentile(list(range(1, 101)), 99) == 99
    assert bench.percentile([7.0], 99) == 7.0
    samples = [bench.Sample(i * 0.01, i * 0.01, i * 0.01 + 0.002, 204) for i in range(99)]
    samples.append(bench.Sample(0.99, 0.99, 1.2, 0))
    summary = bench.summarise_claims(samples, rate=100)
    assert summary["requests"] == 100
    assert summary["error_rate"] == pytest.approx(0.01)
    assert summary["statuses"] == {"204": 99, "network error": 1}
    assert summary["service"][50] == pytest.approx(2.0)


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--parts", "5"])
    assert exit_.value.code == 2
    assert "--parts" in capsys.readouterr().err


def test_the_node_round_figure(tmp_path, capsys):
    result = bench.bench_node_round(3000, tmp_path, repeats=1)
    assert 0 < result["rows"] <= 3000
    assert result["terms"] == 4
    assert result["node_round_seconds"] > 0 and result["irls_seconds"] > 0
    assert result["ratio"] == pytest.approx(result["node_round_seconds"] / result["irls_seconds"])
    bench.print_node_round(result)
    out = capsys.readouterr().out
    assert "ratio node/pooled" in out and ("target met" in out or "target missed" in out)


@pytest.mark.django_db(transaction=True)
def test_the_portal_figures_with_real_processes(tmp_path, capsys):
    portal = bench.Portal(
        tmp_path / "portal",
        database_url=database_url_for_subprocess(),
        create_database=False,
        migrate=False,
        # The orchestration in the portal: a worker's warm shutdown alone would take seconds.
        # Full runs (make bench) use the real worker.
        eager=True,
        workers=2,
        threads=2,
    )
    portal.workdir.mkdir(parents=True)
    with portal:
        portal.start(wait=False)
        e2e = bench.bench_end_to_end(
            portal, nodes=1, repeats=1, poll_interval=0.5, warmup_runs=0, timeout=30
        )
        assert len(e2e["times"]) == 1 and e2e["total"] > 0
        # The agents are stopped after the end-to-end figure.
        assert [p.bench_name for p in portal.processes] == ["gunicorn"]
        poll = bench.bench_poll(
            portal, fleet=20, interval=0.5, duration=1.0, warmup=0.3, concurrency=4
        )
        assert poll["requests"] >= 30
        assert poll["error_rate"] == 0, poll["statuses"]
        assert set(poll["statuses"]) == {"204"}
        processes = list(portal.processes)
    assert all(p.poll() is not None for p in processes)
    assert portal.processes == []
    assert bench.print_end_to_end(e2e) in (True, False)
    assert bench.print_poll(poll) in (True, False)
    out = capsys.readouterr().out
    assert "End-to-end cohort_count" in out and "p99" in out


@pytest.mark.django_db(transaction=True)
def test_the_secure_aggregation_figure_with_real_processes(tmp_path, capsys):
    portal = bench.Portal(
        tmp_path / "secure-portal",
        database_url=database_url_for_subprocess(),
        create_database=False,
        migrate=False,
        eager=True,
        workers=2,
        threads=2,
    )
    portal.workdir.mkdir(parents=True)
    with portal:
        portal.start(wait=False)
        r = bench.bench_secure_end_to_end(
            portal,
            sites=((11, 400), (12, 400), (13, 400)),
            repeats=1,
            poll_interval=0.5,
            timeout=30,
        )
        assert [p.bench_name for p in portal.processes] == ["gunicorn"]
    for mode in ("per_site", "secure"):
        assert len(r[mode]["times"]) == 1 and r[mode]["median"] > 0
        phases = r[mode]["phases"]
        assert 0 <= phases["last claim"] <= phases["finished"] <= r[mode]["max"]
    assert r["secure"]["phases"]["keys complete"] <= r["secure"]["phases"]["last masked vector"]
    assert r["overhead_raw"] == pytest.approx(
        (r["secure"]["median"] - r["per_site"]["median"]) / r["per_site"]["median"]
    )
    for mode in ("per_site", "secure"):  # one run each: the time after the last claim is its own
        row = r[mode]["rows"][0]
        assert r[mode]["after_claim"] == pytest.approx(row["finished"] - row["last claim"])
    assert r["overhead"] == pytest.approx(
        (r["secure"]["after_claim"] - r["per_site"]["after_claim"]) / r["per_site"]["median"]
    )
    assert bench.print_secure_end_to_end(r) in (True, False)
    out = capsys.readouterr().out
    assert "per-site vs secure aggregation" in out and "overhead of secure aggregation" in out
