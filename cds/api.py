"""The CDS REST API: active pathways, evaluate, stored evaluations."""

from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import limits
from accounts.api_mixins import RestrictedQuerysetMixin

from . import permissions, selectors, services
from .models import Evaluation, EvaluationSource, PathwayVersion

# --- output -----------------------------------------------------------------------------------


class SourceSerializer(serializers.Serializer):
    organisation = serializers.CharField()
    guideline = serializers.CharField()
    edition = serializers.CharField()
    year = serializers.IntegerField()
    url = serializers.URLField()
    section = serializers.CharField()
    references = serializers.ListField(child=serializers.CharField(), required=False)


class ClassificationSerializer(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField()
    summary = serializers.CharField()


class PathwaySerializer(serializers.ModelSerializer):
    """An active pathway edition with the JSON schema of its inputs."""

    id = serializers.CharField(source="pathway.slug")
    title = serializers.CharField(source="pathway.title")
    disease = serializers.CharField(source="pathway.disease")
    description = serializers.SerializerMethodField()
    source = serializers.SerializerMethodField()
    classifications = serializers.SerializerMethodField()
    input_schema = serializers.SerializerMethodField(
        help_text="JSON schema (draft 2020-12) of the inputs, with x-unit, x-value-labels, "
        "x-not-assessed-values and x-aliases extensions."
    )

    status = serializers.CharField(help_text="Always active here: draft, active or retired.")

    class Meta:
        model = PathwayVersion
        fields = [
            "id",
            "title",
            "disease",
            "version",
            "checksum",
            "status",
            "description",
            "source",
            "classifications",
            "input_schema",
            "activated_at",
        ]

    def get_description(self, obj: PathwayVersion) -> str:
        return obj.document.get("description", "")

    @extend_schema_field(SourceSerializer)
    def get_source(self, obj: PathwayVersion) -> dict:
        return obj.source

    @extend_schema_field(ClassificationSerializer(many=True))
    def get_classifications(self, obj: PathwayVersion) -> list[dict]:
        return [
            {"code": code, "label": outcome["label"], "summary": outcome["summary"]}
            for code, outcome in obj.document["outcomes"].items()
        ]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_input_schema(self, obj: PathwayVersion) -> dict:
        return obj.input_schema()


class RecommendationSerializer(serializers.Serializer):
    id = serializers.CharField()
    label = serializers.CharField()
    notes = serializers.CharField()
    patient_explanation = serializers.CharField()


class TraceSerializer(serializers.Serializer):
    rule_id = serializers.CharField()
    description = serializers.CharField()
    outcome = serializers.CharField(help_text="The classification this rule gives when it matches.")
    matched = serializers.BooleanField(
        allow_null=True, help_text="true, false, or null when a missing input could change it."
    )
    result = serializers.ChoiceField(choices=["matched", "not_matched", "undetermined"])
    reached = serializers.BooleanField(
        help_text="False for rules after the deciding one (evaluated for completeness only)."
    )
    selected = serializers.BooleanField(help_text="This rule decided the classification.")
    values = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        help_text="The input values that decided the rule.",
    )
    citation = serializers.CharField()


class WarningSerializer(serializers.Serializer):
    id = serializers.CharField()
    message = serializers.CharField()
    citation = serializers.CharField(allow_blank=True)


class EvaluationResultSerializer(serializers.Serializer):
    pathway = serializers.CharField(help_text="Pathway id, e.g. prostate-eau.")
    pathway_version = serializers.CharField()
    classification = serializers.CharField()
    label = serializers.CharField()
    recommendations = RecommendationSerializer(many=True)
    trace = TraceSerializer(many=True)
    missing = serializers.ListField(
        child=serializers.CharField(),
        help_text="Inputs that were missing and could change the result.",
    )
    warnings = WarningSerializer(many=True)
    evaluation_id = serializers.UUIDField()


class EvaluationDetailSerializer(EvaluationResultSerializer):
    pathway_checksum = serializers.CharField()
    summary = serializers.CharField()
    patient_explanation = serializers.CharField()
    possible_classifications = serializers.ListField(child=serializers.CharField())
    inputs = serializers.DictField(child=serializers.JSONField(allow_null=True))
    source = serializers.ChoiceField(choices=EvaluationSource.choices)
    created_at = serializers.DateTimeField()
    opinion = serializers.CharField(allow_blank=True)
    portal_url = serializers.URLField()


def evaluation_detail_data(evaluation: Evaluation, request) -> dict:
    output = evaluation.output
    return {
        **evaluation.api_result(),
        "pathway_checksum": output["pathway"]["checksum"],
        "summary": output["summary"],
        "patient_explanation": output["patient_explanation"],
        "possible_classifications": output["possible_classifications"],
        "inputs": evaluation.inputs,
        "source": evaluation.source,
        "created_at": evaluation.created_at,
        "opinion": evaluation.opinion,
        "portal_url": request.build_absolute_uri(evaluation.get_absolute_url()),
    }


class ErrorBodySerializer(serializers.Serializer):
    status = serializers.IntegerField()
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Field messages; input errors are keyed inputs.<name>, e.g. inputs.psa.",
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


# --- input ------------------------------------------------------------------------------------


class EvaluateRequestSerializer(serializers.Serializer):
    pathway = serializers.CharField(
        help_text="Id of an active pathway, e.g. prostate-eau.", max_length=limits.IDENTIFIER
    )
    # The values are checked against the pathway's input_schema (names, types, minimum and
    # maximum of each number), which answers 400 with a message per input.
    inputs = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        help_text="Input name → value, as described by the pathway's input_schema (numbers "
        'within its minimum and maximum). A number may also be given as {"value": 4.2, "unit": '
        '"ug/L"} in an accepted unit.',
    )


# --- views ------------------------------------------------------------------------------------


class PathwayListApi(RestrictedQuerysetMixin, generics.ListAPIView):
    """Active pathways, each with its version, guideline source and input schema."""

    serializer_class = PathwaySerializer
    permission_classes = [IsAuthenticated]
    pagination_class = None
    restrict = permissions.restrict
    queryset = PathwayVersion.objects.none()

    def get_base_queryset(self):
        return selectors.pathway_version_list_active(user=self.request.user)


class PathwayDetailApi(RestrictedQuerysetMixin, generics.RetrieveAPIView):
    """One active pathway by id."""

    serializer_class = PathwaySerializer
    permission_classes = [IsAuthenticated]
    lookup_field = "pathway__slug"
    lookup_url_kwarg = "pathway_id"
    restrict = permissions.restrict
    queryset = PathwayVersion.objects.none()

    def get_base_queryset(self):
        return selectors.pathway_version_list_active(user=self.request.user)


class EvaluateApi(RestrictedQuerysetMixin, APIView):
    permission_classes = [IsAuthenticated]
    restrict = permissions.restrict

    @extend_schema(
        request=EvaluateRequestSerializer,
        responses={
            201: EvaluationResultSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Unknown pathway or invalid inputs."),
        },
        summary="Evaluate a pathway for one patient",
        description="Runs the active version of the pathway, stores the evaluation (audited as "
        "cds.evaluated) and answers with the classification, options, trace, missing inputs and "
        "warnings.",
    )
    def post(self, request):
        data = EvaluateRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        slug = data.validated_data["pathway"]
        version = (
            self.restricted(selectors.pathway_version_list_active(user=request.user))
            .filter(pathway__slug=slug)
            .first()
        )
        if version is None:
            raise ValidationError({"pathway": [f"No active pathway with id '{slug}'."]})
        try:
            evaluation = services.evaluation_create(
                user=request.user,
                pathway_version=version,
                inputs=data.validated_data["inputs"],
                source=EvaluationSource.API,
            )
        except DjangoValidationError as exc:
            raise ValidationError(
                {
                    (name if name == NON_FIELD_ERRORS else f"inputs.{name}"): messages
                    for name, messages in exc.message_dict.items()
                }
            ) from None
        return Response(evaluation.api_result(), status=status.HTTP_201_CREATED)


class EvaluationDetailApi(RestrictedQuerysetMixin, APIView):
    permission_classes = [IsAuthenticated]
    restrict = permissions.restrict

    @extend_schema(responses={200: EvaluationDetailSerializer, 404: ErrorSerializer})
    def get(self, request, evaluation_id):
        evaluation = selectors.evaluation_get_for_user(user=request.user, pk=evaluation_id)
        return Response(
            EvaluationDetailSerializer(evaluation_detail_data(evaluation, request)).data
        )
