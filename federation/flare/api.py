"""API of federated learning: training jobs (create, follow, abort, release gate) and the registry."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts import limits
from accounts.api_mixins import RestrictedQuerysetMixin

from .. import permissions
from .. import selectors as federation_selectors
from ..api import unavailable_datasets
from ..models import FlJob, TrainedModel
from . import selectors
from . import services as fl


class FlJobCreateSerializer(serializers.Serializer):
    datasets = serializers.ListField(
        child=serializers.IntegerField(**limits.between(1, limits.ID_MAX)),
        allow_empty=False,
        max_length=limits.LIST_LONG,
    )
    params = serializers.JSONField(help_text="FederatedLearningParams; GET /api/fl-params-schema/")
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class FlJobSerializer(serializers.ModelSerializer):
    analysis = serializers.IntegerField(source="analysis_id", read_only=True)
    title = serializers.CharField(source="analysis.title", read_only=True)
    params = serializers.JSONField(source="analysis.params", read_only=True)
    progress = serializers.JSONField(read_only=True)
    model = serializers.SerializerMethodField()

    class Meta:
        model = FlJob
        fields = [
            "id",
            "analysis",
            "title",
            "status",
            "reason",
            "flare_job_id",
            "flare_status",
            "sites",
            "params",
            "progress",
            "created_at",
            "submitted_at",
            "finished_at",
            "model",
        ]

    def get_model(self, obj) -> int | None:
        model = getattr(obj, "trained_model", None) if obj.status == "released" else None
        return model.pk if model else None


class ReleaseSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class DeclineSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", **limits.chars(limits.TEXT_MEDIUM)
    )


class TrainedModelSerializer(serializers.ModelSerializer):
    training_job = serializers.IntegerField(source="fl_job_id", read_only=True)
    datasets = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    metrics = serializers.JSONField(read_only=True)
    sites = serializers.JSONField(read_only=True)
    training_params = serializers.JSONField(read_only=True)
    features = serializers.JSONField(read_only=True)

    class Meta:
        model = TrainedModel
        fields = [
            "id",
            "name",
            "version",
            "template",
            "features",
            "training_job",
            "datasets",
            "sites",
            "metrics",
            "training_params",
            "model_card",
            "released_at",
        ]


class FlJobViewSet(
    RestrictedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = FlJobSerializer
    permission_classes = [IsAuthenticated]
    restrict = permissions.restrict
    queryset = FlJob.objects.none()

    def get_base_queryset(self):
        return selectors.fl_job_list(user=self.request.user)

    @extend_schema(request=FlJobCreateSerializer, responses={201: FlJobSerializer})
    def create(self, request):
        data = FlJobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ids = list(dict.fromkeys(data.validated_data["datasets"]))
        found = federation_selectors.analysis_datasets_by_ids(user=request.user, ids=ids)
        unavailable = [i for i in ids if i not in found]
        if unavailable:
            raise serializers.ValidationError({"datasets": unavailable_datasets(unavailable)})
        datasets = [found[i] for i in ids]
        try:
            fl_job = fl.fl_create(
                researcher=request.user,
                datasets=datasets,
                params=data.validated_data["params"],
                title=data.validated_data["title"],
            )
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from exc
        fl_job = selectors.fl_job_get(user=request.user, pk=fl_job.pk)
        return Response(FlJobSerializer(fl_job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: FlJobSerializer})
    @action(detail=True, methods=["post"])
    def abort(self, request, pk=None, format=None):  # format: the router's .json suffix
        fl_job = selectors.fl_job_get(user=request.user, pk=pk, action="abort")
        fl.fl_abort(actor=request.user, fl_job=fl_job)
        return Response(FlJobSerializer(selectors.fl_job_get(user=request.user, pk=pk)).data)

    @extend_schema(request=ReleaseSerializer, responses={201: TrainedModelSerializer})
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None, format=None):  # format: the router's .json suffix
        fl_job = selectors.fl_job_get(user=request.user, pk=pk, action="release")
        data = ReleaseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        model = fl.fl_release(actor=request.user, fl_job=fl_job, name=data.validated_data["name"])
        return Response(TrainedModelSerializer(model).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=DeclineSerializer, responses={200: FlJobSerializer})
    @action(detail=True, methods=["post"])
    def decline(self, request, pk=None, format=None):  # format: the router's .json suffix
        fl_job = selectors.fl_job_get(user=request.user, pk=pk, action="release")
        data = DeclineSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fl.fl_decline(actor=request.user, fl_job=fl_job, reason=data.validated_data["reason"])
        return Response(FlJobSerializer(selectors.fl_job_get(user=request.user, pk=pk)).data)


class TrainedModelViewSet(RestrictedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = TrainedModelSerializer
    permission_classes = [IsAuthenticated]
    restrict = permissions.restrict
    queryset = TrainedModel.objects.none()

    def get_base_queryset(self):
        return selectors.model_list(user=self.request.user).order_by("name", "-version")

    @extend_schema(
        responses={
            200: inline_serializer(
                "TrainedModelDownload",
                {
                    "name": serializers.CharField(),
                    "version": serializers.IntegerField(),
                    "template": serializers.CharField(),
                    "features": serializers.ListField(child=serializers.CharField()),
                    "scaling": serializers.DictField(),
                    "parameters": serializers.ListField(child=serializers.FloatField()),
                    "model_card": serializers.CharField(),
                },
            )
        }
    )
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None, format=None):  # format: the router's .json suffix
        model = selectors.model_get(user=request.user, pk=pk)
        try:
            payload = fl.model_download(actor=request.user, model=model)
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from exc
        return Response(payload)


@extend_schema(
    responses={200: inline_serializer("FlParamsSchema", {"schema": serializers.DictField()})}
)
@api_view(["GET"])
@permission_classes([IsAuthenticated])
def params_schema(request):
    """JSON schema of ``federated_learning`` v1 parameters."""
    kind = fl.FL_KIND
    return Response({"type": kind.type, "version": kind.version, "schema": kind.params_schema()})
