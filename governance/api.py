"""The governance API: thin DRF views over the same services and selectors as the HTML pages."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from accounts import limits
from accounts.models import Organisation
from accounts.parsers import DepthLimitedJSONParser
from accounts.permissions import get_for_user_or_404
from catalogue.models import AccessMode

from . import datasets as ds
from . import permissions, selectors, services, statistics
from .models import (
    AccessRequest,
    Agreement,
    AgreementKind,
    AgreementTemplate,
    Attachment,
    AttachmentKind,
    BasketItem,
    Comment,
    Decision,
    Entitlement,
    Notification,
    PartyRole,
    Purpose,
)

User = get_user_model()


def _int_or_zero(value) -> int:
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


# --- Agreement templates ----------------------------------------------------------------------
class AgreementTemplateSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(
        help_text="One of: " + ", ".join(AgreementKind.values), max_length=20
    )

    class Meta:
        model = AgreementTemplate
        fields = ["id", "kind", "version", "title", "body", "notes", "created_at"]
        read_only_fields = ["version", "created_at"]
        extra_kwargs = {
            "title": limits.chars(limits.TEXT_SHORT),
            "body": limits.chars(limits.TEXT_DOCUMENT),
            "notes": limits.chars(limits.TEXT_MEDIUM),
        }


class AgreementTemplateViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Versioned agreement templates. POST publishes the next version of a kind (platform admins)."""

    serializer_class = AgreementTemplateSerializer
    permission_classes = [IsAuthenticated]
    filterset_fields = ["kind"]
    queryset = AgreementTemplate.objects.all()

    def create(self, request, *args, **kwargs):
        data = AgreementTemplateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        template = services.agreement_template_publish(actor=request.user, **data.validated_data)
        return Response(AgreementTemplateSerializer(template).data, status=status.HTTP_201_CREATED)


# --- Agreements -------------------------------------------------------------------------------
class PartySerializer(serializers.Serializer):
    organisation = serializers.SlugRelatedField(
        slug_field="slug", queryset=Organisation.objects.all()
    )
    role = serializers.ChoiceField(choices=PartyRole.choices)


class SignatureOutSerializer(serializers.Serializer):
    organisation = serializers.CharField(source="party.organisation.slug")
    user = serializers.CharField(source="user.get_username")
    full_name = serializers.CharField()
    signed_at = serializers.DateTimeField()
    ip_address = serializers.CharField(allow_null=True)
    document_sha256 = serializers.CharField()


class AgreementOutSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(read_only=True)
    status = serializers.CharField(
        read_only=True,
        help_text="draft, out_for_signature, active, expired, terminated, superseded",
    )
    reference = serializers.CharField(read_only=True)
    parties = serializers.SerializerMethodField()
    signatures = SignatureOutSerializer(many=True, read_only=True)
    datasets = serializers.SerializerMethodField(
        help_text="Ids of the covered datasets you can see in the catalogue."
    )
    datasets_not_visible = serializers.SerializerMethodField(
        help_text="How many covered datasets you cannot see in the catalogue (not named)."
    )
    template_version = serializers.IntegerField(source="template.version")
    document_url = serializers.SerializerMethodField()
    signed_document_url = serializers.SerializerMethodField()

    class Meta:
        model = Agreement
        fields = [
            "id",
            "reference",
            "kind",
            "title",
            "purposes",
            "status",
            "version",
            "previous_version",
            "superseded_by",
            "termination_reason",
            "template",
            "template_version",
            "effective_date",
            "expiry_date",
            "parties",
            "datasets",
            "datasets_not_visible",
            "signatures",
            "sent_at",
            "activated_at",
            "document_sha256",
            "signed_document_sha256",
            "document_url",
            "signed_document_url",
        ]

    def _covered(self, obj) -> tuple[list[int], int]:
        ids = [d.pk for d in obj.datasets.all()]
        if not ids:
            return [], 0
        # Visibility follows the catalogue's own rule, asked once per set of datasets.
        seen = self.context.setdefault("_visible_dataset_ids", {})
        unknown = [pk for pk in ids if pk not in seen]
        if unknown:
            user = getattr(self.context.get("request"), "user", None)
            visible = set(ds.visible_to(user).filter(pk__in=unknown).values_list("pk", flat=True))
            seen.update({pk: pk in visible for pk in unknown})
        shown = sorted(pk for pk in ids if seen[pk])
        return shown, len(ids) - len(shown)

    def get_datasets(self, obj) -> list[int]:
        return self._covered(obj)[0]

    def get_datasets_not_visible(self, obj) -> int:
        return self._covered(obj)[1]

    def get_parties(self, obj) -> list[dict]:
        return [
            {"organisation": p.organisation.slug, "name": p.organisation.name, "role": p.role}
            for p in obj.parties.all()
        ]

    def get_document_url(self, obj) -> str:
        return (
            reverse("governance:agreement_document", args=[obj.pk, "document"])
            if obj.document
            else ""
        )

    def get_signed_document_url(self, obj) -> str:
        return (
            reverse("governance:agreement_document", args=[obj.pk, "signed"])
            if obj.signed_document
            else ""
        )


class AgreementInSerializer(serializers.Serializer):
    template = serializers.PrimaryKeyRelatedField(queryset=AgreementTemplate.objects.all())
    title = serializers.CharField(**limits.chars(limits.TEXT_SHORT))
    purposes = serializers.CharField(
        required=False, allow_blank=True, default="", **limits.chars(limits.TEXT_LONG)
    )
    effective_date = serializers.DateField(validators=[limits.check_date])
    expiry_date = serializers.DateField(validators=[limits.check_date])
    parties = PartySerializer(many=True, max_length=limits.LIST_SHORT)
    datasets = limits.LimitedManyRelatedField(
        child_relation=VisibleDatasetField(),
        max_length=limits.LIST_LONG,
        required=False,
        default=list,
        help_text="Published datasets of the parties. Covered datasets you cannot see stay covered.",
    )


class AgreementUpdateSerializer(AgreementInSerializer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False
        self.fields["datasets"].default = serializers.empty
        self.fields["purposes"].default = serializers.empty


class SignInSerializer(serializers.Serializer):
    organisation = serializers.SlugRelatedField(
        slug_field="slug", queryset=Organisation.objects.all(), help_text="The party you sign for."
    )
    full_name = serializers.CharField(allow_blank=True, **limits.chars(limits.TEXT_SHORT))
    confirm = serializers.BooleanField()


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", **limits.chars(limits.TEXT_MEDIUM)
    )


class AgreementViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Agreements of your organisations. Drafts are edited with PATCH; after sending, a change is a new version."""

    serializer_class = AgreementOutSerializer
    permission_classes = [IsAuthenticated]
    filterset_fields = ["status", "kind"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Agreement.objects.none()
        return permissions.restrict_agreements(
            Agreement.objects.select_related("template").prefetch_related(
                "parties__organisation",
                "signatures__party__organisation",
                "signatures__user",
                "datasets",
            ),
            self.request.user,
            "view",
        )

    def _out(self, agreement, code=status.HTTP_200_OK):
        fresh = self.get_queryset().get(pk=agreement.pk)
        return Response(
            AgreementOutSerializer(fresh, context=self.get_serializer_context()).data, status=code
        )

    @extend_schema(request=AgreementInSerializer, responses={201: AgreementOutSerializer})
    def create(self, request, *args, **kwargs):
        data = AgreementInSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        v = data.validated_data
        agreement = services.agreement_create(
            actor=request.user,
            template=v["template"],
            title=v["title"],
            purposes=v["purposes"],
            effective_date=v["effective_date"],
            expiry_date=v["expiry_date"],
            parties=[(p["organisation"], p["role"]) for p in v["parties"]],
            datasets=v["datasets"],
        )
        return self._out(agreement, status.HTTP_201_CREATED)

    @extend_schema(request=AgreementUpdateSerializer, responses=AgreementOutSerializer)
    def partial_update(self, request, *args, **kwargs):
        agreement = self.get_object()
        data = AgreementUpdateSerializer(
            data=request.data, partial=True, context=self.get_serializer_context()
        )
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        if "parties" in v:
            v["parties"] = [(p["organisation"], p["role"]) for p in v["parties"]]
        services.agreement_update(actor=request.user, agreement=agreement, **v)
        return self._out(agreement)

    def update(self, request, *args, **kwargs):
        return self.partial_update(request, *args, **kwargs)

    @extend_schema(request=None, responses=AgreementOutSerializer)
    @action(detail=True, methods=["post"])
    def send(self, request, pk=None):
        """Freeze the text, render the PDF and store its SHA-256; the signatories are told."""
        return self._out(services.agreement_send(actor=request.user, agreement=self.get_object()))

    @extend_schema(request=SignInSerializer, responses=AgreementOutSerializer)
    @action(detail=True, methods=["post"])
    def sign(self, request, pk=None):
        """Sign for one party by typing your full name and confirming."""
        agreement = self.get_object()
        data = SignInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        party = agreement.parties.filter(organisation=data.validated_data["organisation"]).first()
        if party is None:
            raise serializers.ValidationError(
                {"organisation": ["This organisation is not a party."]}
            )
        services.agreement_sign(
            actor=request.user,
            agreement=agreement,
            party=party,
            full_name=data.validated_data["full_name"],
            confirm=data.validated_data["confirm"],
            ip_address=request.META.get("REMOTE_ADDR"),
        )
        return self._out(agreement)

    @extend_schema(request=ReasonSerializer, responses=AgreementOutSerializer)
    @action(detail=True, methods=["post"])
    def terminate(self, request, pk=None):
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._out(
            services.agreement_terminate(
                actor=request.user,
                agreement=self.get_object(),
                reason=data.validated_data["reason"],
            )
        )

    @extend_schema(request=None, responses={201: AgreementOutSerializer})
    @action(detail=True, methods=["post"], url_path="new-version")
    def new_version(self, request, pk=None):
        """Start the next version as a draft (a sent agreement cannot change otherwise)."""
        new = services.agreement_new_version(actor=request.user, agreement=self.get_object())
        return self._out(new, status.HTTP_201_CREATED)


# --- Basket -----------------------------------------------------------------------------------
class BasketItemSerializer(serializers.ModelSerializer):
    dataset = DatasetRefSerializer(read_only=True)

    class Meta:
        model = BasketItem
        fields = ["dataset", "added_at"]


class BasketAddSerializer(serializers.Serializer):
    dataset = VisibleDatasetField(published_only=True)


class BasketViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Published datasets you collected for your next access request."""

    serializer_class = BasketItemSerializer
    permission_classes = [IsAuthenticated]
    lookup_field = "dataset"
    pagination_class = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return BasketItem.objects.none()
        return BasketItem.objects.filter(user=self.request.user).select_related(
            "dataset__current_version"
        )

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
            BasketItem.objects.filter(user=request.user, dataset_id=_int_or_zero(dataset))
            .select_related("dataset")
            .first()
        )
        if item is not None:
            services.basket_remove(user=request.user, dataset=item.dataset)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Access requests --------------------------------------------------------------------------
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
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Access requests you make, belong to the team of, or decide on as a custodian's DAC member."""

    serializer_class = AccessRequestOutSerializer
    permission_classes = [IsAuthenticated]
    filterset_fields = ["status"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AccessRequest.objects.none()
        return permissions.restrict_requests(
            AccessRequest.objects.select_related("applicant", "organisation").prefetch_related(
                "team_members",
                "items__dataset__current_version",
                "items__custodian",
                "items__terms",
                "decisions__custodian",
                "decisions__decided_by",
            ),
            self.request.user,
            "view",
        ).order_by("-created_at", "-pk")

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
        decision = get_object_or_404(Decision, request=access_request, custodian__slug=custodian)
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


class AttachmentDownloadViewSet(viewsets.GenericViewSet):
    """Download one attachment (only for people who may see its request)."""

    permission_classes = [IsAuthenticated]
    queryset = Attachment.objects.none()
    serializer_class = RequestAttachmentSerializer

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def retrieve(self, request, pk=None):
        visible = permissions.restrict_requests(AccessRequest.objects.all(), request.user, "view")
        attachment = get_for_user_or_404(
            Attachment.objects.filter(request__in=visible.values("pk")), pk=pk
        )
        return FileResponse(
            attachment.file.open("rb"),
            content_type=attachment.content_type,
            as_attachment=True,
            filename=attachment.original_name,
        )


# --- Entitlements -----------------------------------------------------------------------------
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


class EntitlementViewSet(viewsets.ReadOnlyModelViewSet):
    """Entitlements you hold, or on your custodian's datasets if you sit on its DAC."""

    serializer_class = EntitlementSerializer
    permission_classes = [IsAuthenticated]
    filterset_fields = ["status", "access_mode", "dataset"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Entitlement.objects.none()
        return permissions.restrict_entitlements(
            Entitlement.objects.select_related(
                "holder", "dataset__current_version", "request", "agreement", "terms"
            ),
            self.request.user,
            "view",
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


# --- Notifications ----------------------------------------------------------------------------
class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "event", "title", "body", "url", "created_at", "read_at"]


class NotificationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Your in-app notifications, newest first."""

    serializer_class = NotificationSerializer
    permission_classes = [IsAuthenticated]
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Notification.objects.none()
        return Notification.objects.filter(user=self.request.user).order_by("-created_at", "-pk")

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        notification = get_object_or_404(self.get_queryset(), pk=pk)
        if notification.read_at is None:
            notification.read_at = timezone.now()
            notification.save(update_fields=["read_at"])
        return Response(NotificationSerializer(notification).data)

    @extend_schema(
        responses=inline_serializer("UnreadCount", {"unread": serializers.IntegerField()})
    )
    @action(detail=False, methods=["get"], url_path="unread-count")
    def unread_count(self, request):
        return Response({"unread": selectors.unread_count(user=request.user)})


# --- Transparency (public) --------------------------------------------------------------------
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
