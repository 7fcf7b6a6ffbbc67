"""Thin DRF views of the centralised route; input and output serializers are separate.

An upload takes three calls: ``POST /api/central/uploads/`` (dataset, file name, size, SHA-256 of
the whole file), then ``PUT /api/central/uploads/<id>/chunk/`` once per chunk (the raw bytes as
``application/octet-stream``, headers ``Upload-Offset`` and ``Chunk-SHA256``; after an interruption
``GET`` the upload and resume from its ``received_bytes``), then ``POST .../complete/``.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import BaseParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api_mixins import RestrictedQuerysetMixin

from . import permissions, services
from .models import DatasetVersion, Upload


class UploadInSerializer(serializers.Serializer):
    dataset = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    filename = serializers.CharField(max_length=255)
    # The configured limit (CENTRAL_UPLOAD_MAX_BYTES) is checked by the service with its own message.
    size = serializers.IntegerField(min_value=1, max_value=2**62)
    sha256 = serializers.RegexField(
        r"^[0-9a-fA-F]{64}$", max_length=64, help_text="SHA-256 of the whole file."
    )


class UploadOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = Upload
        fields = [
            "id",
            "dataset",
            "filename",
            "size",
            "sha256",
            "received_bytes",
            "chunks",
            "status",
            "stage",
            "progress",
            "report",
            "error",
            "attempts",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class VersionOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetVersion
        fields = ["id", "dataset", "number", "status", "cdm_tables", "persons", "loaded_at"]
        read_only_fields = fields


class ChunkParser(BaseParser):
    """The chunk's raw bytes; the view reads ``request.body`` itself."""

    media_type = "application/octet-stream"

    def parse(self, stream, media_type=None, parser_context=None):
        if stream is None:
            return b""
        limit = settings.CENTRAL_CHUNK_MAX_BYTES
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise ValidationError({"chunk": f"A chunk may hold at most {limit} bytes."})
        return data


def _int_header(request: Request, name: str, field: str) -> int:
    value = request.headers.get(name, "")
    if not re.fullmatch(r"[0-9]{1,18}", value):
        raise ValidationError({field: f"Send the header {name} (a whole number of bytes)."})
    return int(value)


class UploadViewSet(
    RestrictedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Uploads of OMOP extracts (stewards of the dataset's publisher)."""

    restrict = permissions.restrict
    restrict_actions = {"chunk": "upload", "complete": "upload"}
    permission_classes = [IsAuthenticated]
    queryset = Upload.objects.select_related("dataset")
    serializer_class = UploadOutSerializer

    @extend_schema(request=UploadInSerializer, responses={201: UploadOutSerializer})
    def create(self, request: Request) -> Response:
        data = UploadInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = services.upload_create(
            user=request.user,
            dataset_id=data.validated_data["dataset"],
            filename=data.validated_data["filename"],
            size=data.validated_data["size"],
            sha256=data.validated_data["sha256"],
        )
        return Response(UploadOutSerializer(upload).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request={"application/octet-stream": OpenApiTypes.BINARY},
        parameters=[
            OpenApiParameter("Upload-Offset", int, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("Chunk-SHA256", str, OpenApiParameter.HEADER, required=True),
        ],
        responses={200: UploadOutSerializer},
    )
    @action(detail=True, methods=["put", "post"], parser_classes=[ChunkParser])
    def chunk(self, request: Request, pk: str | None = None) -> Response:
        upload = self.get_object()
        offset = _int_header(request, "Upload-Offset", "offset")
        upload = services.upload_receive_chunk(
            user=request.user,
            upload=upload,
            offset=offset,
            data=request.data if isinstance(request.data, bytes) else b"",
            sha256=request.headers.get("Chunk-SHA256", ""),
        )
        return Response(UploadOutSerializer(upload).data)

    @extend_schema(request=None, responses={202: UploadOutSerializer})
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str | None = None) -> Response:
        upload = services.upload_complete(user=request.user, upload=self.get_object())
        upload.refresh_from_db()
        return Response(UploadOutSerializer(upload).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def report(self, request: Request, pk: str | None = None) -> Response:
        """The check report (JSON); the HTML page offers it as CSV too."""
        return Response(self.get_object().report)


class VersionViewSet(
    RestrictedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Loaded central versions of datasets; a steward retires one (its schema is dropped)."""

    restrict = permissions.restrict
    restrict_actions = {"retire": "retire"}
    permission_classes = [IsAuthenticated]
    queryset = DatasetVersion.objects.select_related("dataset")
    serializer_class = VersionOutSerializer

    @extend_schema(request=None, responses={200: VersionOutSerializer})
    @action(detail=True, methods=["post"])
    def retire(self, request: Request, pk: str | None = None) -> Response:
        version = services.version_retire(user=request.user, version=self.get_object())
        return Response(VersionOutSerializer(version).data)
