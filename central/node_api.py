"""The central node's API under /api/central/node/, for the ``optima-node central`` supervisor.

``Authorization: Central <credential>`` (the operator enrols the central node and gets the
credential once; ``/central/node/``). Nothing else is accepted: a person's token or a node token
gets 401. ``GET datasets/`` lists every served central copy with its database location (no
secrets: the supervisor holds the database credentials itself) and the provider's policy;
``POST datasets/<id>/token/`` returns a fresh node token of that dataset's node (enrolled, as a
node of the data provider, on first use).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api_errors import error_response
from federation.models import Node
from federation.throttles import NodeRateThrottle

from . import selectors, services, warehouse
from .models import CentralNode


class CentralNodeAuthentication(authentication.BaseAuthentication):
    """``Authorization: Central <credential>``: the request is made by the central node."""

    keyword = "Central"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Use 'Authorization: Central <credential>'.")
        try:
            raw = header[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid central node header.") from exc
        node = CentralNode.authenticate(raw)
        if node is None:
            raise exceptions.AuthenticationFailed(
                "Invalid central node credential (it may have been rotated or revoked)."
            )
        return AnonymousUser(), node

    def authenticate_header(self, request) -> str:
        return self.keyword


class CentralNodeScheme(OpenApiAuthenticationExtension):
    target_class = "central.node_api.CentralNodeAuthentication"
    name = "centralNodeAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "The central node's credential: `Central <credential>`",
        }


class IsCentralNode(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, CentralNode)


class CentralNodeRateThrottle(NodeRateThrottle):
    """The node API's rate limit, counted apart from the nodes'."""

    scope = "central_node"


class CentralNodeView(APIView):
    authentication_classes = [CentralNodeAuthentication]
    permission_classes = [IsCentralNode]
    throttle_classes = [CentralNodeRateThrottle]


def _without_secrets(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, "", ""))


def _location(dataset_id: int) -> dict[str, str]:
    served = warehouse.served_location(dataset_id)
    if warehouse.is_postgresql():
        return {
            "dialect": "postgresql",
            "url": _without_secrets(warehouse.connection_for(served)[0]),
            "schema": served,
        }
    return {"dialect": "sqlite", "path": served}


@extend_schema(tags=["central node"], responses={200: OpenApiTypes.OBJECT})
class DatasetsView(CentralNodeView):
    """Every served central copy: dataset, provider, served version, location, node, policy."""

    def get(self, request):
        services.central_node_seen(node=request.auth)
        versions = list(selectors.served_versions())
        names = {services.central_node_name(v.dataset): v.dataset for v in versions}
        nodes = {
            (n.organisation_id, n.name): n.pk
            for n in Node.objects.filter(name__in=names).only("pk", "organisation_id", "name")
        }
        datasets = [
            {
                "dataset": v.dataset_id,
                "title": v.dataset.title,
                "provider": {"id": v.dataset.publisher_id, "name": v.dataset.publisher.name},
                "version": v.number,
                "location": _location(v.dataset_id),
                "node": nodes.get((v.dataset.publisher_id, services.central_node_name(v.dataset))),
                "policy": selectors.policy_of(v.dataset),
            }
            for v in versions
        ]
        return Response({"datasets": datasets})


@extend_schema(tags=["central node"], request=None, responses={200: OpenApiTypes.OBJECT})
class DatasetTokenView(CentralNodeView):
    """A fresh node token of one served dataset's node (enrolled on first use)."""

    def post(self, request, pk: int):
        version = selectors.served_versions().filter(dataset_id=pk).first()
        if version is None:
            return error_response(404, "not_found", "No served central copy of that dataset.")
        try:
            node, token = services.central_dataset_node_token(
                actor="central node", dataset=version.dataset
            )
        except ValidationError as exc:
            fields = exc.message_dict
            return error_response(409, "refused", " ".join(exc.messages), fields)
        return Response({"dataset": pk, "node": node.pk, "node_token": token})
