"""``/api/notifications/``: the signed-in person's own notifications (anyone else's answers 404)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from . import limits, notifications, permissions
from .api_mixins import RestrictedQuerysetMixin
from .models import Notification
from .selectors import notification_list_for_user, notification_unread_count


class NotificationSerializer(serializers.ModelSerializer):
    organisation = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)

    class Meta:
        model = Notification
        fields = [
            "id",
            "verb",
            "subject",
            "body",
            "url",
            "organisation",
            "object_type",
            "object_id",
            "created_at",
            "read_at",
        ]


class MarkReadSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(**limits.between(1, limits.ID_MAX)),
        required=False,
        max_length=limits.LIST_LONG,
    )
    all = serializers.BooleanField(default=False)

    def validate(self, attrs):
        if not attrs["all"] and not attrs.get("ids"):
            raise serializers.ValidationError({"ids": ["Name the notifications, or send all."]})
        return attrs


UnreadCount = inline_serializer("UnreadCount", {"unread": serializers.IntegerField()})


class NotificationViewSet(
    RestrictedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Your notifications, newest first (``?unread=true`` for the unread ones only)."""

    serializer_class = NotificationSerializer
    permission_classes = [IsAuthenticated]
    filter_backends: list = []

    queryset = Notification.objects.all()
    restrict = permissions.restrict

    def get_base_queryset(self):
        unread_only = self.request.query_params.get("unread") in ("1", "true", "yes")
        return notification_list_for_user(
            self.request.user, unread_only=unread_only
        ).select_related("organisation")

    @extend_schema(
        parameters=[OpenApiParameter("unread", bool, description="Only the unread ones")]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        notification = self.get_object()
        notifications.mark_read(user=request.user, ids=[notification.pk])
        notification.refresh_from_db()
        return Response(NotificationSerializer(notification).data)

    @extend_schema(request=MarkReadSerializer, responses=UnreadCount)
    @action(detail=False, methods=["post"], url_path="mark-read")
    def mark_read(self, request):
        """Mark the ``ids`` given (yours only) or ``all`` read; answers the unread count left."""
        data = MarkReadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        notifications.mark_read(
            user=request.user, ids=data.validated_data.get("ids"), all=data.validated_data["all"]
        )
        return Response({"unread": notification_unread_count(request.user)})

    @extend_schema(responses=UnreadCount)
    @action(detail=False, methods=["get"], url_path="unread-count")
    def unread_count(self, request):
        return Response({"unread": notification_unread_count(request.user)})
