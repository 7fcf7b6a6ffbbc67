from __future__ import annotations

from django.core.exceptions import ValidationError
from django.urls import URLResolver, get_resolver
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.reverse import reverse

from . import limits, permissions, services
from .api_mixins import RestrictedQuerysetMixin
from .models import ApiToken, AuditEvent, Membership, Organisation
from .selectors import AuditEventFilter


@extend_schema(
    responses=inline_serializer(
        "ApiRoot", {"links": serializers.DictField(child=serializers.URLField())}
    )
)
@api_view(["GET"])
@permission_classes([AllowAny])
def api_root(request):
    return Response(
        {"links": {key: reverse(name, request=request) for key, name in _collections()}}
    )


# Routes for the node agents and the central node (node or central credentials), not for browsing.
_NODE_ONLY = ("node-", "central-node-")
# The caller's own TOTP recovery codes: a browser session that passed its second factor only (never
# an API token), so not a collection an API client can browse.
_SESSION_ONLY = ("api-recovery-codes",)


def _answers_get(view) -> bool:
    actions = getattr(view, "actions", None)  # a viewset route: {"get": "list", ...}
    if actions is not None:
        return "get" in actions
    cls = getattr(view, "cls", None) or getattr(view, "view_class", None)
    return cls is None or hasattr(cls, "get")


def _collections() -> list[tuple[str, str]]:
    """Every route under /api/ without parameters that answers GET: (its path, its URL name).

    Read from the URL configuration, so a collection an app adds is listed without editing this."""
    found: list[tuple[str, str]] = []

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            route = prefix + str(p.pattern).lstrip("^").rstrip("$")
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route)
            elif (
                p.name
                and not any(c in route for c in "<(\\")
                and p.name != "api-root"
                and not p.name.startswith(_NODE_ONLY)
                and p.name not in _SESSION_ONLY
                and _answers_get(p.callback)
            ):
                found.append((route.rstrip("/"), p.name))

    walk(get_resolver().url_patterns, "")
    return sorted(
        (route.removeprefix("api/"), name) for route, name in found if route.startswith("api/")
    )


class OrganisationSerializer(serializers.ModelSerializer):
    country = serializers.CharField(source="country.code")

    class Meta:
        model = Organisation
        fields = ["id", "name", "slug", "country", "kind", "ror_id", "is_test_site"]


class MembershipSerializer(serializers.ModelSerializer):
    organisation = OrganisationSerializer()
    roles = serializers.SerializerMethodField()

    class Meta:
        model = Membership
        fields = ["organisation", "roles"]

    def get_roles(self, obj) -> list[str]:
        return obj.role_names


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField()
    email = serializers.EmailField()
    is_platform_admin = serializers.BooleanField()
    memberships = MembershipSerializer(many=True)


@extend_schema(responses=MeSerializer)
@api_view(["GET"])
@permission_classes([IsAuthenticated])
def me(request):
    user = request.user
    memberships = (
        Membership.objects.filter(user=user)
        .select_related("organisation")
        .prefetch_related("roles")
    )
    return Response(
        MeSerializer(
            {
                "id": user.pk,
                "username": user.get_username(),
                "name": user.get_full_name(),
                "email": user.email,
                "is_platform_admin": permissions.is_platform_admin(user),
                "memberships": memberships,
            }
        ).data
    )


class OrganisationViewSet(RestrictedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """Organisations of the network (public facts: name, country, kind, ROR)."""

    restrict = permissions.restrict
    queryset = Organisation.objects.all()
    serializer_class = OrganisationSerializer
    permission_classes = [AllowAny]
    filterset_fields = ["kind", "country", "is_test_site"]


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]
        read_only_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
        extra_kwargs = {"expires_at": {"validators": [limits.check_token_expiry]}}


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


class ApiTokenViewSet(
    RestrictedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your personal API tokens. DELETE revokes a token (it stays listed as revoked)."""

    serializer_class = ApiTokenSerializer
    permission_classes = [IsAuthenticated]
    filter_backends: list = []
    restrict = permissions.restrict
    restrict_actions = {"destroy": "revoke"}
    queryset = ApiToken.objects.all()

    @extend_schema(request=ApiTokenSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request, *args, **kwargs):
        data = ApiTokenSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            token, raw = services.api_token_create(
                user=request.user,
                name=data.validated_data["name"],
                expires_at=data.validated_data.get("expires_at"),
            )
        except ValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        body = ApiTokenSerializer(token).data | {"token": raw}
        return Response(body, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        services.api_token_revoke(user=request.user, token=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditEventSerializer(serializers.ModelSerializer):
    organisation = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    actor = serializers.CharField(source="actor_repr")

    class Meta:
        model = AuditEvent
        fields = [
            "seq",
            "timestamp",
            "actor",
            "action",
            "object_type",
            "object_id",
            "organisation",
            "payload",
            "prev_hash",
            "hash",
        ]


class AuditEventViewSet(RestrictedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """The audit trail: platform admins see all of it, organisation admins their organisations' events."""

    serializer_class = AuditEventSerializer
    permission_classes = [IsAuthenticated]
    filterset_class = AuditEventFilter
    lookup_field = "seq"
    restrict = permissions.restrict
    queryset = AuditEvent.objects.select_related("organisation").order_by("-seq")
