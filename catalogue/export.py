"""The DCAT-AP export of the published catalogue: streamed Turtle, or hydra-paged pages.

Datasets are read in key-ordered batches, so memory stays flat however large the catalogue is
(ckanext-dcat pages its catalogue the same way with hydra:PagedCollection).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.utils import timezone
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, XSD

from . import profiles, rdf
from .models import AccessRights, DatasetProfile, DatasetVersion

BATCH = 500
MAX_PAGE_SIZE = 1000
FORMATS = {
    "ttl": ("turtle", "text/turtle; charset=utf-8"),
    "jsonld": ("json-ld", "application/ld+json"),
    "rdf": ("xml", "application/rdf+xml"),
}
ACCEPT = {
    "text/turtle": "ttl",
    "application/x-turtle": "ttl",
    "application/ld+json": "jsonld",
    "application/json": "jsonld",
    "application/rdf+xml": "rdf",
    "application/xml": "rdf",
}


def negotiate(accept: str) -> str:
    """The format for an Accept header (q-values honoured), Turtle by default."""
    return negotiate_rdf(accept) or "ttl"


def negotiate_rdf(accept: str, *, html: bool = False) -> str | None:
    """The RDF format an Accept header prefers, or None. With ``html``, None also when the
    client prefers text/html (a browser on the dataset page)."""
    choices = []
    for i, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if media in ACCEPT and q > 0:
            choices.append((-q, i, ACCEPT[media]))
        elif html and media in ("text/html", "application/xhtml+xml") and q > 0:
            choices.append((-q, i, None))
    return min(choices)[2] if choices else None


def _listed(access: str | None = None):
    """Listed versions; ``access`` (NON_PUBLIC or PUBLIC) keeps one HealthDCAT-AP level, so each
    level can be harvested and validated on its own."""
    qs = DatasetVersion.objects.filter(is_listed=True)
    if access == AccessRights.PUBLIC:
        qs = qs.filter(metadata__access_rights=AccessRights.PUBLIC)
    elif access:
        qs = qs.exclude(metadata__access_rights=AccessRights.PUBLIC)
    return qs


def catalog_level(access: str | None) -> str:
    """The access level the catalog record states (it is validated as a dataset too)."""
    if access in AccessRights.values:
        return access
    everything = _listed()
    public = everything.filter(metadata__access_rights=AccessRights.PUBLIC).count()
    return (
        AccessRights.PUBLIC if public and public == everything.count() else AccessRights.NON_PUBLIC
    )


def _batches(queryset, size: int | None = None) -> Iterator[list[DatasetVersion]]:
    size = size or BATCH
    last = 0
    while True:
        rows = list(
            queryset.filter(pk__gt=last)
            .order_by("pk")
            .only("pk", "dataset_id", "number", "notes", "published_at", "metadata")[:size]
        )
        if not rows:
            return
        yield rows
        last = rows[-1].pk


def _version_numbers(dataset_ids: list[int]) -> dict[int, list[int]]:
    numbers: dict[int, list[int]] = {}
    rows = DatasetVersion.objects.filter(dataset_id__in=dataset_ids).values_list(
        "dataset_id", "number"
    )
    for dataset_id, number in rows:
        numbers.setdefault(dataset_id, []).append(number)
    return numbers


def with_profile(data: dict, profile: dict | None) -> dict:
    """A snapshot plus what the attached database profile measured (HealthDCAT-AP's
    numberOfRecords, numberOfUniqueIndividuals, temporal coverage, population coverage and the
    CDM tables as hasVariables): measured numbers win, the steward's coverage text is kept."""
    if not profile:
        return data
    measured = profiles.dcat_values(profile)
    out = dict(data)
    for name in ("number_of_records", "number_of_individuals", "temporal_start", "temporal_end"):
        if measured[name] is not None:
            out[name] = (
                measured[name].isoformat() if name.startswith("temporal") else measured[name]
            )
    if not out.get("population_coverage") and measured["population_coverage"]:
        out["population_coverage"] = measured["population_coverage"]
    if measured["variables"]:
        out["profile_tables"] = measured["variables"]
    return out


def add_versions(g: Graph, versions: list[DatasetVersion], ctx: rdf.Context, catalog=None) -> None:
    numbers = _version_numbers([v.dataset_id for v in versions])
    measured = dict(
        DatasetProfile.objects.filter(dataset_id__in={v.dataset_id for v in versions}).values_list(
            "dataset_id", "data"
        )
    )
    for v in versions:
        ds = rdf.add_dataset(
            g,
            with_profile(v.metadata, measured.get(v.dataset_id)),
            ctx,
            version=v.number,
            version_notes=v.notes,
            version_numbers=sorted(numbers.get(v.dataset_id, [])),
            issued=timezone.localdate(v.published_at),
        )
        if catalog is not None:
            g.add((catalog, rdf.DCAT.dataset, ds))


def dataset_graph(version: DatasetVersion) -> Graph:
    g = rdf.new_graph()
    add_versions(g, [version], rdf.Context.load())
    return g


def working_copy_graph(data: dict) -> Graph:
    g = rdf.new_graph()
    rdf.add_dataset(g, data, rdf.Context.load())
    return g


@dataclass(frozen=True)
class PageInfo:
    page: int
    per_page: int
    total: int

    @property
    def last(self) -> int:
        return max(1, -(-self.total // self.per_page))


def page_graph(page: int, per_page: int, page_url, access: str | None = None) -> Graph:
    """One hydra page of the catalogue: the catalog, its datasets on this page, paging links."""
    per_page = max(1, min(per_page, MAX_PAGE_SIZE))
    qs = _listed(access)
    info = PageInfo(page, per_page, qs.count())
    ctx = rdf.Context.load()
    g = rdf.new_graph()
    catalog = rdf.add_catalog(g, ctx, access_rights=catalog_level(access))
    start = (page - 1) * per_page
    versions = list(
        qs.order_by("pk").only("pk", "dataset_id", "number", "notes", "published_at", "metadata")[
            start : start + per_page
        ]
    )
    add_versions(g, versions, ctx, catalog)
    here = URIRef(page_url(page))
    g.add((here, RDF.type, rdf.HYDRA.PagedCollection))
    g.add((here, rdf.HYDRA.totalItems, Literal(info.total, datatype=XSD.integer)))
    g.add((here, rdf.HYDRA.itemsPerPage, Literal(per_page, datatype=XSD.integer)))
    g.add((here, rdf.HYDRA.firstPage, URIRef(page_url(1))))
    g.add((here, rdf.HYDRA.lastPage, URIRef(page_url(info.last))))
    if page > 1:
        g.add((here, rdf.HYDRA.previousPage, URIRef(page_url(page - 1))))
    if page < info.last:
        g.add((here, rdf.HYDRA.nextPage, URIRef(page_url(page + 1))))
    return g


def _turtle_body(g: Graph) -> str:
    """Triples as N-Triples lines: valid Turtle, and an order of magnitude faster to write than
    rdflib's pretty Turtle (which looks up a prefix for every new URI)."""
    return g.serialize(format="nt11")


def stream_turtle(access: str | None = None) -> Iterator[str]:
    """The whole catalogue as Turtle, batch by batch: prefixes once, then one block per batch.

    The catalog head is written readably; dataset batches as N-Triples lines (see _turtle_body).
    """
    ctx = rdf.Context.load()
    head = rdf.new_graph()
    catalog = rdf.add_catalog(head, ctx, access_rights=catalog_level(access))
    prefixes = "".join(f"@prefix {p}: <{ns}> .\n" for p, ns in head.namespaces() if p)
    yield prefixes + "\n"
    head_text = head.serialize(format="turtle")
    yield "\n".join(line for line in head_text.splitlines() if not line.startswith("@prefix"))
    yield "\n"
    for versions in _batches(_listed(access)):
        g = rdf.new_graph()
        add_versions(g, versions, ctx, catalog)
        yield _turtle_body(g)


def full_graph(access: str | None = None) -> Graph:
    """The whole catalogue in memory: for tests and the import round trip on small catalogues."""
    ctx = rdf.Context.load()
    g = rdf.new_graph()
    catalog = rdf.add_catalog(g, ctx, access_rights=catalog_level(access))
    for versions in _batches(_listed(access)):
        add_versions(g, versions, ctx, catalog)
    return g
