"""The node agents' API under /api/node/: exactly the protocol of ``optima_node.client``.

``Authorization: Node <token>``. Heartbeat → HeartbeatAck; claim → RunAssignment or 204; result →
201 (stored), 200 (the same result again), 409 (a different result, or no current claim by this
node), 410 (expired or cancelled), 422 (a count below the node's minimum cell count), 400
(malformed). Payloads are validated with the agent's own pydantic models.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.shortcuts import get_object_or_404
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiRequest, OpenApiResponse, extend_schema
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from rest_framework import authentication, exceptions, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api_errors import error_response
from optima_node.schemas import (
    Heartbeat,
    HeartbeatAck,
    RunAssignment,
    RunResult,
    SecureHoldPost,
    SecureKeyPost,
    SecureMaskedPost,
)

from . import services
from .models import Node, NodeStatus, Run, SecureRoundStatus
from .services import ResultOutcome
from .services.secure import PEERS_WAIT_MAX
from .throttles import NodeRateThrottle


class NodeTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Node <token>``: the request is made by a node, not a person."""

    keyword = "Node"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Use 'Authorization: Node <token>'.")
        try:
            raw = header[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid node token header.") from exc
        node = Node.authenticate(raw)
        if node is None:
            raise exceptions.AuthenticationFailed("Invalid node token (it may have been rotated).")
        if node.status == NodeStatus.REVOKED:
            raise exceptions.AuthenticationFailed(
                "This node was revoked by its organisation; the agent must stop."
            )
        if node.status != NodeStatus.APPROVED:
            raise exceptions.AuthenticationFailed("This node is not approved.")
        return AnonymousUser(), node

    def authenticate_header(self, request) -> str:
        return self.keyword


class NodeTokenScheme(OpenApiAuthenticationExtension):
    target_class = "federation.node_api.NodeTokenAuthentication"
    name = "nodeAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Node token issued on approval: `Node <token>`",
        }


class IsNode(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, Node)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


class NodeView(APIView):
    authentication_classes = [NodeTokenAuthentication]
    permission_classes = [IsNode]
    throttle_classes = [NodeRateThrottle]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        limit = int(getattr(settings, "NODE_API_MAX_BYTES", 1024 * 1024))
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:  # refused before the body is read
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")

    def parse(self, request, model: type[BaseModel]):
        try:
            return model.model_validate(request.data if isinstance(request.data, dict) else {})
        except PydanticValidationError as exc:
            fields = {
                ".".join(str(p) for p in e["loc"]) or "body": [e["msg"]] for e in exc.errors()
            }
            return error_response(400, "invalid", "The payload does not validate.", fields)


def _body(model: type[BaseModel]) -> OpenApiRequest:
    # The wire format is the agent's pydantic model (optima_node.schemas); OpenAPI 3.0 cannot
    # express its JSON Schema (null types), so the document names the model instead.
    return OpenApiRequest(OpenApiTypes.OBJECT, examples=[], encoding=None)


@extend_schema(
    tags=["node"],
    request=_body(Heartbeat),
    description="Body: optima_node.schemas.Heartbeat. Answer: HeartbeatAck.",
    responses={200: OpenApiResponse(response=OpenApiTypes.OBJECT, description="HeartbeatAck")},
)
class HeartbeatView(NodeView):
    """The agent reports its version, capabilities, CDM and policy; the portal answers its poll interval."""

    def post(self, request):
        heartbeat = self.parse(request, Heartbeat)
        if isinstance(heartbeat, Response):
            return heartbeat
        node = services.node_heartbeat(node=request.auth, heartbeat=heartbeat)
        ack = HeartbeatAck(
            node_id=node.pk,
            poll_interval_seconds=node.poll_interval_seconds,
            portal_version=settings.PORTAL_VERSION,
        )
        return Response(ack.model_dump(mode="json"))


@extend_schema(
    tags=["node"],
    request=None,
    responses={
        200: OpenApiResponse(response=OpenApiTypes.OBJECT, description="RunAssignment"),
        204: OpenApiResponse(description="Nothing to do."),
    },
)
class ClaimView(NodeView):
    """The next run this node should execute, leased for a while; 204 when there is none."""

    def post(self, request):
        run = services.run_claim(node=request.auth)
        if run is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        assignment = RunAssignment(
            run_id=run.pk,
            attempt=run.attempt,
            analysis_id=run.analysis_id,
            type=run.analysis.type,
            version=run.analysis.version,
            round=run.round,
            params=run.analysis.params,
            state=run.state or {},
            deadline=run.deadline,
            lease_seconds=services.lease_seconds(),
            min_cell_count=run.analysis.terms_min_cell_count,
            secure=services.run_secure_assignment(run),
            **services.run_recipient(run),
        )
        return Response(assignment.model_dump(mode="json"))


RESULT_STATUS = {
    ResultOutcome.STORED: status.HTTP_201_CREATED,
    ResultOutcome.DUPLICATE: status.HTTP_200_OK,
    ResultOutcome.CONFLICT: status.HTTP_409_CONFLICT,
    ResultOutcome.GONE: status.HTTP_410_GONE,
    ResultOutcome.INVALID: status.HTTP_400_BAD_REQUEST,
    ResultOutcome.DISCLOSURE: status.HTTP_422_UNPROCESSABLE_ENTITY,
}


@extend_schema(
    tags=["node"],
    request=_body(RunResult),
    description="Body: optima_node.schemas.RunResult.",
    responses={
        201: OpenApiResponse(OpenApiTypes.OBJECT, description="Stored."),
        200: OpenApiResponse(
            OpenApiTypes.OBJECT, description="The same result was already stored."
        ),
        400: OpenApiResponse(OpenApiTypes.OBJECT, description="The result does not validate."),
        409: OpenApiResponse(
            OpenApiTypes.OBJECT,
            description="A different result is stored, or this node holds no current claim.",
        ),
        422: OpenApiResponse(
            OpenApiTypes.OBJECT,
            description="A released count is below the node's minimum cell count; the run fails.",
        ),
        410: OpenApiResponse(OpenApiTypes.OBJECT, description="The run expired or was cancelled."),
    },
)
class ResultView(NodeView):
    """Post a run's outcome (idempotent)."""

    def post(self, request, run_id: int):
        run = get_object_or_404(Run, pk=run_id, node=request.auth)
        payload = self.parse(request, RunResult)
        if isinstance(payload, Response):
            return payload
        if payload.run_id != run.pk:
            return error_response(
                400, "invalid", "run_id differs from the URL.", {"run_id": ["Does not match."]}
            )
        outcome, message = services.run_submit_result(node=request.auth, run=run, payload=payload)
        code = RESULT_STATUS[outcome]
        if code >= 400:
            return error_response(code, outcome, message)
        run.refresh_from_db(fields=["status"])
        return Response({"run_id": run.pk, "status": run.status, "detail": message}, status=code)


# --- secure aggregation (docs/federation.md "Secure aggregation") ---------------------------------


def _answer(outcome: str, message: str) -> Response:
    code = RESULT_STATUS[outcome]
    if code >= 400:
        return error_response(code, outcome, message)
    return Response({"detail": message}, status=code)


def _wait_seconds(raw: str | None) -> float | Response:
    if raw is None or raw == "":
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        wait = -1.0
    if not 0 <= wait <= PEERS_WAIT_MAX:  # also refuses nan and inf
        return error_response(
            400,
            "invalid",
            "The query does not validate.",
            {"wait": [f"A number of seconds from 0 to {PEERS_WAIT_MAX:g}."]},
        )
    return wait


class SecurePostView(NodeView):
    """A node's post for its own run's secure round: the body is validated against ``body`` (the
    wire model) and handed to ``submit`` (the service), whose (outcome, message) is the answer."""

    body: type[BaseModel]
    submit: Callable[..., tuple[str, str]]

    def post(self, request, run_id: int):
        run = get_object_or_404(Run, pk=run_id, node=request.auth)
        payload = self.parse(request, self.body)
        if isinstance(payload, Response):
            return payload
        submit = type(self).submit  # a plain function stored on the class, not a method
        return _answer(*submit(node=request.auth, run=run, payload=payload))


@extend_schema(
    tags=["node"],
    request=_body(SecureKeyPost),
    description="Body: optima_node.schemas.SecureKeyPost (the node's signed X25519 announcement).",
    responses={201: OpenApiResponse(OpenApiTypes.OBJECT, description="Stored.")},
)
class SecureKeyView(SecurePostView):
    """The node's key announcement for the analysis' current secure round. When it was the last
    key, the answer carries the complete peer set (``peers``, as the peers poll would relay it),
    so the node masks without another request."""

    body = SecureKeyPost
    submit = services.secure_key_submit

    def post(self, request, run_id: int):
        response = super().post(request, run_id)
        if response.status_code == 201:
            run = Run.objects.get(pk=run_id)
            _, peers = services.secure_peers(node=request.auth, run=run)
            if isinstance(peers, dict) and peers["status"] == SecureRoundStatus.MASKING:
                response.data["peers"] = peers
        return response


@extend_schema(
    tags=["node"],
    request=_body(SecureHoldPost),
    description="Body: optima_node.schemas.SecureHoldPost.",
    responses={201: OpenApiResponse(OpenApiTypes.OBJECT, description="Held at the node.")},
)
class SecureHoldView(SecurePostView):
    """The node holds the run until its site admin reviews the contribution at the node."""

    body = SecureHoldPost
    submit = services.secure_hold


@extend_schema(
    tags=["node"],
    request=None,
    parameters=[
        OpenApiParameter(
            "wait",
            float,
            description="Seconds (0 to 5) to hold the request while the round still collects "
            "keys; answered as soon as it moves.",
        )
    ],
    responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="SecurePeers")},
)
class SecurePeersView(NodeView):
    """The round's id and state; once every key is in, the announcements and pinned identities.
    ``?wait=S`` long-polls: the answer comes when the round stops collecting keys or after S s."""

    def get(self, request, run_id: int):
        run = get_object_or_404(Run, pk=run_id, node=request.auth)
        wait = _wait_seconds(request.query_params.get("wait"))
        if isinstance(wait, Response):
            return wait
        if not request.META.get("wsgi.multithread"):
            wait = 0.0  # one request at a time (gunicorn's sync worker): holding it blocks the site
        outcome, body = services.secure_peers_wait(node=request.auth, run=run, wait=wait)
        if isinstance(body, str):
            return _answer(outcome, body)
        return Response(body)


@extend_schema(
    tags=["node"],
    request=_body(SecureMaskedPost),
    description="Body: optima_node.schemas.SecureMaskedPost (base64 of little-endian uint64).",
    responses={
        201: OpenApiResponse(OpenApiTypes.OBJECT, description="Stored."),
        409: OpenApiResponse(OpenApiTypes.OBJECT, description="The round was abandoned."),
    },
)
class SecureMaskedView(SecurePostView):
    """The node's masked vector for its round (refused for an abandoned round)."""

    body = SecureMaskedPost
    submit = services.secure_masked_submit
