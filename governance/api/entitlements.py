"""Entitlements: who may use which dataset, and their terms."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts.api_mixins import RestrictedQuerysetMixin

from .. import permissions, services
from ..models import Entitlement
from .common import DatasetRefSerializer, ReasonSerializer
from .requests import AccessRequestOutSerializer


class EntitlementSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True, help_text="active, suspended, revoked, expired")
    suspension_reason = serializers.CharField(read_only=True)
    holder = serializers.CharField(source="holder.get_username")
    dataset = DatasetRefSerializer()
    request = serializers.CharField(source="request.reference")
    agreement = serializers.CharField(source="agreement.reference", default=None)
    terms_version = serializers.IntegerField(source="terms.version", default=None)

    class Meta:
        model = Entitlement
        fields = [
            "id",
            "holder",
            "dataset",
            "access_mode",
            "starts_at",
            "ends_at",
            "status",
            "suspension_reason",
            "revoked_reason",
            "request",
            "agreement",
            "terms_version",
        ]


class EntitlementViewSet(RestrictedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """Entitlements you hold, or on your custodian's datasets if you sit on its DAC."""

    restrict = permissions.restrict
    serializer_class = EntitlementSerializer
    permission_classes = [IsAuthenticated]
    filterset_fields = ["status", "access_mode", "dataset"]

    def get_base_queryset(self):
        return Entitlement.objects.select_related(
            "holder", "dataset__current_version", "request", "agreement", "terms"
        ).order_by("ends_at", "pk")

    def _out(self, entitlement):
        return Response(EntitlementSerializer(self.get_queryset().get(pk=entitlement.pk)).data)

    @extend_schema(request=ReasonSerializer, responses=EntitlementSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._out(
            services.entitlement_revoke(
                actor=request.user,
                entitlement=self.get_object(),
                reason=data.validated_data["reason"],
            )
        )

    @extend_schema(request=None, responses=EntitlementSerializer)
    @action(detail=True, methods=["post"], url_path="accept-terms")
    def accept_terms(self, request, pk=None):
        return self._out(
            services.entitlement_accept_terms(actor=request.user, entitlement=self.get_object())
        )

    @extend_schema(request=None, responses={201: AccessRequestOutSerializer})
    @action(detail=True, methods=["post"])
    def renew(self, request, pk=None):
        """A new draft request prefilled from the original one."""
        renewal = services.entitlement_renew(actor=request.user, entitlement=self.get_object())
        return Response(AccessRequestOutSerializer(renewal).data, status=status.HTTP_201_CREATED)
