"""Fixtures for the node agent: synthetic sites, the outside-ETL Synthea database, a fake portal."""

from __future__ import annotations

import csv
import io
import sqlite3
import threading
import zipfile
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from optima_node.check import create_table_sql
from optima_node.db import connect
from optima_node.synth import synthesise
from tests.node.fake_portal import FakePortal, make_handler

SYNTHEA_ZIP = Path("/work/shared/omop/synthea27nj/Synthea27Nj_5.4.zip")
SYNTHEA_TABLES = (
    "person",
    "observation_period",
    "condition_occurrence",
    "death",
    "concept_ancestor",
    "cdm_source",
)


@pytest.fixture(scope="session")
def synth_url(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("synth") / "site.sqlite3"
    db = connect(f"sqlite:///{path}")
    synthesise(db, 4000, 1, ["prostate", "breast", "lung"])
    db.close()
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def synthea_url(tmp_path_factory) -> str:
    """The Synthea27Nj OMOP CSVs (an outside ETL) loaded into SQLite, tables the agent reads only."""
    if not SYNTHEA_ZIP.exists():
        pytest.skip("Synthea27Nj_5.4.zip not available")
    path = tmp_path_factory.mktemp("synthea") / "synthea.sqlite3"
    con = sqlite3.connect(path)
    with zipfile.ZipFile(SYNTHEA_ZIP) as archive:
        names = {
            Path(n).stem.lower(): n
            for n in archive.namelist()
            if not n.startswith("__MACOSX/") and n.endswith(".csv")
        }
        for table in SYNTHEA_TABLES:
            con.execute(create_table_sql(table, "sqlite"))
            with archive.open(names[table]) as raw:
                reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8"))
                header = [h.lower() for h in next(reader)]
                rows = [[v if v != "" else None for v in row] for row in reader]
            if rows:
                marks = ",".join("?" for _ in header)
                con.executemany(f"INSERT INTO {table} ({','.join(header)}) VALUES ({marks})", rows)
    con.commit()
    con.close()
    return f"sqlite:///{path}"


@pytest.fixture
def fake_portal():
    portal = FakePortal()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(portal))
    portal.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield portal
    server.shutdown()
    server.server_close()
