"""Agreement templates and agreements: drafting, sending, signing, terminating."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts import limits
from accounts.api_mixins import RestrictedQuerysetMixin
from accounts.models import Organisation

from .. import datasets as ds
from .. import permissions, services
from ..models import (
    Agreement,
    AgreementKind,
    AgreementTemplate,
    PartyRole,
)
from .common import ReasonSerializer, VisibleDatasetField


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
    RestrictedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Versioned agreement templates. POST publishes the next version of a kind (platform admins)."""

    restrict = permissions.restrict
    serializer_class = AgreementTemplateSerializer
    permission_classes = [IsAuthenticated]
    filterset_fields = ["kind"]
    queryset = AgreementTemplate.objects.all()

    def create(self, request, *args, **kwargs):
        data = AgreementTemplateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        template = services.agreement_template_publish(actor=request.user, **data.validated_data)
        return Response(AgreementTemplateSerializer(template).data, status=status.HTTP_201_CREATED)


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


class AgreementViewSet(
    RestrictedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Agreements of your organisations. Drafts are edited with PATCH; after sending, a change is a new version."""

    restrict = permissions.restrict
    serializer_class = AgreementOutSerializer
    permission_classes = [IsAuthenticated]
    filterset_fields = ["status", "kind"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_base_queryset(self):
        return Agreement.objects.select_related("template").prefetch_related(
            "parties__organisation",
            "signatures__party__organisation",
            "signatures__user",
            "datasets",
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
