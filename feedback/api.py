"""Thin DRF views over the selectors and services; input and output serializers are separate."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import limits
from accounts.api_mixins import RestrictedQuerysetMixin
from accounts.models import Organisation
from accounts.parsers import DepthLimitedJSONParser

from . import links, permissions, selectors, services
from .models import (
    Attachment,
    Category,
    Comment,
    Component,
    FeedbackItem,
    Persona,
    Priority,
    Severity,
)
from .views import attachment_response

User = get_user_model()


def _django_errors(exc: ValidationError) -> serializers.ValidationError:
    return serializers.ValidationError(
        exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
    )


def _call(fn, **kwargs):
    """Run a service; its Django errors become DRF's (400 with field messages, 403 with a message)."""
    try:
        return fn(**kwargs)
    except ValidationError as exc:
        raise _django_errors(exc) from exc
    except PermissionDenied as exc:
        raise ApiPermissionDenied(str(exc)) from exc


# --- Output serializers -----------------------------------------------------------------------


class SiteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organisation
        fields = ["id", "slug", "name"]


class LinkSerializer(serializers.Serializer):
    type = serializers.CharField()
    id = serializers.CharField()
    label = serializers.CharField()


class FeedbackItemSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    site = SiteSerializer()
    author = serializers.SerializerMethodField()
    assignee = serializers.SerializerMethodField()
    labels = serializers.SerializerMethodField()
    link = serializers.SerializerMethodField()
    vote_count = serializers.IntegerField(read_only=True)
    comment_count = serializers.IntegerField(read_only=True)
    has_voted = serializers.BooleanField(read_only=True, default=False)
    transitions = serializers.SerializerMethodField()

    class Meta:
        model = FeedbackItem
        fields = [
            "id",
            "url",
            "site",
            "author",
            "persona",
            "category",
            "component",
            "component_version",
            "severity",
            "title",
            "description",
            "steps_to_reproduce",
            "page_path",
            "contact_consent",
            "shared",
            "link",
            "cds_snapshot",
            "status",
            "assignee",
            "priority",
            "labels",
            "resolution_note",
            "fixed_in_version",
            "duplicate_of",
            "created_at",
            "updated_at",
            "triaged_at",
            "closed_at",
            "reopened_count",
            "vote_count",
            "comment_count",
            "has_voted",
            "transitions",
        ]

    def get_url(self, obj) -> str:
        return reverse("feedback:detail", args=[obj.pk])

    def get_author(self, obj) -> str | None:
        return obj.author.get_username() if obj.author else None

    def get_assignee(self, obj) -> str | None:
        return obj.assignee.get_username() if obj.assignee else None

    def get_labels(self, obj) -> list[str]:
        return [label.name for label in obj.labels.all()]

    @extend_schema_field(LinkSerializer(allow_null=True))
    def get_link(self, obj) -> dict | None:
        if not obj.link_type_id:
            return None
        return {
            "type": f"{obj.link_type.app_label}.{obj.link_type.model}",
            "id": obj.link_id,
            "label": obj.link_label,
        }

    def get_transitions(self, obj) -> list[str]:
        request = self.context.get("request")
        return services.available_transitions(obj, request.user) if request else []


class CommentSerializer(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()
    organisation = serializers.CharField(source="organisation.name", default=None)

    class Meta:
        model = Comment
        fields = ["id", "author", "organisation", "body", "created_at"]

    def get_author(self, obj) -> str | None:
        return obj.author.get_username() if obj.author else None


class AttachmentSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="original_name")
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = ["id", "name", "content_type", "size", "sha256", "created_at", "download_url"]

    def get_download_url(self, obj) -> str:
        return reverse("feedback-item-attachment-download", args=[obj.item_id, obj.pk])


class VoteStateSerializer(serializers.Serializer):
    vote_count = serializers.IntegerField()
    has_voted = serializers.BooleanField()


# --- Input serializers ------------------------------------------------------------------------


class FeedbackCreateSerializer(serializers.Serializer):
    site = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Organisation.objects.filter(is_test_site=True),
        required=False,
        allow_null=True,
        help_text="Slug of the test site; may be left out if you belong to exactly one.",
    )
    persona = serializers.ChoiceField(choices=Persona.choices, required=False)
    category = serializers.ChoiceField(choices=Category.choices)
    component = serializers.ChoiceField(choices=Component.choices)
    component_version = serializers.CharField(
        max_length=limits.VERSION, required=False, allow_blank=True
    )
    severity = serializers.ChoiceField(choices=Severity.choices, required=False, allow_blank=True)
    title = serializers.CharField(**limits.chars(limits.TEXT_SHORT))
    description = serializers.CharField(**limits.chars(limits.TEXT_LONG))
    steps_to_reproduce = serializers.CharField(
        required=False, allow_blank=True, **limits.chars(limits.TEXT_LONG)
    )
    page_path = serializers.CharField(max_length=500, required=False, allow_blank=True)
    contact_consent = serializers.BooleanField(required=False, default=False)
    shared = serializers.BooleanField(required=False, default=False)
    link_type = serializers.ChoiceField(
        choices=sorted(links.LINKABLE), required=False, allow_blank=True
    )
    link_id = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="A dataset's identifier, or the id of an analysis or CDS evaluation.",
    )


class FeedbackUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(required=False, **limits.chars(limits.TEXT_SHORT))
    description = serializers.CharField(required=False, **limits.chars(limits.TEXT_LONG))
    steps_to_reproduce = serializers.CharField(
        required=False, allow_blank=True, **limits.chars(limits.TEXT_LONG)
    )
    persona = serializers.ChoiceField(choices=Persona.choices, required=False)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False, allow_blank=True)
    shared = serializers.BooleanField(required=False)
    contact_consent = serializers.BooleanField(required=False)


class TriageSerializer(serializers.Serializer):
    assignee = serializers.SlugRelatedField(
        slug_field="username",
        queryset=User.objects.filter(is_active=True),
        required=False,
        allow_null=True,
    )
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.NORMAL)
    labels = serializers.ListField(
        child=serializers.CharField(max_length=40), required=False, max_length=limits.LIST_SHORT
    )


class ResolveSerializer(serializers.Serializer):
    resolution_note = serializers.CharField(**limits.chars(limits.TEXT_LONG))
    fixed_in_version = serializers.CharField(
        max_length=limits.VERSION, required=False, allow_blank=True
    )


class WontFixSerializer(serializers.Serializer):
    resolution_note = serializers.CharField(**limits.chars(limits.TEXT_LONG))


class DuplicateSerializer(serializers.Serializer):
    duplicate_of = serializers.IntegerField(**limits.between(1, limits.ID_MAX))


class ReopenSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, **limits.chars(limits.TEXT_MEDIUM)
    )


class CommentCreateSerializer(serializers.Serializer):
    body = serializers.CharField(**limits.chars(limits.TEXT_LONG))


class AttachmentUploadSerializer(serializers.Serializer):
    file = serializers.FileField()


class EmptySerializer(serializers.Serializer):
    pass


# --- Views ------------------------------------------------------------------------------------


class FeedbackItemViewSet(
    RestrictedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Feedback items you may see: your site's, shared ones of the other test sites, all for the
    platform team. Workflow actions answer 403 with a message when your role may not do them and
    400 when the item's status does not allow them."""

    serializer_class = FeedbackItemSerializer
    permission_classes = [IsAuthenticated]
    filterset_class = selectors.FeedbackFilter
    parser_classes = [DepthLimitedJSONParser, FormParser, MultiPartParser]
    restrict = permissions.restrict
    queryset = FeedbackItem.objects.none()

    def get_base_queryset(self):
        return selectors.feedback_list(user=self.request.user).order_by("-created_at", "-pk")

    def _item(self, action_name: str = "view") -> FeedbackItem:
        try:
            return selectors.feedback_get_for_user(
                user=self.request.user, pk=self.kwargs["pk"], action=action_name
            )
        except Http404 as exc:
            raise NotFound() from exc

    def _respond(self, item: FeedbackItem, code=status.HTTP_200_OK) -> Response:
        fresh = selectors.feedback_get_for_user(user=self.request.user, pk=item.pk)
        return Response(self.get_serializer(fresh).data, status=code)

    def retrieve(self, request, *args, **kwargs):
        return Response(self.get_serializer(self._item()).data)

    @extend_schema(request=FeedbackCreateSerializer, responses={201: FeedbackItemSerializer})
    def create(self, request, *args, **kwargs):
        data = FeedbackCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        link_type, link_id = values.pop("link_type", ""), values.pop("link_id", "")
        link = None
        if link_type or link_id:
            link = _call(links.resolve_link, user=request.user, target=link_type, object_id=link_id)
        item = _call(services.feedback_submit, user=request.user, link=link, **values)
        return self._respond(item, status.HTTP_201_CREATED)

    @extend_schema(request=FeedbackUpdateSerializer, responses=FeedbackItemSerializer)
    def partial_update(self, request, *args, **kwargs):
        item = self._item()
        data = FeedbackUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        _call(services.feedback_update, user=request.user, item=item, **data.validated_data)
        return self._respond(item)

    def _transition(self, name: str, serializer_class=None, **extra):
        item = self._item()
        data = {}
        if serializer_class is not None:
            body = serializer_class(data=self.request.data)
            body.is_valid(raise_exception=True)
            data = dict(body.validated_data)
        data.update(extra)
        if name == "duplicate":
            try:
                data["duplicate_of"] = selectors.feedback_get_for_user(
                    user=self.request.user, pk=data["duplicate_of"]
                )
            except Http404:
                raise serializers.ValidationError({"duplicate_of": ["No such item."]}) from None
        _call(services.feedback_transition, user=self.request.user, item=item, name=name, **data)
        return self._respond(item)

    @extend_schema(request=TriageSerializer, responses=FeedbackItemSerializer)
    @action(detail=True, methods=["post"])
    def triage(self, request, pk=None):
        """new / reopened → triaged, with assignee, priority and labels (platform team)."""
        return self._transition("triage", TriageSerializer)

    @extend_schema(request=None, responses=FeedbackItemSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        """triaged → in progress (platform team)."""
        return self._transition("start")

    @extend_schema(request=ResolveSerializer, responses=FeedbackItemSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        """→ resolved, with a resolution note and the version that fixes it (platform team)."""
        return self._transition("resolve", ResolveSerializer)

    @extend_schema(request=WontFixSerializer, responses=FeedbackItemSerializer)
    @action(detail=True, methods=["post"], url_path="wont-fix")
    def wont_fix(self, request, pk=None):
        """→ won't fix, with the reason (platform team)."""
        return self._transition("wont_fix", WontFixSerializer)

    @extend_schema(request=DuplicateSerializer, responses=FeedbackItemSerializer)
    @action(detail=True, methods=["post"])
    def duplicate(self, request, pk=None):
        """→ duplicate of another item (platform team)."""
        return self._transition("duplicate", DuplicateSerializer)

    @extend_schema(request=ReopenSerializer, responses=FeedbackItemSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        """resolved / won't fix / duplicate → reopened (the author or the platform team)."""
        return self._transition("reopen", ReopenSerializer)

    @extend_schema(methods=["POST"], request=None, responses=VoteStateSerializer)
    @extend_schema(methods=["DELETE"], request=None, responses=VoteStateSerializer)
    @action(detail=True, methods=["post", "delete"])
    def vote(self, request, pk=None):
        """Vote for an item (POST) or withdraw your vote (DELETE)."""
        item = self._item("vote")
        fn = services.vote_remove if request.method == "DELETE" else services.vote_add
        _call(fn, user=request.user, item=item)
        fresh = selectors.feedback_get_for_user(user=request.user, pk=item.pk)
        return Response({"vote_count": fresh.vote_count, "has_voted": bool(fresh.has_voted)})

    @extend_schema(methods=["GET"], request=None, responses=CommentSerializer(many=True))
    @extend_schema(
        methods=["POST"], request=CommentCreateSerializer, responses={201: CommentSerializer}
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None, filterset_class=None)
    def comments(self, request, pk=None):
        """The comment thread; POST adds a comment (the author is notified of replies)."""
        if request.method == "GET":
            item = self._item()
            return Response(CommentSerializer(item.comments.all(), many=True).data)
        item = self._item("comment")
        body = CommentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        comment = _call(
            services.comment_add, user=request.user, item=item, body=body.validated_data["body"]
        )
        return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], request=None, responses=AttachmentSerializer(many=True))
    @extend_schema(
        methods=["POST"],
        request={"multipart/form-data": AttachmentUploadSerializer},
        responses={201: AttachmentSerializer},
    )
    @action(
        detail=True,
        methods=["get", "post"],
        parser_classes=[MultiPartParser, FormParser],
        pagination_class=None,
        filterset_class=None,
    )
    def attachments(self, request, pk=None):
        """Attachments (PNG, JPEG, GIF, WebP, PDF, plain text; size-limited)."""
        if request.method == "GET":
            item = self._item()
            return Response(AttachmentSerializer(item.attachments.all(), many=True).data)
        item = self._item("attach")
        body = AttachmentUploadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        attachment = _call(
            services.attachment_add,
            user=request.user,
            item=item,
            upload=body.validated_data["file"],
        )
        return Response(AttachmentSerializer(attachment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY)},
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"attachments/(?P<attachment_pk>[0-9]+)",
        url_name="attachment-download",
        pagination_class=None,
        filterset_class=None,
    )
    def attachment_download(self, request, pk=None, attachment_pk=None):
        """Download one attachment (always as a file, never rendered inline)."""
        try:
            attachment = selectors.attachment_get_for_user(
                user=request.user, item_pk=pk, pk=attachment_pk
            )
        except Http404 as exc:
            raise NotFound() from exc
        return attachment_response(attachment)


StatsSerializer = inline_serializer(
    "FeedbackStats",
    {
        "weeks": serializers.IntegerField(),
        "total": serializers.IntegerField(),
        "open": serializers.IntegerField(),
        "by_status": serializers.DictField(child=serializers.IntegerField()),
        "time_to_triage": serializers.DictField(),
        "time_to_resolution": serializers.DictField(),
        "most_voted": serializers.ListField(child=serializers.DictField()),
        "over_time": serializers.DictField(),
    },
)


class FeedbackStatsView(RestrictedQuerysetMixin, APIView):
    """Platform-team numbers: items per week by site, component, category and status; time to
    triage and to resolution (hours); most-voted open items."""

    permission_classes = [IsAuthenticated]
    restrict = permissions.restrict  # the selectors read through its "dashboard" action

    @extend_schema(responses=StatsSerializer)
    def get(self, request):
        if not permissions.is_platform_team(request.user):
            raise NotFound()
        try:
            weeks = min(max(int(request.query_params.get("weeks", 12)), 1), 104)
        except ValueError:
            weeks = 12
        stats = selectors.feedback_stats(user=request.user, weeks=weeks)
        stats["most_voted"] = [
            {"id": i.pk, "title": i.title, "site": i.site.slug, "votes": i.vote_count}
            for i in stats["most_voted"]
        ]
        over_time = {}
        for dimension in selectors.DIMENSIONS:
            chart = selectors.items_over_time(user=request.user, weeks=weeks, dimension=dimension)
            over_time[dimension] = {
                "weeks": [b.isoformat() for b in chart.buckets],
                "series": chart.series,
            }
        stats["over_time"] = over_time
        return Response(stats)


CdsGroupSerializer = inline_serializer(
    "FeedbackCdsDisagreementGroup",
    many=True,
    fields={
        "rule_id": serializers.CharField(),
        "count": serializers.IntegerField(),
        "open": serializers.IntegerField(),
        "versions": serializers.ListField(child=serializers.CharField()),
        "items": serializers.ListField(child=serializers.IntegerField()),
    },
)


class CdsDisagreementsView(RestrictedQuerysetMixin, APIView):
    """Clinicians' disagreements with one pathway's advice, grouped by the rule that decided."""

    permission_classes = [IsAuthenticated]
    restrict = permissions.restrict  # the selector reads through it with the user

    @extend_schema(responses=CdsGroupSerializer)
    def get(self, request, pathway_id: str):
        if not permissions.is_platform_team(request.user):
            raise NotFound()
        groups = selectors.cds_disagreements_by_rule(pathway_id, user=request.user)
        return Response([{**g, "items": [item.pk for item in g["items"]]} for g in groups])
