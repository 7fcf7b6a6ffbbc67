"""The catalogue API: search with facets, detail, steward writes and lifecycle actions.

Thin views: reads through ``selectors`` (restricted by ``permissions``), writes through ``services``.
Input and output serializers are separate.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated, IsAuthenticatedOrReadOnly
from rest_framework.response import Response

from accounts import limits
from accounts.api_mixins import RestrictedQuerysetMixin
from accounts.models import Organisation

from . import metadata, permissions, profiles, selectors, services
from .models import (
    AccessMode,
    AccessRights,
    CancerIndication,
    CdmVersion,
    CodingSystem,
    DataCategory,
    Dataset,
    DatasetType,
    DatasetVersion,
    DistributionKind,
    HealthCategory,
    LegalBasis,
    Legislation,
    UpdateFrequency,
)

# --- output -----------------------------------------------------------------------------------------


class PublisherSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()


class DatasetListItemSerializer(serializers.ModelSerializer):
    """One published dataset in the search results (its current version)."""

    id = serializers.IntegerField(
        source="dataset_id", help_text="The dataset's number, as POST /api/analyses/ takes it."
    )
    identifier = serializers.CharField(source="dataset.identifier")
    version = serializers.IntegerField(source="number")
    publisher = PublisherSerializer()
    country = serializers.CharField(source="country.code")
    indications = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    freshness = serializers.SerializerMethodField(
        help_text="fresh, overdue or unknown (database profile and agreed update interval)."
    )

    class Meta:
        model = DatasetVersion
        fields = [
            "id",
            "identifier",
            "title",
            "description",
            "publisher",
            "country",
            "cdm_version",
            "access_modes",
            "data_categories",
            "indications",
            "number_of_individuals",
            "version",
            "published_at",
            "url",
            "freshness",
        ]

    def get_freshness(self, obj) -> str:
        return profiles.freshness(obj.dataset).state

    def get_indications(self, obj) -> list[str]:
        return [i.code for i in obj.indications.all()]

    def get_url(self, obj) -> str:
        return self.context["request"].build_absolute_uri(
            reverse("catalogue-dataset-detail", args=[obj.dataset.identifier])
        )


class FacetValueSerializer(serializers.Serializer):
    value = serializers.CharField()
    label = serializers.CharField()
    count = serializers.IntegerField()
    selected = serializers.BooleanField()
    depth = serializers.IntegerField()


@extend_schema_serializer(many=False)  # one envelope (results + facets), not a list
class DatasetSearchSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = DatasetListItemSerializer(many=True)
    facets = serializers.DictField(child=FacetValueSerializer(many=True))


class VersionSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="number")

    class Meta:
        model = DatasetVersion
        fields = ["version", "published_at", "notes", "metadata"]


class FreshnessSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=[profiles.FRESH, profiles.OVERDUE, profiles.UNKNOWN])
    updated_on = serializers.DateField(allow_null=True, help_text="When the data was refreshed.")
    days_ago = serializers.IntegerField(allow_null=True)
    interval_days = serializers.IntegerField(allow_null=True, help_text="Agreed update interval.")
    due_on = serializers.DateField(allow_null=True)


class ProfileSerializer(serializers.Serializer):
    data = serializers.JSONField(help_text="The pooled database profile the nodes released.")
    computed_at = serializers.DateTimeField()
    source = serializers.CharField()


class DatasetDetailSerializer(serializers.Serializer):
    id = serializers.IntegerField(
        help_text="The dataset's number, as POST /api/analyses/ takes it."
    )
    identifier = serializers.CharField()
    publisher = PublisherSerializer()
    status = serializers.CharField(allow_null=True, help_text="Only for members and curators.")
    published = VersionSerializer(allow_null=True, help_text="The version readers see.")
    working_copy = serializers.JSONField(
        allow_null=True, help_text="Only for members of the publisher and curators."
    )
    completeness = serializers.IntegerField()
    validation_report = serializers.JSONField(allow_null=True)
    versions = serializers.ListField(child=serializers.IntegerField())
    profile = ProfileSerializer(allow_null=True, help_text="The attached database profile.")
    freshness = FreshnessSerializer()


# --- input --------------------------------------------------------------------------------------------


@extend_schema_field({"type": "string", "enum": AccessMode.values})
class AccessModeField(serializers.ChoiceField):
    """Inline enum: governance names the same choice set ``access_mode``; no component clash."""

    def __init__(self, **kwargs):
        super().__init__(choices=AccessMode.choices, **kwargs)


def _codes(choices, **kwargs):
    return serializers.ListField(
        child=serializers.ChoiceField(choices=choices),
        required=False,
        max_length=len(choices),
        **kwargs,
    )


class DistributionInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=DistributionKind.choices)
    title = serializers.CharField(**limits.chars(limits.TEXT_SHORT))
    description = serializers.CharField(
        required=False, allow_blank=True, default="", **limits.chars(limits.TEXT_MEDIUM)
    )
    access_url = serializers.URLField(
        required=False, allow_blank=True, default="", **limits.chars(limits.URL)
    )
    node_ref = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        default=None,
        **limits.chars(limits.IDENTIFIER),
    )


class DatasetInputSerializer(serializers.Serializer):
    publisher = serializers.SlugField(
        help_text="Slug of the publishing organisation (create only).",
        max_length=limits.IDENTIFIER,
    )
    title = serializers.CharField(**limits.chars(limits.TITLE))
    description = serializers.CharField(
        required=False, allow_blank=True, **limits.chars(limits.TEXT_LONG)
    )
    keywords = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=limits.LIST_SHORT
    )
    contact_name = serializers.CharField(
        required=False, allow_blank=True, **limits.chars(limits.TEXT_SHORT)
    )
    contact_email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    indications = serializers.ListField(
        child=serializers.SlugField(max_length=limits.IDENTIFIER),
        required=False,
        max_length=limits.LIST_SHORT,
        help_text="Indication codes, e.g. nsclc.",
    )
    data_categories = _codes(DataCategory.choices)
    population_coverage = serializers.CharField(
        required=False, allow_blank=True, **limits.chars(limits.TEXT_MEDIUM)
    )
    number_of_individuals = serializers.IntegerField(
        required=False, allow_null=True, **limits.between(0, limits.PERSONS_MAX)
    )
    number_of_records = serializers.IntegerField(
        required=False, allow_null=True, **limits.between(0, limits.RECORDS_MAX)
    )
    min_typical_age = serializers.IntegerField(
        required=False, allow_null=True, **limits.between(0, limits.AGE_MAX)
    )
    max_typical_age = serializers.IntegerField(
        required=False, allow_null=True, **limits.between(0, limits.AGE_MAX)
    )
    temporal_start = serializers.DateField(
        required=False, allow_null=True, validators=[limits.check_date]
    )
    temporal_end = serializers.DateField(
        required=False, allow_null=True, validators=[limits.check_date]
    )
    country = serializers.CharField(required=False, allow_blank=True, max_length=2)
    update_frequency = serializers.ChoiceField(
        choices=UpdateFrequency.choices, required=False, allow_blank=True
    )
    last_refreshed = serializers.DateField(
        required=False, allow_null=True, validators=[limits.check_date]
    )
    cdm_version = serializers.ChoiceField(
        choices=CdmVersion.choices, required=False, allow_blank=True
    )
    vocabulary_version = serializers.CharField(
        required=False, allow_blank=True, max_length=limits.IDENTIFIER
    )
    coding_systems = _codes(CodingSystem.choices)
    access_rights = serializers.ChoiceField(choices=AccessRights.choices, required=False)
    access_modes = serializers.ListField(
        child=AccessModeField(), required=False, max_length=len(AccessMode.choices)
    )
    legal_basis = serializers.ChoiceField(
        choices=LegalBasis.choices, required=False, allow_blank=True
    )
    purposes = serializers.CharField(
        required=False, allow_blank=True, **limits.chars(limits.TEXT_MEDIUM)
    )
    applicable_legislation = _codes(Legislation.choices)
    data_access_committee = serializers.SlugField(
        required=False,
        allow_null=True,
        max_length=limits.IDENTIFIER,
        help_text="Slug of the organisation whose DAC decides.",
    )
    terms_of_use_text = serializers.CharField(
        required=False, allow_blank=True, **limits.chars(limits.TEXT_LONG)
    )
    terms_min_cell_count = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="No released count below this many individuals (federated analyses).",
        **limits.between(1, 1000),
    )
    version_notes = serializers.CharField(
        required=False, allow_blank=True, **limits.chars(limits.TEXT_MEDIUM)
    )
    distributions = DistributionInputSerializer(
        many=True, required=False, max_length=limits.LIST_SHORT
    )
    dataset_type = serializers.ChoiceField(
        choices=DatasetType.choices, required=False, allow_blank=True
    )
    health_categories = _codes(HealthCategory.choices)
    provenance = serializers.CharField(
        required=False, allow_blank=True, **limits.chars(limits.TEXT_LONG)
    )
    hdab = serializers.SlugField(
        required=False,
        allow_null=True,
        max_length=limits.IDENTIFIER,
        help_text="Slug of the health data access body (empty: the data access committee, else "
        "the publisher).",
    )

    def validate_indications(self, codes: list[str]) -> list[CancerIndication]:
        found = list(CancerIndication.objects.filter(code__in=codes))
        missing = set(codes) - {i.code for i in found}
        if missing:
            raise serializers.ValidationError(f"Unknown indications: {', '.join(sorted(missing))}.")
        return found

    def validate_data_access_committee(self, slug):
        if not slug:
            return None
        org = Organisation.objects.filter(slug=slug).first()
        if org is None:
            raise serializers.ValidationError("No such organisation.")
        return org

    def validate_hdab(self, slug):
        if not slug:
            return None
        org = Organisation.objects.filter(slug=slug).first()
        if org is None:
            raise serializers.ValidationError("No such organisation.")
        return org

    def validate_country(self, value: str) -> str:
        from django_countries import countries

        value = (value or "").upper()
        if value and value not in dict(countries):
            raise serializers.ValidationError("Not an ISO 3166-1 alpha-2 country code.")
        return value

    def service_arguments(self) -> dict:
        data = dict(self.validated_data)
        data.pop("publisher", None)
        indications = data.pop("indications", None)
        distributions = data.pop("distributions", None)
        return {"data": data, "indications": indications, "distributions": distributions}


class DatasetCommentSerializer(serializers.Serializer):
    comment = serializers.CharField(**limits.chars(limits.TEXT_MEDIUM))


class DatasetPublishSerializer(serializers.Serializer):
    notes = serializers.CharField(
        required=False, allow_blank=True, default="", **limits.chars(limits.TEXT_MEDIUM)
    )


class DatasetRetireSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", **limits.chars(limits.TEXT_MEDIUM)
    )


# --- views ---------------------------------------------------------------------------------------------

SEARCH_PARAMETERS = [
    OpenApiParameter("q", str, description="Words in title, description or keywords."),
    OpenApiParameter("indication", str, many=True, description="Indication codes (hierarchical)."),
    OpenApiParameter("country", str, many=True, description="ISO 3166-1 alpha-2 codes."),
    OpenApiParameter("category", str, many=True, enum=DataCategory.values),
    OpenApiParameter("mode", str, many=True, enum=AccessMode.values),
    OpenApiParameter("cdm", str, many=True, enum=CdmVersion.values),
    OpenApiParameter("publisher", str, many=True, description="Organisation slugs."),
    OpenApiParameter(
        "freshness",
        str,
        enum=[key for key, _ in profiles.FRESHNESS_CHOICES],
        description="Data within (fresh) or beyond (overdue) its agreed update interval.",
    ),
    OpenApiParameter("sort", str, enum=list(selectors.SORTS)),
    OpenApiParameter("page", int),
    OpenApiParameter("per_page", int, enum=list(selectors.PAGE_SIZES)),
]


def _detail_payload(request, dataset: Dataset) -> dict:
    member = permissions.allows(dataset, request.user, "working_copy")
    published = dataset.current_version if dataset.is_public or member else None
    working = metadata.snapshot(selectors.dataset_with_relations(dataset)) if member else None
    scored = working if working is not None else (published.metadata if published else {})
    return {
        "id": dataset.pk,
        "identifier": dataset.identifier,
        "publisher": dataset.publisher,
        "status": dataset.status if member else None,
        "published": published,
        "working_copy": working,
        "completeness": metadata.completeness(scored).score,
        "validation_report": dataset.validation_report if member else None,
        "versions": list(dataset.versions.order_by("number").values_list("number", flat=True)),
        "profile": selectors.dataset_profile(dataset=dataset),
        "freshness": profiles.freshness(dataset),
    }


class DatasetViewSet(RestrictedQuerysetMixin, viewsets.ViewSet):
    lookup_field = "identifier"
    lookup_value_regex = "[^/]+"
    permission_classes = [IsAuthenticatedOrReadOnly]
    restrict = permissions.restrict
    queryset = Dataset.objects.select_related(
        "publisher", "data_access_committee", "current_version"
    )

    def _get(self, identifier: str, action_name: str = "view") -> Dataset:
        return self.restricted_object(self.queryset.all(), action_name, identifier=identifier)

    def _detail(self, dataset: Dataset, code: int = status.HTTP_200_OK) -> Response:
        dataset = self._get(dataset.identifier)
        return Response(
            DatasetDetailSerializer(_detail_payload(self.request, dataset)).data, status=code
        )

    @extend_schema(parameters=SEARCH_PARAMETERS, responses=DatasetSearchSerializer)
    def list(self, request):
        """Published datasets with the same search, facets and sorting as the catalogue page."""
        params = selectors.SearchParams.from_querydict(request.query_params)
        result = selectors.dataset_search(user=request.user, params=params)
        page = result.page

        def link(number):
            query = request.query_params.copy()
            query["page"] = number
            return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")

        payload = {
            "count": result.total,
            "page": page.number,
            "pages": page.paginator.num_pages,
            "next": link(page.next_page_number()) if page.has_next() else None,
            "previous": link(page.previous_page_number()) if page.has_previous() else None,
            "results": page.object_list,
            "facets": result.facets,
        }
        return Response(DatasetSearchSerializer(payload, context={"request": request}).data)

    @extend_schema(responses=DatasetDetailSerializer)
    def retrieve(self, request, identifier: str):
        return self._detail(self._get(identifier))

    @extend_schema(request=DatasetInputSerializer, responses={201: DatasetDetailSerializer})
    def create(self, request):
        """Register a dataset (a draft). Only data stewards of the publisher."""
        serializer = DatasetInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        publisher = Organisation.objects.filter(slug=serializer.validated_data["publisher"]).first()
        if publisher is None or not permissions.can_create_for(request.user, publisher):
            raise serializers.ValidationError(
                {"publisher": ["You are not a data steward of this organisation."]}
            )
        args = serializer.service_arguments()
        dataset = services.dataset_create(
            user=request.user,
            publisher=publisher,
            data=args["data"],
            indications=args["indications"] or [],
            distributions=args["distributions"] or [],
        )
        return self._detail(dataset, status.HTTP_201_CREATED)

    @extend_schema(request=DatasetInputSerializer, responses=DatasetDetailSerializer)
    def partial_update(self, request, identifier: str):
        """Edit the working copy; a published dataset gets a new draft."""
        dataset = self._get(identifier, "edit")
        serializer = DatasetInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.dataset_update(
            user=request.user, dataset=dataset, **serializer.service_arguments()
        )
        return self._detail(dataset)

    @extend_schema(responses=VersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request, identifier: str):
        dataset = self._get(identifier)
        return Response(VersionSerializer(dataset.versions.order_by("number"), many=True).data)

    @extend_schema(request=None, responses=DatasetDetailSerializer)
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated])
    def submit(self, request, identifier: str):
        """Validate with SHACL and submit for review (400 with the violations by field)."""
        dataset = self._get(identifier, "edit")
        services.dataset_submit(user=request.user, dataset=dataset)
        return self._detail(dataset)

    @extend_schema(request=DatasetCommentSerializer, responses=DatasetDetailSerializer)
    @action(
        detail=True,
        methods=["post"],
        url_path="request-changes",
        permission_classes=[IsAuthenticated],
    )
    def request_changes(self, request, identifier: str):
        dataset = self._get(identifier, "review")
        body = DatasetCommentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.dataset_request_changes(
            user=request.user, dataset=dataset, comment=body.validated_data["comment"]
        )
        return self._detail(dataset)

    @extend_schema(request=DatasetPublishSerializer, responses=DatasetDetailSerializer)
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated])
    def publish(self, request, identifier: str):
        dataset = self._get(identifier, "review")
        body = DatasetPublishSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.dataset_publish(
            user=request.user, dataset=dataset, notes=body.validated_data["notes"]
        )
        return self._detail(dataset)

    @extend_schema(request=DatasetRetireSerializer, responses=DatasetDetailSerializer)
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated])
    def retire(self, request, identifier: str):
        dataset = self._get(identifier, "review")
        body = DatasetRetireSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.dataset_retire(
            user=request.user, dataset=dataset, reason=body.validated_data["reason"]
        )
        return self._detail(dataset)

    @extend_schema(
        request=None,
        responses=DatasetDetailSerializer,
        parameters=[OpenApiParameter("number", OpenApiTypes.INT, OpenApiParameter.PATH)],
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"versions/(?P<number>\d+)/restore",
        permission_classes=[IsAuthenticated],
    )
    def restore(self, request, identifier: str, number: str):
        """Copy a published version into the working copy as a new draft."""
        dataset = self._get(identifier, "edit")
        version = dataset.versions.filter(number=int(number)).first()
        if version is None:
            raise Http404
        services.dataset_restore_version(user=request.user, dataset=dataset, version=version)
        return self._detail(dataset)

    def handle_exception(self, exc):
        # Lifecycle refusals by role answer 404, like reads: an id reveals nothing.
        if isinstance(exc, PermissionDenied):
            exc = Http404()
        return super().handle_exception(exc)
