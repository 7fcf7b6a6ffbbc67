"""The portal's node API, client side, over stdlib urllib (outbound HTTP(S) only)."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from optima_node import __version__
from optima_node.schemas import (
    Heartbeat,
    HeartbeatAck,
    RunAssignment,
    RunResult,
    SecureHoldPost,
    SecureKeyPost,
    SecureMaskedPost,
    SecurePeers,
)


class PortalUnavailable(Exception):  # a state, retried with back-off
    """Network failure, timeout, 5xx or 429: worth retrying later."""


class TokenRejected(Exception):
    """401/403: the node token is wrong or was revoked; retrying cannot help."""


class PortalProtocolError(Exception):
    """The portal answered something this agent version does not understand."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would replay the Authorization header to wherever it points; refuse instead.
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


PostOutcome = Literal["stored", "conflict", "gone"]


@dataclass
class PortalClient:
    base_url: str
    token: str
    timeout: float = 30.0

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self._opener = urllib.request.build_opener(_NoRedirect)

    def _post(self, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        return self._request("POST", path, body)

    def _get(self, path: str) -> tuple[int, Any]:
        return self._request("GET", path, None)

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        if method == "POST" and data is None:
            data = b""
        request = urllib.request.Request(  # noqa: S310 - scheme checked in config (http/https only)
            f"{self.base_url}{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Node {self.token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": f"optima-node/{__version__}",
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read() if exc.fp else b""
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PortalUnavailable(f"{self.base_url}: {reason}") from exc
        if status in (401, 403):
            raise TokenRejected(f"HTTP {status} {_detail(raw)}".strip())
        if status == 429 or status >= 500:
            raise PortalUnavailable(f"{self.base_url}{path}: HTTP {status}")
        try:
            payload = json.loads(raw) if raw.strip() else None
        except ValueError as exc:
            if status < 300:
                raise PortalProtocolError(f"{path}: response is not JSON") from exc
            payload = None
        return status, payload

    def heartbeat(self, heartbeat: Heartbeat) -> HeartbeatAck:
        status, payload = self._post("/api/node/heartbeat/", heartbeat.model_dump(mode="json"))
        if status not in (200, 201):
            raise PortalProtocolError(f"heartbeat: unexpected HTTP {status} {_detail(payload)}")
        try:
            return HeartbeatAck.model_validate(payload)
        except ValidationError as exc:
            raise PortalProtocolError(
                f"heartbeat: malformed acknowledgement: {exc.errors()[0]['msg']}"
            ) from exc

    def claim(self) -> RunAssignment | None:
        status, payload = self._post("/api/node/runs/claim/", None)
        if status == 204:
            return None
        if status != 200:
            raise PortalProtocolError(f"claim: unexpected HTTP {status} {_detail(payload)}")
        try:
            return RunAssignment.model_validate(payload)
        except ValidationError as exc:
            raise PortalProtocolError(
                f"claim: malformed run assignment: {exc.errors()[0]['msg']}"
            ) from exc

    def post_result(self, result: RunResult) -> PostOutcome:
        status, payload = self._post(
            f"/api/node/runs/{result.run_id}/result/", result.model_dump(mode="json")
        )
        if status in (200, 201):
            return "stored"
        if status == 409:
            return "conflict"
        if status == 410:
            return "gone"
        raise PortalProtocolError(
            f"result for run {result.run_id}: unexpected HTTP {status} {_detail(payload)}"
        )

    # --- secure aggregation (optima_node.secure_run) ---------------------------------------

    def _secure_post(self, run_id: int, what: str, body: dict[str, Any]) -> PostOutcome:
        return self._secure_exchange(run_id, what, body)[0]

    def _secure_exchange(
        self, run_id: int, what: str, body: dict[str, Any]
    ) -> tuple[PostOutcome, Any]:
        status, payload = self._post(f"/api/node/runs/{run_id}/secure/{what}/", body)
        if status in (200, 201):
            return "stored", payload
        if status == 409:
            return "conflict", payload
        if status in (404, 410):
            return "gone", payload
        raise PortalProtocolError(
            f"secure {what} for run {run_id}: unexpected HTTP {status} {_detail(payload)}"
        )

    def secure_announce(
        self, run_id: int, body: SecureKeyPost
    ) -> tuple[PostOutcome, SecurePeers | None]:
        """Post the key; when it was the round's last, the portal answers with the complete
        peer set (as ``secure_peers`` would), saving the node a poll."""
        outcome, payload = self._secure_exchange(run_id, "key", body.model_dump(mode="json"))
        relayed = payload.get("peers") if isinstance(payload, dict) else None
        if outcome != "stored" or not relayed:
            return outcome, None
        try:
            return outcome, SecurePeers.model_validate(relayed)
        except ValidationError:
            return outcome, None  # an answer this agent cannot read: it polls instead

    def secure_hold(self, run_id: int, body: SecureHoldPost) -> PostOutcome:
        return self._secure_post(run_id, "hold", body.model_dump(mode="json"))

    def secure_post_masked(self, run_id: int, body: SecureMaskedPost) -> PostOutcome:
        return self._secure_post(run_id, "masked", body.model_dump(mode="json"))

    def secure_peers(self, run_id: int, wait: float = 0.0) -> SecurePeers | None:
        """The round as the portal relays it; None when the run is gone for this node. With
        ``wait`` the portal holds the request up to that many seconds while the round still
        collects keys (a long-poll), answering as soon as it moves."""
        query = f"?wait={wait:.2f}" if wait > 0 else ""
        status, payload = self._get(f"/api/node/runs/{run_id}/secure/peers/{query}")
        if status in (404, 409, 410):
            return None
        if status != 200:
            raise PortalProtocolError(f"peers of run {run_id}: unexpected HTTP {status}")
        try:
            return SecurePeers.model_validate(payload)
        except ValidationError as exc:
            raise PortalProtocolError(
                f"peers of run {run_id}: malformed answer: {exc.errors()[0]['msg']}"
            ) from exc


def _detail(payload: Any) -> str:
    if isinstance(payload, bytes | bytearray):
        try:
            payload = json.loads(payload)
        except ValueError:
            return payload[:200].decode("utf-8", "replace")
    if isinstance(payload, dict):
        return str(payload.get("detail") or payload.get("error") or "")[:200]
    return "" if payload is None else str(payload)[:200]
