"""Pieces every governance API module shares: dataset ids checked against the catalogue, refs."""

from __future__ import annotations

from rest_framework import serializers

from accounts import limits

from .. import datasets as ds


def int_or_zero(value) -> int:
    text = str(value)
    return int(text) if text.isdigit() and len(text) < 19 else 0


class VisibleDatasetField(serializers.PrimaryKeyRelatedField):
    """A dataset id the requesting user can see in the catalogue (``published_only``: a published
    one). Unknown and invisible ids get the same "does not exist" error, naming nothing."""

    def __init__(self, *, published_only: bool = False, **kwargs):
        self.published_only = published_only
        kwargs.setdefault("queryset", ds.published())  # the model, for the OpenAPI schema
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        if request is None:
            return ds.published()
        return ds.visible_to(request.user, published_only=self.published_only)


class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField(source="get_username")
    name = serializers.CharField(source="get_full_name")


class OrgRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()


class DatasetRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    identifier = serializers.CharField()
    title = serializers.SerializerMethodField()

    def get_title(self, obj) -> str:
        return ds.title(obj)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", **limits.chars(limits.TEXT_MEDIUM)
    )
