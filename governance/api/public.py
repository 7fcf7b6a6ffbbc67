"""Transparency: the public data-use register and custodian statistics."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from .. import datasets as ds
from .. import statistics
from ..models import AccessRequest


class RegisterEntrySerializer(serializers.Serializer):
    reference = serializers.CharField()
    project_title = serializers.CharField()
    lay_summary = serializers.CharField()
    organisation = serializers.CharField(source="organisation.name")
    approved_at = serializers.DateTimeField()
    access_until = serializers.DateField(source="requested_end_date")
    datasets = serializers.SerializerMethodField()

    def get_datasets(self, obj) -> list[dict]:
        return [
            {
                "id": i.dataset_id,
                "title": ds.title(i.dataset),
                "custodian": i.custodian.name if hasattr(i, "custodian") else "",
                "access_mode": i.access_mode,
            }
            for i in statistics.approved_items(obj)
        ]


class DataUseRegisterViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The public data-use register: approved projects, their organisation, datasets and dates."""

    serializer_class = RegisterEntrySerializer
    permission_classes = [AllowAny]
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AccessRequest.objects.none()
        return statistics.register_entries().prefetch_related("items__custodian")


class CustodianStatisticsSerializer(serializers.Serializer):
    custodian = serializers.CharField(source="organisation.slug")
    name = serializers.CharField(source="organisation.name")
    requests = serializers.IntegerField()
    decided = serializers.IntegerField()
    approved = serializers.IntegerField()
    approval_rate = serializers.FloatField(allow_null=True)
    median_days_to_decision = serializers.FloatField(source="median_days", allow_null=True)


@extend_schema(responses=CustodianStatisticsSerializer(many=True))
class CustodianStatisticsViewSet(viewsets.ViewSet):
    """Per custodian: requests received, approval rate, median days from submission to decision."""

    permission_classes = [AllowAny]

    @extend_schema(responses=CustodianStatisticsSerializer(many=True))
    def list(self, request):
        return Response(
            CustodianStatisticsSerializer(statistics.custodian_statistics(), many=True).data
        )
