"""The basket, access requests (with their DAC decisions, comments and attachments)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts import limits
from accounts.api_mixins import RestrictedQuerysetMixin
from accounts.models import Organisation
from accounts.parsers import DepthLimitedJSONParser
from catalogue.models import AccessMode

from .. import permissions, services
from ..models import (
    AccessRequest,
    Attachment,
    AttachmentKind,
    BasketItem,
    Comment,
    Decision,
    Purpose,
)
from .common import (
    DatasetRefSerializer,
    OrgRefSerializer,
    ReasonSerializer,
    UserRefSerializer,
    VisibleDatasetField,
    int_or_zero,
)

User = get_user_model()


class BasketItemSerializer(serializers.ModelSerializer):
    dataset = DatasetRefSerializer(read_only=True)

    class Meta:
        model = BasketItem
        fields = ["dataset", "added_at"]


class BasketAddSerializer(serializers.Serializer):
    dataset = VisibleDatasetField(published_only=True)


class BasketViewSet(RestrictedQuerysetMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Published datasets you collected for your next access request."""

    restrict = permissions.restrict
    serializer_class = BasketItemSerializer
    permission_classes = [IsAuthenticated]
    lookup_field = "dataset"
    pagination_class = None

    def get_base_queryset(self):
        return BasketItem.objects.select_related("dataset__current_version")

    @extend_schema(request=BasketAddSerializer, responses={201: BasketItemSerializer})
    def create(self, request):
        data = BasketAddSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        item = services.basket_add(user=request.user, dataset=data.validated_data["dataset"])
        return Response(BasketItemSerializer(item).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, dataset=None):
        # Idempotent, and the same answer whether or not such a dataset exists.
        item = (
            self.restricted(BasketItem.objects.filter(dataset_id=int_or_zero(dataset)))
            .select_related("dataset")
            .first()
        )
        if item is not None:
            services.basket_remove(user=request.user, dataset=item.dataset)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ItemOutSerializer(serializers.Serializer):
    dataset = DatasetRefSerializer()
    custodian = serializers.CharField(source="custodian.slug")
    access_mode = serializers.CharField()
    terms_version = serializers.IntegerField(source="terms.version", allow_null=True, default=None)


class DecisionOutSerializer(serializers.ModelSerializer):
    status = serializers.CharField(
        read_only=True, help_text="pending, under_review, approved, rejected, changes_requested"
    )
    custodian = OrgRefSerializer()
    decided_by = serializers.CharField(
        source="decided_by.get_username", default=None, allow_null=True
    )

    class Meta:
        model = Decision
        fields = ["custodian", "status", "reason", "decided_by", "decided_at"]


class AccessRequestOutSerializer(serializers.ModelSerializer):
    status = serializers.CharField(
        read_only=True,
        help_text="draft, submitted, under_review, changes_requested, resubmitted, approved, rejected, withdrawn",
    )
    reference = serializers.CharField(read_only=True)
    applicant = UserRefSerializer()
    organisation = OrgRefSerializer()
    team_members = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)
    items = ItemOutSerializer(many=True)
    decisions = DecisionOutSerializer(many=True)

    class Meta:
        model = AccessRequest
        fields = [
            "id",
            "reference",
            "status",
            "applicant",
            "organisation",
            "project_title",
            "research_question",
            "lay_summary",
            "purpose",
            "requested_end_date",
            "ethics_reference",
            "team_members",
            "items",
            "decisions",
            "renewal_of",
            "created_at",
            "submitted_at",
            "closed_at",
        ]


class ItemInSerializer(serializers.Serializer):
    dataset = VisibleDatasetField(published_only=True)
    access_mode = serializers.ChoiceField(choices=AccessMode.choices, required=False)
    accept_terms = serializers.BooleanField(
        required=False, default=False, help_text="Accept the dataset's current terms of use."
    )


class AccessRequestInSerializer(serializers.Serializer):
    project_title = serializers.CharField(**limits.chars(limits.TITLE))
    research_question = serializers.CharField(
        required=False, allow_blank=True, **limits.chars(limits.TEXT_LONG)
    )
    lay_summary = serializers.CharField(
        required=False, allow_blank=True, **limits.chars(limits.TEXT_LONG)
    )
    purpose = serializers.ChoiceField(choices=Purpose.choices, required=False, allow_blank=True)
    requested_end_date = serializers.DateField(
        required=False,
        allow_null=True,
        validators=[limits.check_requested_end_date],
        help_text=f"At most {limits.REQUESTED_END_YEARS} years ahead.",
    )
    ethics_reference = serializers.CharField(
        required=False, allow_blank=True, **limits.chars(limits.TEXT_SHORT)
    )
    team_members = serializers.ListField(
        child=serializers.CharField(max_length=limits.USERNAME),
        required=False,
        max_length=limits.LIST_SHORT,
        help_text="Usernames of people of your organisation.",
    )
    items = ItemInSerializer(
        many=True,
        required=False,
        max_length=limits.LIST_SHORT,
        help_text="On PATCH the complete list: datasets left out are removed (drafts only).",
    )
    from_basket = serializers.BooleanField(required=False, default=False)


class AccessRequestUpdateSerializer(AccessRequestInSerializer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project_title"].required = False
        self.fields.pop("from_basket")


class RequestCommentSerializer(serializers.ModelSerializer):
    custodian = serializers.SlugRelatedField(slug_field="slug", queryset=Organisation.objects.all())
    author = serializers.CharField(source="author.get_username", read_only=True)

    class Meta:
        model = Comment
        fields = ["id", "custodian", "author", "body", "created_at"]
        read_only_fields = ["created_at"]
        extra_kwargs = {"body": limits.chars(limits.TEXT_LONG)}


class RequestAttachmentSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(read_only=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = [
            "id",
            "kind",
            "original_name",
            "content_type",
            "size",
            "sha256",
            "uploaded_at",
            "download_url",
        ]

    def get_download_url(self, obj) -> str:
        return reverse("governance-attachment-detail", args=[obj.pk])


class AttachmentInSerializer(serializers.Serializer):
    kind = serializers.CharField(
        help_text="One of: " + ", ".join(AttachmentKind.values), max_length=20
    )
    file = serializers.FileField()


def _team(usernames):
    """Users for usernames; unknown names get the same answer as people of other organisations."""
    if usernames is None:
        return None
    users = list(User.objects.filter(username__in=usernames, is_active=True))
    unknown = sorted(set(usernames) - {u.get_username() for u in users})
    if unknown:
        raise serializers.ValidationError(
            {
                "team_members": [
                    f"Team members must belong to your organisation: not {', '.join(unknown)}."
                ]
            }
        )
    return users


DECISION_ACTIONS = {
    "start-review": services.decision_start_review,
    "approve": services.decision_approve,
    "reject": services.decision_reject,
    "request-changes": services.decision_request_changes,
}


class AccessRequestViewSet(
    RestrictedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Access requests you make, belong to the team of, or decide on as a custodian's DAC member."""

    restrict = permissions.restrict
    serializer_class = AccessRequestOutSerializer
    permission_classes = [IsAuthenticated]
    filterset_fields = ["status"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_base_queryset(self):
        return (
            AccessRequest.objects.select_related("applicant", "organisation")
            .prefetch_related(
                "team_members",
                "items__dataset__current_version",
                "items__custodian",
                "items__terms",
                "decisions__custodian",
                "decisions__decided_by",
            )
            .order_by("-created_at", "-pk")
        )

    def _out(self, access_request, code=status.HTTP_200_OK):
        return Response(
            AccessRequestOutSerializer(self.get_queryset().get(pk=access_request.pk)).data,
            status=code,
        )

    @extend_schema(request=AccessRequestInSerializer, responses={201: AccessRequestOutSerializer})
    def create(self, request, *args, **kwargs):
        data = AccessRequestInSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        items = [
            (i["dataset"], i.get("access_mode"), i["accept_terms"]) for i in v.pop("items", [])
        ]
        access_request = services.access_request_create(
            actor=request.user,
            datasets=items,
            team_members=_team(v.pop("team_members", [])),
            **v,
        )
        return self._out(access_request, status.HTTP_201_CREATED)

    @extend_schema(request=AccessRequestUpdateSerializer, responses=AccessRequestOutSerializer)
    def partial_update(self, request, *args, **kwargs):
        access_request = self.get_object()
        data = AccessRequestUpdateSerializer(
            data=request.data, partial=True, context={"request": request}
        )
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        items_in = v.pop("items", None)
        kwargs = {}
        if items_in is not None:
            present = set(access_request.items.values_list("dataset_id", flat=True))
            wanted = {i["dataset"].pk for i in items_in}
            kwargs["add_datasets"] = [
                i["dataset"] for i in items_in if i["dataset"].pk not in present
            ]
            kwargs["remove_datasets"] = [
                i.dataset
                for i in access_request.items.select_related("dataset")
                if i.dataset_id in present - wanted
            ]
            kwargs["items"] = {
                i["dataset"].pk: {
                    **({"access_mode": i["access_mode"]} if i.get("access_mode") else {}),
                    **({"accept_terms": i["accept_terms"]} if "accept_terms" in i else {}),
                }
                for i in items_in
            }
        services.access_request_update(
            actor=request.user,
            access_request=access_request,
            team_members=_team(v.pop("team_members", None)),
            **kwargs,
            **v,
        )
        if kwargs.get("add_datasets"):
            # Newly added datasets get their mode and terms in a second pass.
            services.access_request_update(
                actor=request.user, access_request=access_request, items=kwargs["items"]
            )
        return self._out(access_request)

    def update(self, request, *args, **kwargs):
        return self.partial_update(request, *args, **kwargs)

    @extend_schema(request=None, responses=AccessRequestOutSerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        return self._out(
            services.access_request_submit(actor=request.user, access_request=self.get_object())
        )

    @extend_schema(request=None, responses=AccessRequestOutSerializer)
    @action(detail=True, methods=["post"])
    def resubmit(self, request, pk=None):
        return self._out(
            services.access_request_resubmit(actor=request.user, access_request=self.get_object())
        )

    @extend_schema(request=ReasonSerializer, responses=AccessRequestOutSerializer)
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._out(
            services.access_request_withdraw(
                actor=request.user,
                access_request=self.get_object(),
                reason=data.validated_data["reason"],
            )
        )

    @extend_schema(
        request=ReasonSerializer,
        responses=AccessRequestOutSerializer,
        parameters=[
            OpenApiParameter("custodian", str, OpenApiParameter.PATH, description="Custodian slug"),
            OpenApiParameter(
                "decision_action",
                str,
                OpenApiParameter.PATH,
                enum=sorted(DECISION_ACTIONS),
                description="start-review, approve, reject (reason required) or request-changes (reason required)",
            ),
        ],
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"decisions/(?P<custodian>[-\w]+)/(?P<decision_action>start-review|approve|reject|request-changes)",
    )
    def decide(self, request, pk=None, custodian=None, decision_action=None):
        """A custodian's DAC member acts on that custodian's decision."""
        access_request = self.get_object()
        decision = self.restricted_object(
            Decision.objects.all(), "view", request=access_request, custodian__slug=custodian
        )
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fn = DECISION_ACTIONS[decision_action]
        kwargs = (
            {} if decision_action == "start-review" else {"reason": data.validated_data["reason"]}
        )
        try:
            fn(actor=request.user, decision=decision, **kwargs)
        except permissions.ConflictOfInterest as exc:
            # 403 with the reason and a code a client can act on (the error envelope of the API).
            raise exceptions.PermissionDenied(str(exc), code=exc.code) from exc
        return self._out(access_request)

    @extend_schema(methods=["get"], responses=RequestCommentSerializer(many=True))
    @extend_schema(
        methods=["post"],
        request=RequestCommentSerializer,
        responses={201: RequestCommentSerializer},
    )
    @action(detail=True, methods=["get", "post"])
    def comments(self, request, pk=None):
        """The per-custodian threads you may read; POST adds to one (name the custodian)."""
        access_request = self.get_object()
        if request.method == "POST":
            data = RequestCommentSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            comment = services.comment_post(
                actor=request.user,
                access_request=access_request,
                custodian=data.validated_data["custodian"],
                body=data.validated_data["body"],
            )
            return Response(RequestCommentSerializer(comment).data, status=status.HTTP_201_CREATED)
        custodian_ids = access_request.decisions.values_list("custodian_id", flat=True)
        visible = permissions.visible_thread_custodian_ids(
            request.user, access_request, custodian_ids
        )
        rows = access_request.comments.filter(custodian_id__in=visible).select_related(
            "custodian", "author"
        )
        return Response(RequestCommentSerializer(rows, many=True).data)

    @extend_schema(methods=["get"], responses=RequestAttachmentSerializer(many=True))
    @extend_schema(
        methods=["post"],
        request=AttachmentInSerializer,
        responses={201: RequestAttachmentSerializer},
    )
    @action(
        detail=True,
        methods=["get", "post"],
        parser_classes=[MultiPartParser, FormParser, DepthLimitedJSONParser],
    )
    def attachments(self, request, pk=None):
        """Files of the request (ethics approval, protocol); upload as multipart form data."""
        access_request = self.get_object()
        if request.method == "POST":
            data = AttachmentInSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            attachment = services.attachment_add(
                actor=request.user,
                access_request=access_request,
                kind=data.validated_data["kind"],
                upload=data.validated_data["file"],
            )
            return Response(
                RequestAttachmentSerializer(attachment).data, status=status.HTTP_201_CREATED
            )
        return Response(
            RequestAttachmentSerializer(access_request.attachments.all(), many=True).data
        )


class AttachmentDownloadViewSet(RestrictedQuerysetMixin, viewsets.GenericViewSet):
    """Download one attachment (only for people who may see its request)."""

    restrict = permissions.restrict
    permission_classes = [IsAuthenticated]
    queryset = Attachment.objects.none()
    serializer_class = RequestAttachmentSerializer

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def retrieve(self, request, pk=None):
        attachment = self.restricted_object(Attachment.objects.all(), pk=pk)
        return FileResponse(
            attachment.file.open("rb"),
            content_type=attachment.content_type,
            as_attachment=True,
            filename=attachment.original_name,
        )
