"""Federated-learning benchmark: a real NVIDIA FLARE POC system (server + 3 clients on 127.0.0.1).

Run: .venv/bin/python benchmarks/federated_learning.py [--sites 3] [--rounds 5] [--persons 2000]

Figures: wall time from submit (the portal's ``fl_submit``) to a released model in the registry
for ``--sites`` sites × ``--rounds`` rounds of the logistic-regression template, and the portal's
own overhead — building and submitting the job, every monitoring poll (admin API session, job
meta, show_stats, writing progress), downloading the result and the release — as a share of it.
The portal polls once per ``--poll`` seconds, as the monitor task does (FLARE_MONITOR_INTERVAL).

Everything runs in a temporary directory (SQLite portal database, OMOP databases, FLARE
workspace) that is removed on the way out; FLARE is stopped even on errors.
Exit status: 0 figures printed; 1 a measurement could not be made (e.g. nvflare missing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="optima-flbench-"))
    os.environ["OPTIMA_VAR_DIR"] = str(tmp / "var")
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'portal.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "optima_portal.settings")
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    poc = None
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        from federation.flare import nvflare_available

        if not nvflare_available():
            print("nvflare is not installed: pip install 'nvflare>=2.9,<2.10'", file=sys.stderr)
            return 1
        call_command("migrate", verbosity=0)
        from federation.flare import services as fl
        from federation.flare.poc import ADMIN_USER, Poc, free_port
        from federation.models import FlJobStatus
        from optima_node.db import connect
        from optima_node.policy import Policy
        from optima_node.synth import synthesise
        from tests.factories import OrganisationFactory, make_member
        from tests.federation.fl_factories import grant_federated_learning, make_fl_site

        names = [f"bench-site-{i + 1}" for i in range(args.sites)]
        for i, name in enumerate(names):
            path = tmp / f"{name}.sqlite3"
            database = connect(f"sqlite:///{path}")
            synthesise(database, args.persons, i + 1, ["prostate", "breast", "lung"])
            database.close()
            policy = tmp / f"{name}.policy.toml"
            policy.write_text(
                Policy(
                    federated_learning=True, allowed_model_templates=["logistic_regression"]
                ).to_toml()
            )
            (tmp / f"{name}.toml").write_text(
                f'omop_database_url = "sqlite:///{path}"\npolicy_file = "{policy}"\n'
            )
        t0 = time.perf_counter()
        poc = Poc(tmp / "flare", names, free_port(), str(tmp / "{site}.toml"))
        poc.prepare()
        poc.start(timeout=90)
        print(f"FLARE POC up ({args.sites} clients) in {time.perf_counter() - t0:.1f} s")

        researcher = make_member(
            OrganisationFactory(name="Bench Institute", slug="bench-inst"),
            "researcher",
            username="bench-researcher",
        )
        reviewer = make_member(
            OrganisationFactory(name="Bench Platform", slug="bench-platform"),
            "org_admin",
            username="bench-reviewer",
            is_staff=True,
        )
        datasets = []
        for i, name in enumerate(names):
            node = make_fl_site(
                OrganisationFactory(name=f"Bench Hospital {i}", slug=f"bh-{i}"), name
            )
            dataset = node.served_datasets.get().dataset
            grant_federated_learning(researcher, dataset)
            datasets.append(dataset)
        settings.FLARE_ADMIN_STARTUP_KIT = str(poc.admin_kit)
        settings.FLARE_ADMIN_USER = ADMIN_USER
        settings.FLARE_WORK_DIR = str(tmp / "portal-flare")
        params = {
            "cohort": {"condition_concept_ids": [443392]},
            "outcome": {"kind": "death_within_days", "days": 1825},
            "template": "logistic_regression",
            "rounds": args.rounds,
            "local_epochs": 20,
            "learning_rate": 1.0,
            "min_sites": args.sites,
        }
        fl_job = fl.fl_create(
            researcher=researcher, datasets=datasets, params=params, title="bench", submit=False
        )
        start = time.perf_counter()
        fl_job = fl.fl_submit(fl_job_id=fl_job.pk)
        if fl_job.status != FlJobStatus.SUBMITTED:
            print(f"submission failed: {fl_job.reason}", file=sys.stderr)
            return 1
        deadline = start + args.timeout
        while fl_job.is_open and time.perf_counter() < deadline:
            time.sleep(args.poll)
            fl_job = fl.fl_poll(fl_job_id=fl_job.pk)
        if fl_job.status != FlJobStatus.AWAITING_RELEASE:
            print(f"training did not finish: {fl_job.status} {fl_job.reason}", file=sys.stderr)
            return 1
        t_release = time.perf_counter()
        model = fl.fl_release(actor=reviewer, fl_job=fl_job, name="bench")
        release = time.perf_counter() - t_release
        wall = time.perf_counter() - start
        timing = fl_job.timing
        overhead = {
            "submit (build + submit)": timing.get("submit", 0.0),
            f"monitor ({timing.get('polls', 0)} polls)": timing.get("monitor", 0.0),
            "download result": timing.get("download", 0.0),
            "release into registry": release,
        }
        total = sum(overhead.values())
        print(f"\n{args.sites} sites × {args.rounds} rounds, {args.persons} persons per site")
        print(f"submit → released model ({model}): {wall:.2f} s wall time")
        for label, seconds in overhead.items():
            print(f"  portal {label:<28} {seconds:7.3f} s  ({100 * seconds / wall:5.1f} %)")
        print(f"  portal overhead total{'':<16} {total:7.3f} s  ({100 * total / wall:5.1f} %)")
        print(f"  pooled validation AUC of the global model: {model.metrics['pooled_val_auc']:.3f}")
        return 0
    finally:
        if poc is not None:
            from federation.flare import session

            session.close_all()
            poc.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
