"""The release ledger: what this node has already released, to whom, as exact sets of persons.

Differencing two released counts (a cohort of 175 and the same cohort restricted to women, 172)
gives away a group of 3 that each release on its own suppresses. The ledger refuses such a
release (DataSHIELD's ``nfilter.subset``, made exact): every set of persons whose size a release
reveals (the cohort, each released stratum, the events, …) is compared with every set released
earlier to the same requester or project, and the new release is refused when either difference
``|new \\ old|`` or ``|old \\ new|`` holds 1 … ``min_cell_count`` − 1 persons.

The ledger is a local SQLite file at the node (``ledger_file``); person ids are stored there and
never leave the node. It is the authority: the portal keeps its own record and refuses earlier,
but whatever a portal sends or omits, the node compares against its own history. A run without a
requester (an older portal) is compared with every earlier release, as are earlier releases
recorded without one.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np

Scope = Literal["requester", "project", "all"]
SCOPES: tuple[str, ...] = ("requester", "project", "all")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS person_set (
        id INTEGER PRIMARY KEY,
        digest TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        members BLOB NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS release (
        id INTEGER PRIMARY KEY,
        released_at TEXT NOT NULL,
        requester_id TEXT,
        analysis_id TEXT NOT NULL,
        run_id INTEGER NOT NULL,
        round INTEGER NOT NULL,
        analysis_type TEXT NOT NULL,
        params_digest TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS release_requester ON release (requester_id)",
    "CREATE INDEX IF NOT EXISTS release_analysis ON release (analysis_id, params_digest)",
    """CREATE TABLE IF NOT EXISTS release_project (
        release_id INTEGER NOT NULL REFERENCES release (id),
        project_id TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS release_project_id ON release_project (project_id)",
    """CREATE TABLE IF NOT EXISTS release_set (
        release_id INTEGER NOT NULL REFERENCES release (id),
        set_id INTEGER NOT NULL REFERENCES person_set (id),
        label TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS release_set_release ON release_set (release_id)",
)


class LedgerError(RuntimeError):
    """The ledger file cannot be opened or written."""


@dataclass(frozen=True)
class Requester:
    """Who a release goes to, as the portal names them (opaque strings to the node)."""

    requester_id: str | None
    project_ids: tuple[str, ...] = ()


def _encode(members: np.ndarray) -> tuple[str, bytes]:
    raw = members.astype("<i8", copy=False).tobytes()
    digest = hashlib.sha256(raw).hexdigest()
    deltas = np.diff(members, prepend=np.int64(0)).astype("<i8", copy=False)
    return digest, zlib.compress(deltas.tobytes(), 6)


def _decode(blob: bytes) -> np.ndarray:
    return np.cumsum(np.frombuffer(zlib.decompress(blob), dtype="<i8")).astype(np.int64)


def params_digest(analysis_type: str, params_json: str) -> str:
    return hashlib.sha256(f"{analysis_type}\n{params_json}".encode()).hexdigest()


def differs_by_a_small_group(new: np.ndarray, old: np.ndarray, min_cell_count: int) -> bool:
    """True when ``new \\ old`` or ``old \\ new`` holds 1 … min_cell_count − 1 persons."""
    common = np.intersect1d(new, old, assume_unique=True).size
    return any(0 < size - common < min_cell_count for size in (new.size, old.size))


class ReleaseLedger:
    """One SQLite file; safe to share between threads of one agent (one lock, one connection)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._con = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            for statement in _SCHEMA:
                self._con.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise LedgerError(f"cannot open the release ledger {self.path}: {exc}") from exc
        self._lock = threading.Lock()
        self._decoded: dict[int, np.ndarray] = {}

    @classmethod
    def in_memory(cls) -> ReleaseLedger:
        return cls(":memory:")

    def close(self) -> None:
        self._con.close()

    # --- reads --------------------------------------------------------------------------------

    def _members(self, set_id: int, blob: bytes) -> np.ndarray:
        members = self._decoded.get(set_id)
        if members is None:
            members = self._decoded[set_id] = _decode(blob)
        return members

    def _earlier_sets(self, who: Requester, scope: Scope) -> list[tuple[int, str, bytes]]:
        """(id, digest, members) of every set released earlier within the scope."""
        where, args = "1 = 1", []
        if scope != "all" and who.requester_id is not None:
            # A release recorded without a requester may have gone to anyone: always in scope.
            clauses = ["r.requester_id IS NULL", "r.requester_id = ?"]
            args.append(who.requester_id)
            if scope == "project" and who.project_ids:
                marks = ", ".join("?" for _ in who.project_ids)
                in_projects = (
                    f"SELECT release_id FROM release_project WHERE project_id IN ({marks})"  # noqa: S608
                )
                clauses.append(f"r.id IN ({in_projects})")
                args.extend(who.project_ids)
            where = " OR ".join(clauses)
        sql = f"""
            SELECT DISTINCT s.id, s.digest, s.members FROM person_set s
            JOIN release_set rs ON rs.set_id = s.id
            JOIN release r ON r.id = rs.release_id
            WHERE {where}
        """  # noqa: S608 (fixed clauses, values bound)
        return list(self._con.execute(sql, args))

    def releases(self) -> list[dict[str, object]]:
        """Every recorded release (for the site's own review; no person ids)."""
        rows = self._con.execute(
            """SELECT r.id, r.released_at, r.requester_id, r.analysis_id, r.run_id, r.round,
                      r.analysis_type, group_concat(DISTINCT p.project_id)
               FROM release r LEFT JOIN release_project p ON p.release_id = r.id
               GROUP BY r.id ORDER BY r.id"""
        )
        keys = ("id", "released_at", "requester_id", "analysis_id", "run_id", "round", "type")
        out = []
        for row in rows:
            item = dict(zip(keys, row[:7], strict=True))
            item["project_ids"] = sorted(row[7].split(",")) if row[7] else []
            out.append(item)
        return out

    # --- the check ----------------------------------------------------------------------------

    def _record(
        self,
        *,
        who: Requester,
        analysis_type: str,
        analysis_id: str,
        run_id: int,
        round_: int,
        digest_of_params: str,
        sets: Iterable[tuple[str, int]],
    ) -> None:
        cursor = self._con.execute(
            "INSERT INTO release (released_at, requester_id, analysis_id, run_id, round,"
            " analysis_type, params_digest) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                datetime.now(UTC).isoformat(timespec="seconds"),
                who.requester_id,
                analysis_id,
                run_id,
                round_,
                analysis_type,
                digest_of_params,
            ),
        )
        release_id = cursor.lastrowid
        self._con.executemany(
            "INSERT INTO release_project (release_id, project_id) VALUES (?, ?)",
            [(release_id, p) for p in sorted(set(who.project_ids))],
        )
        self._con.executemany(
            "INSERT INTO release_set (release_id, set_id, label) VALUES (?, ?, ?)",
            [(release_id, set_id, label) for label, set_id in sets],
        )

    def _set_id(self, digest: str, members: np.ndarray, blob: bytes) -> int:
        row = self._con.execute("SELECT id FROM person_set WHERE digest = ?", (digest,)).fetchone()
        if row:
            return int(row[0])
        cursor = self._con.execute(
            "INSERT INTO person_set (digest, size, members) VALUES (?, ?, ?)",
            (digest, int(members.size), blob),
        )
        self._decoded[int(cursor.lastrowid)] = members
        return int(cursor.lastrowid)

    def repeat_of_recorded(self, analysis_id: str, digest_of_params: str) -> list[tuple[str, int]]:
        """The sets recorded for an earlier round of the same analysis with the same parameters
        (a regression's later rounds release the same persons), or [] if there is none."""
        row = self._con.execute(
            "SELECT id FROM release WHERE analysis_id = ? AND params_digest = ?"
            " ORDER BY id LIMIT 1",
            (analysis_id, digest_of_params),
        ).fetchone()
        if row is None:
            return []
        return [
            (str(label), int(set_id))
            for label, set_id in self._con.execute(
                "SELECT label, set_id FROM release_set WHERE release_id = ?", (row[0],)
            )
        ]

    def check_and_record(
        self,
        *,
        who: Requester,
        analysis_type: str,
        analysis_id: str,
        run_id: int,
        round_: int,
        digest_of_params: str,
        sets: Mapping[str, np.ndarray] | None,
        min_cell_count: int,
        scope: Scope,
    ) -> bool:
        """Record the release and return True, or return False (nothing recorded) when one of
        ``sets`` differs from an earlier released set by 1 … min_cell_count − 1 persons.

        ``sets`` None: the same analysis and parameters were recorded before (a later GLM round);
        the earlier sets are linked again without another comparison.
        """
        with self._lock:
            try:
                self._con.execute("BEGIN IMMEDIATE")  # check and record as one step
                if sets is None:
                    recorded = self.repeat_of_recorded(analysis_id, digest_of_params)
                    if not recorded:
                        raise LedgerError("no earlier round of this analysis is recorded")
                    linked = recorded
                else:
                    encoded = {}
                    for label, members in sets.items():
                        members = np.unique(np.asarray(members, dtype=np.int64))
                        if members.size == 0:
                            continue
                        encoded[label] = (members, *_encode(members))
                    if min_cell_count > 1 and encoded:
                        earlier = self._earlier_sets(who, scope)
                        # A set this scope already received reveals nothing new, whatever it is
                        # compared with: a repeated analysis releases the same sets again, and
                        # sets released together were never compared with one another.
                        known = {digest for _, digest, _ in earlier}
                        fresh = [m for m, digest, _ in encoded.values() if digest not in known]
                        for set_id, _digest, blob in earlier if fresh else []:
                            old = self._members(set_id, blob)
                            for members in fresh:
                                if differs_by_a_small_group(members, old, min_cell_count):
                                    self._con.execute("ROLLBACK")
                                    return False
                    linked = [
                        (label, self._set_id(digest, members, blob))
                        for label, (members, digest, blob) in encoded.items()
                    ]
                self._record(
                    who=who,
                    analysis_type=analysis_type,
                    analysis_id=analysis_id,
                    run_id=run_id,
                    round_=round_,
                    digest_of_params=digest_of_params,
                    sets=linked,
                )
                self._con.execute("COMMIT")
            except BaseException:
                if self._con.in_transaction:
                    self._con.execute("ROLLBACK")
                raise
        return True
