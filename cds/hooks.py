"""HL7 CDS Hooks 2.0 service: discovery, one ``patient-view`` service per active pathway, feedback.

Mounted at ``/cds-services`` (see ``cds/hooks_urls.py`` and docs/cds-hooks.md). The endpoints are
JSON, CSRF-exempt (no session authentication) and authenticate the calling EHR with a personal API
token (``Authorization: Token …``). The spec's Bearer JWT from the CDS client is not supported yet
and is refused with a clear message.
"""

from __future__ import annotations

import urllib.request
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import authentication, exceptions, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import limits, parsers
from accounts.api_errors import error_response
from accounts.api_mixins import RestrictedQuerysetMixin
from accounts.authentication import ApiTokenAuthentication

from . import engine, fhir_mapping, permissions, selectors, services
from .api import ErrorSerializer
from .models import Evaluation, EvaluationSource, PathwayVersion

HOOK = "patient-view"
SUMMARY_LIMIT = 140  # the spec: "summary ... SHOULD be <140 characters"


class BearerJwtNotSupported(authentication.BaseAuthentication):
    """CDS Hooks clients may send a signed JWT as a Bearer token; we cannot verify those yet."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if header and header[0].lower() == b"bearer":
            raise exceptions.AuthenticationFailed(
                "Bearer JWT authentication of CDS clients is not supported yet; "
                "send a personal API token as 'Authorization: Token <token>'."
            )
        return None

    def authenticate_header(self, request) -> str:
        return "Token"


class BearerJwtScheme(OpenApiAuthenticationExtension):
    target_class = "cds.hooks.BearerJwtNotSupported"
    name = "cdsHooksJwt"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "CDS Hooks client JWT: not supported yet (answers 401). Use tokenAuth.",
        }


class HookView(RestrictedQuerysetMixin, APIView):
    authentication_classes = [BearerJwtNotSupported, ApiTokenAuthentication]
    permission_classes = [IsAuthenticated]
    restrict = permissions.restrict


# --- serializers (for validation and the OpenAPI schema) ----------------------------------------


class ServiceSerializer(serializers.Serializer):
    hook = serializers.CharField()
    id = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    prefetch = serializers.DictField(child=serializers.CharField())
    usageRequirements = serializers.CharField()  # field names follow the CDS Hooks spec


class DiscoverySerializer(serializers.Serializer):
    services = ServiceSerializer(many=True)


class HookRequestSerializer(serializers.Serializer):
    hook = serializers.ChoiceField(choices=[HOOK])
    hookInstance = serializers.CharField(max_length=limits.TEXT_SHORT)
    fhirServer = serializers.URLField(required=False, allow_null=True, max_length=limits.URL)
    fhirAuthorization = serializers.DictField(required=False, allow_null=True)
    context = serializers.DictField()
    prefetch = serializers.DictField(
        child=serializers.JSONField(allow_null=True), required=False, allow_null=True
    )

    def validate_context(self, value: dict) -> dict:
        if not value.get("patientId"):
            raise serializers.ValidationError("patient-view needs context.patientId.")
        return value


class CardSourceSerializer(serializers.Serializer):
    label = serializers.CharField()
    url = serializers.URLField()


class CardLinkSerializer(serializers.Serializer):
    label = serializers.CharField()
    url = serializers.URLField()
    type = serializers.ChoiceField(choices=["absolute", "smart"])


class CardSerializer(serializers.Serializer):
    uuid = serializers.UUIDField(help_text="Also the evaluation id; send it back in feedback.")
    summary = serializers.CharField(max_length=SUMMARY_LIMIT - 1)
    indicator = serializers.ChoiceField(choices=["info", "warning", "critical"])
    detail = serializers.CharField(help_text="GitHub-flavoured markdown with the trace.")
    source = CardSourceSerializer()
    links = CardLinkSerializer(many=True)


class CardsSerializer(serializers.Serializer):
    cards = CardSerializer(many=True)
    systemActions = serializers.ListField(child=serializers.DictField())


class OverrideReasonSerializer(serializers.Serializer):
    reason = serializers.DictField(required=False, help_text="A FHIR Coding.")
    userComment = serializers.CharField(
        required=False, allow_blank=True, **limits.chars(limits.TEXT_MEDIUM)
    )


class FeedbackItemSerializer(serializers.Serializer):
    card = serializers.UUIDField()
    outcome = serializers.ChoiceField(choices=["accepted", "overridden"])
    acceptedSuggestions = serializers.ListField(
        child=serializers.DictField(), required=False, max_length=limits.LIST_SHORT
    )
    overrideReason = OverrideReasonSerializer(required=False)
    outcomeTimestamp = serializers.DateTimeField()


class FeedbackRequestSerializer(serializers.Serializer):
    feedback = FeedbackItemSerializer(many=True, allow_empty=False, max_length=limits.LIST_SHORT)


class EmptySerializer(serializers.Serializer):
    pass


# --- discovery --------------------------------------------------------------------------------


def _service(version: PathwayVersion) -> dict[str, Any]:
    slug = version.pathway.slug
    return {
        "hook": HOOK,
        "id": slug,
        "title": f"{version.pathway.title} (v{version.version})",
        "description": (
            f"{version.document.get('description', '').strip()} Source: {version.citation}."
        ).strip(),
        "prefetch": fhir_mapping.prefetch_templates(slug),
        "usageRequirements": "Authenticate with 'Authorization: Token <personal API token>' of a "
        "portal user; Bearer JWT is not supported yet.",
    }


class DiscoveryView(HookView):
    @extend_schema(
        tags=["cds-hooks"],
        summary="CDS Hooks discovery",
        responses={200: DiscoverySerializer},
    )
    def get(self, request):
        versions = selectors.pathway_version_list_active(user=request.user)
        services_ = [_service(v) for v in versions if v.pathway.slug in fhir_mapping.PATHWAY_INPUTS]
        return Response({"services": services_})


# --- the service ------------------------------------------------------------------------------


def _clean_inputs(
    pathway: engine.Pathway, inputs: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Drop record values the engine rejects, so one bad value does not hide the whole advice."""
    dropped: list[str] = []
    inputs = dict(inputs)
    for _ in range(len(inputs) + 1):
        _, errors = engine.validate_inputs(pathway, inputs)
        bad = [name for name in errors if name in inputs]
        if not bad:
            break
        for name in bad:
            dropped.append(f"{name} = {inputs.pop(name)!r} not used: {' '.join(errors[name])}")
    return inputs, dropped


def _truncate(text: str, limit: int = SUMMARY_LIMIT - 1) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _cell(value: Any) -> str:
    text = "—" if value is None or value == "" else str(value)
    return " ".join(text.replace("|", "\\|").split())


def card_detail(evaluation: Evaluation, notes: list[str], dropped: list[str]) -> str:
    out = evaluation.output
    version = evaluation.pathway_version
    lines = [f"**{out['label']}**: {out['summary']}", ""]
    if out["recommendations"]:
        lines.append("**Options**")
        lines.append("")
        lines.extend(f"- **{r['label']}**. {r['notes']}" for r in out["recommendations"])
        lines.append("")
    if out["missing"]:
        lines.append(
            f"**Missing inputs that could change the result:** {', '.join(out['missing'])}"
        )
        lines.append("")
    if out["warnings"]:
        lines.append("**Warnings**")
        lines.append("")
        lines.extend(f"- {w['message']}" for w in out["warnings"])
        lines.append("")
    lines.append(f"**Why** (pathway {out['pathway']['id']} v{out['pathway']['version']})")
    lines.append("")
    lines.append("| Rule | Result | Values | Citation |")
    lines.append("|---|---|---|---|")
    for step in out["trace"]:
        if not step["reached"]:
            continue
        result = step["result"].replace("_", " ") + (" (decided)" if step["selected"] else "")
        values = ", ".join(f"{k} = {_cell(v)}" for k, v in step["values"].items())
        lines.append(
            f"| {_cell(step['description'])} | {result} | {_cell(values)} | {_cell(step['citation'])} |"
        )
    lines.append("")
    if notes or dropped:
        lines.append("**Data taken from the record**")
        lines.append("")
        lines.extend(f"- {_cell(note)}" for note in [*dropped, *notes])
        lines.append("")
    lines.append(f"Source: {version.citation}; {version.source.get('section', '')}".strip())
    lines.append("")
    lines.append("Decision support only: the treating clinician decides.")
    return "\n".join(lines)


def card_for(evaluation: Evaluation, request, notes: list[str], dropped: list[str]) -> dict:
    out = evaluation.output
    version = evaluation.pathway_version
    undetermined = version.document.get("undetermined_outcome")
    needs_attention = bool(out["warnings"] or out["missing"] or dropped) or (
        out["classification"] == undetermined
    )
    first_option = out["recommendations"][0]["label"] if out["recommendations"] else ""
    # The guideline is named in the card's source; the summary says the result and what to do.
    summary = f"{out['label']} ({version.pathway.slug})"
    if out["missing"]:
        summary += f"; missing: {', '.join(out['missing'])}"
    elif first_option:
        summary += f": {first_option}"
    source = version.source
    return {
        "uuid": str(evaluation.pk),
        "summary": _truncate(summary),
        "indicator": "warning" if needs_attention else "info",
        "detail": card_detail(evaluation, notes, dropped),
        "source": {
            "label": f"{source.get('guideline', version.pathway.title)} ({source.get('edition', '')})",
            "url": source.get("url", ""),
        },
        "links": [
            {
                "label": "Open this evaluation in the OPTIMA Portal",
                "url": request.build_absolute_uri(evaluation.get_absolute_url()),
                "type": "absolute",
            }
        ],
    }


# --- fetching what the client did not prefetch ------------------------------------------------

FHIR_TIMEOUT_SECONDS = 5
FHIR_MAX_BYTES = 5 * 1024 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a redirect could lead off the allowed server


def http_get_json(url: str, headers: dict[str, str]) -> Any:
    """GET a FHIR resource or bundle (one place, so tests can replace it)."""
    if not url.startswith(("https://", "http://")):
        raise ValueError("only http(s) FHIR servers")
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (scheme checked above)
    with opener.open(request, timeout=FHIR_TIMEOUT_SECONDS) as response:
        return parsers.loads(response.read(FHIR_MAX_BYTES))


def fetch_missing_prefetch(
    service_id: str, keys: list[str], body: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """Fetch missing prefetch keys from the client's ``fhirServer``: ``(resources, problem)``.

    Only servers listed in ``settings.CDS_HOOKS_FHIR_SERVERS`` are queried, so a caller cannot
    make the portal send requests to arbitrary hosts.
    """
    server = (body.get("fhirServer") or "").rstrip("/")
    if not server:
        return {}, "no fhirServer was given to fetch it from"
    allowed = {url.rstrip("/") for url in getattr(settings, "CDS_HOOKS_FHIR_SERVERS", ())}
    if server not in allowed:
        return {}, "the fhirServer is not one this portal may query (CDS_HOOKS_FHIR_SERVERS)"
    headers = {"Accept": "application/fhir+json"}
    token = (body.get("fhirAuthorization") or {}).get("access_token")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    templates = fhir_mapping.prefetch_templates(service_id)
    fetched: dict[str, Any] = {}
    for key in keys:
        query = templates[key]
        for name, value in body["context"].items():
            if isinstance(value, str | int):
                query = query.replace("{{context." + name + "}}", quote(str(value), safe=""))
        if "{{" in query:
            return {}, f"the prefetch template for {key} cannot be filled from the context"
        try:
            fetched[key] = http_get_json(f"{server}/{query}", headers)
        except (OSError, ValueError) as exc:
            return {}, f"fetching {key} from the fhirServer failed ({exc.__class__.__name__})"
    return fetched, ""


class ServiceView(HookView):
    @extend_schema(
        tags=["cds-hooks"],
        summary="Call a CDS service (hook patient-view)",
        request=HookRequestSerializer,
        responses={
            200: CardsSerializer,
            400: ErrorSerializer,
            404: ErrorSerializer,
            412: OpenApiResponse(
                ErrorSerializer, description="Prefetch data missing and not fetchable."
            ),
        },
    )
    def post(self, request, service_id: str):
        version = selectors.pathway_version_get_active(user=request.user, slug=service_id)
        if service_id not in fhir_mapping.PATHWAY_INPUTS:
            raise exceptions.NotFound("This pathway has no FHIR mapping.")
        body = HookRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        prefetch = body.validated_data.get("prefetch") or {}
        inputs, missing_prefetch, notes = fhir_mapping.prefetch_to_inputs(service_id, prefetch)
        if missing_prefetch:
            fetched, problem = fetch_missing_prefetch(
                service_id, missing_prefetch, body.validated_data
            )
            if problem:
                return error_response(
                    412,
                    "precondition_failed",
                    f"Prefetch data missing ({', '.join(missing_prefetch)}) and {problem}. "
                    "Send the prefetch listed in the discovery document.",
                    {"prefetch": [f"{key} is required." for key in missing_prefetch]},
                )
            prefetch = {**prefetch, **fetched}
            inputs, _, notes = fhir_mapping.prefetch_to_inputs(service_id, prefetch)
            notes.append(f"Fetched from the FHIR server: {', '.join(sorted(fetched))}.")
        inputs, dropped = _clean_inputs(version.engine_pathway(), inputs)
        evaluation = services.evaluation_create(
            user=request.user,
            pathway_version=version,
            inputs=inputs,
            source=EvaluationSource.CDS_HOOKS,
        )
        return Response(
            {"cards": [card_for(evaluation, request, notes, dropped)], "systemActions": []}
        )


class FeedbackView(HookView):
    @extend_schema(
        tags=["cds-hooks"],
        summary="Feedback on cards (accepted / overridden)",
        request=FeedbackRequestSerializer,
        responses={200: EmptySerializer, 400: ErrorSerializer, 404: ErrorSerializer},
    )
    def post(self, request, service_id: str):
        body = FeedbackRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        items = body.validated_data["feedback"]
        visible = self.restricted(Evaluation.objects.all()).filter(
            pathway_version__pathway__slug=service_id
        )
        found = {e.pk: e for e in visible.filter(pk__in=[item["card"] for item in items])}
        unknown = [str(item["card"]) for item in items if item["card"] not in found]
        if unknown:
            raise exceptions.NotFound(f"Unknown card: {', '.join(unknown)}.")
        try:
            with transaction.atomic():
                for item in items:
                    services.hook_feedback_record(
                        user=request.user,
                        evaluation=found[item["card"]],
                        outcome=item["outcome"],
                        outcome_timestamp=item["outcomeTimestamp"],
                        override_reason=item.get("overrideReason"),
                        accepted_suggestions=item.get("acceptedSuggestions"),
                    )
        except DjangoValidationError as exc:
            raise exceptions.ValidationError(exc.message_dict) from None
        return Response({})
