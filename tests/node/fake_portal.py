"""A tiny stand-in for the portal's node API, served by http.server on 127.0.0.1."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any


@dataclass
class FakePortal:
    token: str = "secret-token"
    runs: deque = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    result_status: dict[int, int] = field(default_factory=dict)
    reject_token_detail: str | None = None
    poll_interval_seconds: float = 0.05
    url: str = ""

    def results(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"].endswith("/result/")]

    def heartbeats(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"] == "/api/node/heartbeat/"]


def make_handler(portal: FakePortal):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def _send(self, status: int, payload: Any = None) -> None:
            body = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            portal.requests.append(
                {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
            )
            if (
                portal.reject_token_detail is not None
                or self.headers.get("Authorization") != f"Node {portal.token}"
            ):
                return self._send(
                    401, {"detail": portal.reject_token_detail or "invalid node token"}
                )
            if self.path == "/api/node/heartbeat/":
                return self._send(
                    200,
                    {
                        "node_id": 7,
                        "poll_interval_seconds": portal.poll_interval_seconds,
                        "portal_version": "test",
                    },
                )
            if self.path == "/api/node/runs/claim/":
                if not portal.runs:
                    return self._send(204)
                return self._send(200, portal.runs.popleft())
            if self.path.startswith("/api/node/runs/") and self.path.endswith("/result/"):
                run_id = int(self.path.split("/")[4])
                return self._send(portal.result_status.get(run_id, 201), {"ok": True})
            return self._send(404, {"detail": "not found"})

    return Handler


def assignment(
    run_id: int,
    analysis_type: str,
    params: dict[str, Any],
    *,
    version: int = 1,
    state=None,
    round_: int = 1,
    requester_id: str | None = None,
    project_ids: list[str] | None = None,
) -> dict[str, Any]:
    """A run as the portal hands it out; by default each run has its own requester, so the
    release ledger does not compare unrelated runs of one test with each other."""
    return {
        "run_id": run_id,
        "attempt": 1,
        "analysis_id": 100 + run_id,
        "type": analysis_type,
        "version": version,
        "round": round_,
        "params": params,
        "state": state or {},
        "deadline": "2030-01-01T00:00:00Z",
        "lease_seconds": 600,
        "requester_id": requester_id or f"researcher-{run_id}",
        "project_ids": project_ids or [],
    }
