"""The same agent on PostgreSQL: synth into a schema, check it, and get the SQLite answers.

Uses OPTIMA_NODE_TEST_POSTGRES_URL when set; otherwise starts a throwaway cluster with initdb
(as the postgres user when running as root) and skips if that is not possible.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from optima_node.analyses import REGISTRY
from optima_node.cli import main
from optima_node.db import connect
from optima_node.policy import Policy
from optima_node.schemas import PARAMS_MODELS

pytestmark = pytest.mark.postgres


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory):
    if os.environ.get("OPTIMA_NODE_TEST_POSTGRES_URL"):
        yield os.environ["OPTIMA_NODE_TEST_POSTGRES_URL"]
        return
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("no PostgreSQL server binaries")
    base = tmp_path_factory.mktemp("pg")
    data = base / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        runuser = shutil.which("runuser")
        if not runuser:
            pytest.skip("running as root without runuser")
        as_user = [runuser, "-u", "postgres", "--"]
        os.chmod(base, 0o777)
        for parent in Path(base).parents:  # the postgres user must reach the data directory
            if str(parent).startswith(str(tmp_path_factory.getbasetemp().parent)):
                os.chmod(parent, os.stat(parent).st_mode | 0o711)
    port = _free_port()
    init = subprocess.run(
        [*as_user, initdb, "-D", str(data), "-U", "optima", "--auth=trust", "-E", "UTF8"],
        capture_output=True,
        text=True,
    )
    if init.returncode != 0:
        pytest.skip(f"initdb failed: {init.stderr.strip()[:200]}")
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = subprocess.run(
        [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"],
        capture_output=True,
        text=True,
    )
    if start.returncode != 0:
        pytest.skip(f"pg_ctl start failed: {start.stderr.strip()[:200]}")
    try:
        url = f"postgresql://optima@127.0.0.1:{port}/postgres"
        deadline = time.monotonic() + 20
        while True:
            try:
                connect(url).close()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )


def run(url, schema, analysis_type, params, state=None):
    db = connect(url, schema)
    try:
        model = PARAMS_MODELS[(analysis_type, 1)].model_validate(params)
        return REGISTRY[(analysis_type, 1)](db, model, state or {}, Policy(min_cell_count=1), None)
    finally:
        db.close()


def test_postgres_gives_the_sqlite_answers(pg_url, tmp_path, capsys):
    sqlite_url = f"sqlite:///{tmp_path / 'same.db'}"
    args = ["--persons", "1500", "--seed", "3", "--cancers", "lung,prostate"]
    assert main(["synth", "--out", pg_url, "--schema", "cdm_test", "--replace", *args]) == 0
    assert main(["synth", "--out", sqlite_url, *args]) == 0
    assert main(["check", "--db", pg_url, "--schema", "cdm_test"]) == 0
    out = capsys.readouterr().out
    assert "result: OK" in out and "mistyped" not in out

    lung = {
        "condition_concept_ids": [4115276, 4110591],
        "index_date_min": "2010-01-01",
        "sex": "male",
    }
    cases = [
        ("cohort_count", {"cohort": lung, "stratify_by": ["age_group", "index_year"]}, None),
        ("characterisation", {"cohort": lung}, None),
        ("kaplan_meier", {"cohort": lung, "stratify_by": "age_group"}, None),
    ]
    for analysis_type, params, state in cases:
        assert run(pg_url, "cdm_test", analysis_type, params, state) == run(
            sqlite_url, None, analysis_type, params, state
        )
    lr = {
        "cohort": lung,
        "outcome": {"kind": "death_within_days", "days": 730},
        "covariates": ["age_at_index", "index_year"],
    }
    a = run(pg_url, "cdm_test", "logistic_regression", lr, {"beta": [0.1, 0.01, 0.0]})
    b = run(sqlite_url, None, "logistic_regression", lr, {"beta": [0.1, 0.01, 0.0]})
    assert a["n"] == b["n"]
    np.testing.assert_allclose(a["information"], b["information"], rtol=1e-12)
    np.testing.assert_allclose(a["deviance"], b["deviance"], rtol=1e-12)
