"""HealthDCAT-AP endpoints: the catalogue and one dataset in Turtle, JSON-LD or RDF/XML, and the
document of the portal's own ``optima:`` terms."""

from __future__ import annotations

from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils.cache import patch_vary_headers

from . import export, metadata, permissions, rdf, selectors


def _page_params(request) -> tuple[int | None, int]:
    try:
        page = int(request.GET["page"]) if "page" in request.GET else None
        per_page = int(request.GET.get("per_page", export.MAX_PAGE_SIZE))
    except ValueError as exc:
        raise Http404("Bad page number.") from exc
    if page is not None and page < 1:
        raise Http404("Bad page number.")
    return page, max(1, min(per_page, export.MAX_PAGE_SIZE))


ACCESS_PARAM = {"NON_PUBLIC": "NON_PUBLIC", "NON-PUBLIC": "NON_PUBLIC", "PUBLIC": "PUBLIC"}


def _access_param(request) -> str | None:
    """``?access=non-public|public``: one HealthDCAT-AP level (what a harvester validates)."""
    value = request.GET.get("access", "").strip().upper()
    if not value:
        return None
    if value not in ACCESS_PARAM:
        raise Http404("Unknown access level.")
    return ACCESS_PARAM[value]


def serialize(graph, fmt: str) -> bytes:
    """Turtle, RDF/XML, or JSON-LD with an inline context (nothing to fetch)."""
    rdflib_format, _ = export.FORMATS[fmt]
    if fmt == "jsonld":
        context = {prefix: str(ns) for prefix, ns in graph.namespaces() if prefix}
        return graph.serialize(format="json-ld", context=context, auto_compact=True).encode()
    return graph.serialize(format=rdflib_format, encoding="utf-8")


def _render(request, fmt: str) -> HttpResponse:
    if fmt not in export.FORMATS:
        raise Http404("Unknown format.")
    _, content_type = export.FORMATS[fmt]
    page, per_page = _page_params(request)
    access = _access_param(request)
    if fmt == "ttl" and page is None:
        response = StreamingHttpResponse(export.stream_turtle(access), content_type=content_type)
        response["Content-Disposition"] = 'inline; filename="optima-catalogue.ttl"'
        return response
    base = request.build_absolute_uri(reverse("catalogue:dcat_format", args=[fmt]))

    level = f"&access={access}" if access else ""

    def page_url(n: int) -> str:
        return f"{base}?page={n}&per_page={per_page}{level}"

    graph = export.page_graph(page or 1, per_page, page_url, access)
    return HttpResponse(serialize(graph, fmt), content_type=content_type)


def catalogue_export(request, fmt: str):
    return _render(request, fmt)


def catalogue_negotiated(request):
    response = _render(request, export.negotiate(request.headers.get("Accept", "")))
    patch_vary_headers(response, ["Accept"])
    return response


def dataset_graph_for(request, identifier: str):
    """The published version for everyone who may see the dataset; the working copy for its
    stewards and curators before the first publication; 404 otherwise."""
    dataset = selectors.dataset_get_for_user(user=request.user, identifier=identifier)
    if dataset.is_public:
        return export.dataset_graph(dataset.current_version)
    if permissions.allows(dataset, request.user, "working_copy"):
        return export.working_copy_graph(
            metadata.snapshot(selectors.dataset_with_relations(dataset))
        )
    raise Http404


def dataset_response(request, identifier: str, fmt: str) -> HttpResponse:
    if fmt not in export.FORMATS:
        raise Http404("Unknown format.")
    graph = dataset_graph_for(request, identifier)
    response = HttpResponse(serialize(graph, fmt), content_type=export.FORMATS[fmt][1])
    response["Content-Disposition"] = f'inline; filename="{identifier}.{fmt}"'
    return response


def dataset_rdf(request, identifier: str, fmt: str):
    return dataset_response(request, identifier, fmt)


def dataset_ttl(request, identifier: str):
    return dataset_response(request, identifier, "ttl")


def namespace(request):
    """The document of the portal's own terms (``optima:``), in Turtle, JSON-LD or RDF/XML."""
    fmt = export.negotiate(request.headers.get("Accept", ""))
    fmt = request.GET.get("format", fmt)
    if fmt not in export.FORMATS:
        raise Http404("Unknown format.")
    response = HttpResponse(
        serialize(rdf.namespace_graph(), fmt), content_type=export.FORMATS[fmt][1]
    )
    patch_vary_headers(response, ["Accept"])
    return response
