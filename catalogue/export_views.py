"""DCAT-AP endpoints: the catalogue in Turtle, JSON-LD or RDF/XML, and one dataset in Turtle."""

from __future__ import annotations

from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils.cache import patch_vary_headers

from . import export, metadata, permissions, selectors


def _page_params(request) -> tuple[int | None, int]:
    try:
        page = int(request.GET["page"]) if "page" in request.GET else None
        per_page = int(request.GET.get("per_page", export.MAX_PAGE_SIZE))
    except ValueError as exc:
        raise Http404("Bad page number.") from exc
    if page is not None and page < 1:
        raise Http404("Bad page number.")
    return page, max(1, min(per_page, export.MAX_PAGE_SIZE))


def _render(request, fmt: str) -> HttpResponse:
    if fmt not in export.FORMATS:
        raise Http404("Unknown format.")
    rdflib_format, content_type = export.FORMATS[fmt]
    page, per_page = _page_params(request)
    if fmt == "ttl" and page is None:
        response = StreamingHttpResponse(export.stream_turtle(), content_type=content_type)
        response["Content-Disposition"] = 'inline; filename="optima-catalogue.ttl"'
        return response
    base = request.build_absolute_uri(reverse("catalogue:dcat_format", args=[fmt]))

    def page_url(n: int) -> str:
        return f"{base}?page={n}&per_page={per_page}"

    graph = export.page_graph(page or 1, per_page, page_url)
    return HttpResponse(graph.serialize(format=rdflib_format), content_type=content_type)


def catalogue_export(request, fmt: str):
    return _render(request, fmt)


def catalogue_negotiated(request):
    response = _render(request, export.negotiate(request.headers.get("Accept", "")))
    patch_vary_headers(response, ["Accept"])
    return response


def dataset_ttl(request, identifier: str):
    dataset = selectors.dataset_get_for_user(user=request.user, identifier=identifier)
    if dataset.is_public:
        graph = export.dataset_graph(dataset.current_version)
    elif permissions.can_see_working_copy(request.user, dataset):
        graph = export.working_copy_graph(
            metadata.snapshot(selectors.dataset_with_relations(dataset))
        )
    else:
        raise Http404
    return HttpResponse(graph.serialize(format="turtle"), content_type="text/turtle; charset=utf-8")
