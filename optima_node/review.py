"""The release gate of secure aggregation, at the node: the site admin reviews the node's own
cleartext contribution before it is masked (``optima-node review list|show|release|decline``).

The portal never sees a contribution, so the review cannot happen there. Each held run is one
JSON file in the node's review directory (config ``review_dir``, beside the release ledger),
readable by the site only (0600): the run, the analysis' parameters and the unsuppressed table
that would be masked. The agent resumes from these files after a restart.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

Decision = Literal["pending", "released", "declined"]


class ReviewError(ValueError):
    """No such held run, or it was already decided."""


@dataclass(frozen=True)
class Held:
    run_id: int
    data: dict[str, Any]

    @property
    def status(self) -> Decision:
        return self.data.get("status", "pending")


class ReviewStore:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def _path(self, run_id: int) -> Path:
        return self.directory / f"run-{int(run_id)}.json"

    def _write(self, run_id: int, data: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._path(run_id)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.replace(tmp, path)

    def hold(self, run_id: int, data: dict[str, Any]) -> None:
        """Keep a contribution for review (status pending); an existing file is kept as it is."""
        if not self._path(run_id).exists():
            self._write(run_id, {**data, "status": "pending", "held_at": _now()})

    def get(self, run_id: int) -> Held:
        try:
            data = json.loads(self._path(run_id).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ReviewError(f"no held run {run_id}") from exc
        return Held(int(run_id), data)

    def all(self) -> list[Held]:
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.glob("run-*.json")):
            try:
                found.append(Held(int(path.stem[4:]), json.loads(path.read_text("utf-8"))))
            except (ValueError, OSError):
                continue
        return found

    def decide(self, run_id: int, decision: Decision, *, note: str = "") -> Held:
        held = self.get(run_id)
        if held.status != "pending":
            raise ReviewError(f"run {run_id} was already {held.status}")
        data = {**held.data, "status": decision, "decided_at": _now(), "note": note[:300]}
        self._write(run_id, data)
        return Held(int(run_id), data)

    def forget(self, run_id: int) -> None:
        self._path(run_id).unlink(missing_ok=True)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def describe(held: Held) -> str:
    """One line per held run for ``review list``."""
    data = held.data
    return (
        f"run {held.run_id}  {held.status:<9} {data.get('type')}  analysis "
        f"{data.get('analysis_id')}  requester {data.get('requester_id') or '-'}  "
        f"held {data.get('held_at', '')}"
    )


def render(held: Held) -> str:
    """The full contribution for ``review show``: parameters and every non-zero cell."""
    data = held.data
    lines = [describe(held), "parameters:", json.dumps(data.get("params"), indent=1)]
    lines += ["contribution (unsuppressed, masked before it leaves the node):"]
    lines.append(json.dumps(data.get("table"), indent=1))
    return "\n".join(lines)
