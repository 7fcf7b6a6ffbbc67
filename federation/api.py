"""Researchers' and site admins' API: analyses, nodes and the analysis catalogue."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from accounts import limits
from accounts.api_mixins import RestrictedQuerysetMixin

from . import permissions, selectors, services, versions
from .analysis_types import TYPE_CHOICES, node_kinds
from .models import Analysis, Node


def unavailable_datasets(ids) -> list[str]:
    return [f"Dataset {i} is unknown or not available for analyses." for i in ids]


class AnalysisCreateSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=[t for t, _ in TYPE_CHOICES])
    version = serializers.IntegerField(default=1, **limits.between(1, limits.ANALYSIS_VERSION_MAX))
    datasets = serializers.ListField(
        child=serializers.IntegerField(**limits.between(1, limits.ID_MAX)),
        allow_empty=False,
        max_length=limits.LIST_LONG,
    )
    params = serializers.JSONField(
        help_text="Parameters of the analysis type, checked against its JSON schema "
        "(GET /api/analysis-types/): e.g. concept ids 1 .. 2**31-1, ages 0 .. 130."
    )
    min_nodes = serializers.IntegerField(
        required=False, allow_null=True, **limits.between(1, limits.NODES_MAX)
    )
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    deadline_hours = serializers.IntegerField(
        min_value=1,
        max_value=24 * 14,
        default=24,
        help_text="Each node's run expires when it has not answered within this many hours.",
    )


class RunSerializer(serializers.Serializer):
    node = serializers.CharField(source="node.name")
    organisation = serializers.CharField(source="node.organisation.name")
    round = serializers.IntegerField()
    status = serializers.CharField()
    reason = serializers.CharField()


STATUS_HELP = "running, completed, failed or cancelled"


class AnalysisSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True, help_text=STATUS_HELP)
    runs = serializers.SerializerMethodField()
    result = serializers.JSONField()

    class Meta:
        model = Analysis
        fields = [
            "id",
            "title",
            "type",
            "version",
            "status",
            "reason",
            "partial",
            "aggregation",
            "aggregation_reason",
            "terms_min_cell_count",
            "min_nodes",
            "current_round",
            "params",
            "created_at",
            "finished_at",
            "runs",
            "result",
        ]

    @extend_schema_field(RunSerializer(many=True))
    def get_runs(self, obj) -> list[dict]:
        return RunSerializer(obj.runs.all(), many=True).data


class AnalysisListSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True, help_text=STATUS_HELP)

    class Meta:
        model = Analysis
        fields = ["id", "title", "type", "version", "status", "partial", "created_at"]


class AnalysisViewSet(
    RestrictedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Federated analyses you started. POST starts one on the nodes serving the datasets."""

    permission_classes = [IsAuthenticated]
    filter_backends: list = []
    restrict = permissions.restrict
    restrict_actions = {"cancel": "cancel"}
    queryset = Analysis.objects.none()

    def get_base_queryset(self):
        return selectors.analysis_list(user=self.request.user)

    def get_serializer_class(self):
        if self.action == "list":
            return AnalysisListSerializer
        if self.action == "create":
            return AnalysisCreateSerializer
        return AnalysisSerializer

    def get_object(self):
        # The detail read prefetches the runs; the same restrict, through the selector.
        return selectors.analysis_get_for_user(user=self.request.user, pk=self.kwargs["pk"])

    @extend_schema(request=AnalysisCreateSerializer, responses={201: AnalysisSerializer})
    def create(self, request, *args, **kwargs):
        data = AnalysisCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        ids = list(dict.fromkeys(values["datasets"]))
        found = selectors.analysis_datasets_by_ids(user=request.user, ids=ids)
        unavailable = [i for i in ids if i not in found]
        if unavailable:
            # Unknown, invisible (another publisher's draft) and unpublished look the same.
            raise serializers.ValidationError({"datasets": unavailable_datasets(unavailable)})
        analysis = services.analysis_create(
            researcher=request.user,
            analysis_type=values["type"],
            version=values["version"],
            params=values["params"],
            datasets=[found[i] for i in ids],
            min_nodes=values.get("min_nodes"),
            title=values.get("title", ""),
            run_deadline_hours=values["deadline_hours"],
        )
        analysis = selectors.analysis_get_for_user(user=request.user, pk=analysis.pk)
        return Response(AnalysisSerializer(analysis).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: AnalysisSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None, format=None):  # format: the router's .json suffix
        analysis = selectors.analysis_get_for_user(user=request.user, pk=pk, action="cancel")
        services.analysis_cancel(actor=request.user, analysis=analysis)
        analysis = selectors.analysis_get_for_user(user=request.user, pk=pk)
        return Response(AnalysisSerializer(analysis).data)


class NodeSerializer(serializers.ModelSerializer):
    organisation = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    liveness = serializers.SerializerMethodField()
    identity_fingerprint = serializers.SerializerMethodField()
    warnings = serializers.SerializerMethodField()
    agent_release = serializers.SerializerMethodField()
    agent_outdated = serializers.BooleanField(read_only=True)

    class Meta:
        model = Node
        fields = [
            "id",
            "organisation",
            "name",
            "status",
            "liveness",
            "last_seen_at",
            "agent_version",
            "agent_release",
            "agent_outdated",
            "image_digest",
            "capabilities",
            "cdm_version",
            "vocabulary_version",
            "dialect",
            "person_count",
            "policy",
            "token_prefix",
            "identity_fingerprint",
            "warnings",
        ]

    def get_liveness(self, obj) -> str:
        return obj.liveness()

    def get_identity_fingerprint(self, obj) -> str:
        return obj.identity_fingerprint()

    def get_warnings(self, obj) -> list[str]:
        return obj.warnings()

    def get_agent_release(self, obj) -> str:
        """The agent version shipped with this portal release."""
        return versions.AGENT_RELEASE


class NodeViewSet(RestrictedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """Nodes of your organisations (site and organisation admins; platform admins see all)."""

    serializer_class = NodeSerializer
    permission_classes = [IsAuthenticated]
    filter_backends: list = []
    restrict = permissions.restrict
    queryset = Node.objects.select_related("organisation")


@extend_schema(
    responses=inline_serializer(
        "AnalysisType",
        {
            "type": serializers.CharField(),
            "version": serializers.IntegerField(),
            "label": serializers.CharField(),
            "description": serializers.CharField(),
            "params_schema": serializers.JSONField(),
        },
        many=True,
    )
)
@api_view(["GET"])
@permission_classes([AllowAny])
def analysis_types(request):
    """The analysis catalogue: every (type, version) with its parameter JSON schema."""
    return Response(
        [
            {
                "type": k.type,
                "version": k.version,
                "label": k.label,
                "description": k.description,
                "params_schema": k.params_schema(),
            }
            for k in node_kinds()
        ]
    )
