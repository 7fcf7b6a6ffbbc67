"""Reads of the catalogue: faceted search over published versions, and datasets for a user.

Search runs over ``SearchEntry`` rows, one per listed version (the published face of each dataset). Facets are
disjunctive: the counts of one facet are computed with every *other* facet applied, so choosing a
value never hides its siblings. The number of queries does not depend on the number of datasets or
on the page size.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Count, F, Prefetch, Q, QuerySet, Value, prefetch_related_objects
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Organisation

from . import permissions, profiles, search_index
from .models import (
    AccessMode,
    CancerIndication,
    CdmVersion,
    DataCategory,
    Dataset,
    DatasetProfile,
    DatasetVersion,
    SearchEntry,
    Status,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

SORTS = {
    "relevance": "Relevance",
    "recent": "Recently updated",
    "size": "Size (individuals)",
    "title": "Title",
}
PAGE_SIZES = (10, 20, 50, 100)
FACETS = ("indication", "country", "category", "mode", "cdm", "publisher")
MAX_TERMS = 8


@dataclass
class SearchParams:
    q: str = ""
    indication: list[str] = field(default_factory=list)
    country: list[str] = field(default_factory=list)
    category: list[str] = field(default_factory=list)
    mode: list[str] = field(default_factory=list)
    cdm: list[str] = field(default_factory=list)
    publisher: list[str] = field(default_factory=list)
    freshness: str = ""  # "", profiles.FRESH or profiles.OVERDUE
    sort: str = ""
    page: int = 1
    per_page: int = 20

    @classmethod
    def from_querydict(cls, data) -> SearchParams:
        def ints(name: str, default: int) -> int:
            try:
                return max(1, int(data.get(name, default)))
            except (TypeError, ValueError):
                return default

        per_page = ints("per_page", 20)
        sort = data.get("sort", "")
        freshness = data.get("freshness", "")
        return cls(
            q=(data.get("q") or "").strip()[:200],
            indication=[v for v in data.getlist("indication") if v][:20],
            country=[v.upper() for v in data.getlist("country") if v][:20],
            category=[v for v in data.getlist("category") if v in DataCategory.values],
            mode=[v for v in data.getlist("mode") if v in AccessMode.values],
            cdm=[v for v in data.getlist("cdm") if v][:10],
            publisher=[v for v in data.getlist("publisher") if v][:20],
            freshness=freshness if freshness in dict(profiles.FRESHNESS_CHOICES) else "",
            sort=sort if sort in SORTS else "",
            page=ints("page", 1),
            per_page=per_page if per_page in PAGE_SIZES else 20,
        )

    @property
    def terms(self) -> list[str]:
        return [t.lower() for t in re.findall(r"\w+", self.q)][:MAX_TERMS]

    @property
    def effective_sort(self) -> str:
        return self.sort or ("relevance" if self.terms else "recent")

    def selected(self, facet: str) -> list[str]:
        return getattr(self, facet)


@dataclass
class FacetValue:
    value: str
    label: str
    count: int
    selected: bool
    depth: int = 0


@dataclass
class SearchResult:
    page: Page
    facets: dict[str, list[FacetValue]]
    params: SearchParams
    total: int


def _indication_tree() -> list[tuple[CancerIndication, int, set[int]]]:
    """Every indication in tree order with its depth and the ids of itself and its descendants."""
    nodes = list(CancerIndication.objects.all())
    children: dict[int | None, list[CancerIndication]] = {}
    for n in nodes:
        children.setdefault(n.parent_id, []).append(n)
    ordered: list[tuple[CancerIndication, int, set[int]]] = []

    def walk(node: CancerIndication, depth: int) -> set[int]:
        slot = len(ordered)
        ordered.append((node, depth, set()))
        ids = {node.pk}
        for child in children.get(node.pk, []):
            ids |= walk(child, depth + 1)
        ordered[slot] = (node, depth, ids)
        return ids

    for root in children.get(None, []):
        walk(root, 0)
    return ordered


def _has_bits(qs: QuerySet, field_name: str, mask: int, alias: str) -> QuerySet:
    return qs.alias(**{alias: F(field_name).bitand(mask)}).filter(**{f"{alias}__gt": 0})


def _tsquery(terms: list[str]):
    from django.contrib.postgres.search import SearchQuery

    # Prefix match on each term, all terms required: the same rule as the SQLite fallback.
    return SearchQuery(" & ".join(f"{t}:*" for t in terms), search_type="raw", config="simple")


def _word_prefix(term: str) -> str:
    return rf"(^|\W){re.escape(term)}"


def _text_filter(qs: QuerySet, terms: list[str]) -> QuerySet:
    if not terms:
        return qs
    if connection.vendor == "postgresql":
        return qs.filter(search_vector=_tsquery(terms))
    for term in terms:
        pattern = _word_prefix(term)
        qs = qs.filter(
            Q(version__title__iregex=pattern)
            | Q(version__keywords_text__iregex=pattern)
            | Q(version__description__iregex=pattern)
        )
    return qs


def _relevance(qs: QuerySet, terms: list[str]) -> QuerySet:
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchRank

        rank = SearchRank(F("search_vector"), _tsquery(terms))
        return qs.annotate(rank=rank).order_by("-rank", "title", "pk")
    from django.db.models import Case, IntegerField, When

    score = Value(0)
    for term in terms:
        pattern = _word_prefix(term)
        for field_name in ("version__title", "version__keywords_text"):
            score = score + Case(
                When(**{f"{field_name}__iregex": pattern}, then=Value(2)),
                default=Value(0),
                output_field=IntegerField(),
            )
    return qs.annotate(rank=score).order_by("-rank", "title", "pk")


class _Filters:
    """The chosen facet filters: in SQL for the result page (``apply``), and as tests of one facet
    group for the counts (``group_tests``); the two must agree (tests/catalogue/test_views.py)."""

    def __init__(self, params: SearchParams, tree) -> None:
        self.params = params
        by_code = {node.code: node.pk for node, _, _ in tree}
        # Entries hold each indication's ancestors too, so a node's own id is enough.
        self.indication_ids = {by_code[c] for c in params.indication if c in by_code}
        self.mode_mask = search_index.bits(params.mode, search_index.MODE_BITS)
        self.category_mask = search_index.bits(params.category, search_index.CATEGORY_BITS)

    def apply(self, qs: QuerySet) -> QuerySet:
        p = self.params
        if p.indication:
            through = SearchEntry.indications.through.objects.filter(
                cancerindication_id__in=self.indication_ids or {-1}
            )
            qs = qs.filter(pk__in=through.values("searchentry_id"))
        if p.country:
            qs = qs.filter(country__in=p.country)
        if p.category:
            qs = _has_bits(qs, "category_bits", self.category_mask, "_category_hit")
        if p.mode:
            qs = _has_bits(qs, "access_mode_bits", self.mode_mask, "_mode_hit")
        if p.cdm:
            qs = qs.filter(cdm_version__in=p.cdm)
        if p.publisher:
            qs = qs.filter(publisher__slug__in=p.publisher)
        return qs

    def group_tests(self, publisher_ids: set[int]) -> dict[str, Callable[[_Group], bool]]:
        """The same filters as ``apply``, as tests of one facet group (only the chosen facets)."""
        p = self.params
        tests: dict[str, Callable[[_Group], bool]] = {}
        if p.indication:
            tests["indication"] = lambda g: not self.indication_ids.isdisjoint(g.indications)
        if p.country:
            countries = set(p.country)
            tests["country"] = lambda g: g.country in countries
        if p.category:
            tests["category"] = lambda g: bool(g.category_bits & self.category_mask)
        if p.mode:
            tests["mode"] = lambda g: bool(g.access_mode_bits & self.mode_mask)
        if p.cdm:
            cdms = set(p.cdm)
            tests["cdm"] = lambda g: g.cdm_version in cdms
        if p.publisher:
            tests["publisher"] = lambda g: g.publisher_id in publisher_ids
        return tests


def _freshness_filter(qs: QuerySet, freshness: str) -> QuerySet:
    """Fresh: a profile whose data is within the agreed update interval (or no interval agreed);
    overdue: an interval agreed and no profile, or one older than the interval."""
    if not freshness:
        return qs
    today = timezone.localdate()
    profile = "version__dataset__profile"
    interval = "version__dataset__update_interval_days"
    if freshness == profiles.FRESH:
        return qs.filter(**{f"{profile}__data_updated_on__isnull": False}).filter(
            Q(**{f"{interval}__isnull": True}) | Q(**{f"{profile}__refresh_due_on__gte": today})
        )
    return qs.filter(**{f"{interval}__isnull": False}).filter(
        Q(**{f"{profile}__isnull": True}) | Q(**{f"{profile}__refresh_due_on__lt": today})
    )


def listed_entries(user: User | AnonymousUser) -> QuerySet[SearchEntry]:
    """The published face of the catalogue (restricted through the app's choke point)."""
    return permissions.restrict(SearchEntry.objects.all(), user)


def dataset_search(*, user: User | AnonymousUser, params: SearchParams) -> SearchResult:
    tree = _indication_tree()
    filters = _Filters(params, tree)
    base = _freshness_filter(_text_filter(listed_entries(user), params.terms), params.freshness)
    facets, total = _facet_counts(base, filters, params, tree)

    qs = filters.apply(base)
    sort = params.effective_sort
    if sort == "relevance" and params.terms:
        qs = _relevance(qs, params.terms)
    elif sort == "size":
        qs = qs.order_by(Coalesce("number_of_individuals", Value(0)).desc(), "title", "pk")
    elif sort == "title":
        qs = qs.order_by("title", "pk")
    else:
        qs = qs.order_by("-published_at", "-pk")
    paginator = Paginator(qs.only("pk"), params.per_page)
    paginator.count = total  # known from the facet groups: no COUNT query
    page = paginator.get_page(params.page)
    # The page's versions, with what the result list shows (a constant number of queries).
    ids = [e.pk for e in page.object_list]
    versions = DatasetVersion.objects.in_bulk(ids) if ids else {}
    page.object_list = [versions[i] for i in ids if i in versions]
    prefetch_related_objects(
        page.object_list,
        "publisher",
        # The dataset with its profile in one query (freshness on each result).
        Prefetch("dataset", queryset=Dataset.objects.select_related("profile")),
        Prefetch("indications", queryset=CancerIndication.objects.only("code", "name")),
    )
    return SearchResult(page=page, facets=facets, params=params, total=total)


@dataclass(frozen=True)
class _Group:
    """Entries that agree on every faceted field, and how many there are."""

    country: str
    cdm_version: str
    publisher_id: int
    access_mode_bits: int
    category_bits: int
    indications: frozenset[int]
    n: int


def _facet_counts(
    base: QuerySet, filters: _Filters, params: SearchParams, tree
) -> tuple[dict[str, list[FacetValue]], int]:
    """Every facet's counts and the number of hits, from one GROUP BY over the matching entries.

    The entries matching the text (and the reader's restriction) are grouped by all faceted fields
    at once; facets are disjunctive, so a group counts towards facet F when it passes every chosen
    filter except F's own. Datasets share few combinations of country, CDM version, publisher,
    modes, categories and indications, so there are far fewer groups than entries (one scan of the
    table instead of one per facet).
    """
    rows = (
        base.order_by()
        .values_list(
            "country",
            "cdm_version",
            "publisher_id",
            "access_mode_bits",
            "category_bits",
            "indication_key",
        )
        .annotate(n=Count("*"))  # COUNT(*): answerable from the covering index alone
    )
    groups = [
        _Group(
            country,
            cdm,
            publisher_id,
            modes,
            categories,
            frozenset(search_index.parse_indication_key(key)),
            n,
        )
        for country, cdm, publisher_id, modes, categories, key, n in rows
    ]
    organisations = {
        o.pk: o
        for o in Organisation.objects.filter(
            Q(pk__in={g.publisher_id for g in groups}) | Q(slug__in=params.publisher)
        ).only("slug", "name")
    }
    chosen_publishers = {pk for pk, o in organisations.items() if o.slug in params.publisher}
    tests = filters.group_tests(chosen_publishers)

    total = 0
    counted: dict[str, list[_Group]] = {name: [] for name in FACETS}
    for group in groups:
        failed = [name for name, test in tests.items() if not test(group)]
        if not failed:
            total += group.n
            for name in FACETS:
                counted[name].append(group)
        elif len(failed) == 1:  # counts only for the facet it fails
            counted[failed[0]].append(group)

    def tally(name: str, values: Callable[[_Group], Iterable[Any]]) -> dict[Any, int]:
        counts: dict[Any, int] = {}
        for group in counted[name]:
            for value in values(group):
                counts[value] = counts.get(value, 0) + group.n
        return counts

    facets: dict[str, list[FacetValue]] = {}
    counts = tally("indication", lambda g: g.indications)
    facets["indication"] = [
        FacetValue(
            node.code, node.name, counts.get(node.pk, 0), node.code in params.indication, depth
        )
        for node, depth, _ in tree
    ]
    for name, field_name, table, choices in (
        ("category", "category_bits", search_index.CATEGORY_BITS, DataCategory.choices),
        ("mode", "access_mode_bits", search_index.MODE_BITS, AccessMode.choices),
    ):
        counts = tally(
            name,
            lambda g, f=field_name, t=table: [c for c, bit in t.items() if getattr(g, f) & bit],
        )
        facets[name] = [
            FacetValue(code, str(label), counts.get(code, 0), code in params.selected(name))
            for code, label in choices
        ]

    from django_countries import countries

    counts = tally("country", lambda g: [g.country] if g.country else [])
    facets["country"] = [
        FacetValue(code, countries.name(code) or code, n, code in params.country)
        for code, n in sorted(counts.items())
    ]
    cdm_labels = dict(CdmVersion.choices)
    counts = tally("cdm", lambda g: [g.cdm_version] if g.cdm_version else [])
    facets["cdm"] = [
        FacetValue(code, str(cdm_labels.get(code, code)), n, code in params.cdm)
        for code, n in sorted(counts.items())
    ]
    counts = tally("publisher", lambda g: [g.publisher_id])
    publishers = sorted(
        (organisations[pk] for pk in counts if pk in organisations), key=lambda o: (o.name, o.pk)
    )
    facets["publisher"] = [
        FacetValue(o.slug, o.name, counts[o.pk], o.slug in params.publisher) for o in publishers
    ]
    return facets, total


# --- datasets -----------------------------------------------------------------------------------


def dataset_list_for_user(
    *,
    user: User | AnonymousUser,
    action: str = "view",
    ids: Iterable[int] | QuerySet | None = None,
    published_only: bool = False,
) -> QuerySet[Dataset]:
    """Datasets ``user`` may see (or ``action`` on): the one way other apps look datasets up.

    ``published_only`` keeps the published face (listed, not retired) even for members of the
    publisher and curators, who also see drafts. ``ids`` may be a list or a subquery.
    """
    qs = permissions.restrict(Dataset.objects.all(), user, action)
    if published_only:
        qs = qs.filter(permissions.PUBLIC)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return qs.select_related("publisher", "current_version")


def dataset_list_by_ids(
    *,
    user: User | AnonymousUser,
    ids: Iterable[int],
    action: str = "view",
    published_only: bool = False,
) -> dict[int, Dataset]:
    """The datasets among ``ids`` the user may see, by id. An id that does not exist and one the
    user may not see are both simply absent, so the caller cannot tell them apart."""
    ids = [i for i in ids if isinstance(i, int)]
    if not ids:
        return {}
    qs = dataset_list_for_user(user=user, action=action, ids=ids, published_only=published_only)
    return {d.pk: d for d in qs}


def dataset_get_for_user(
    *,
    user: User | AnonymousUser,
    identifier: str | None = None,
    pk: int | None = None,
    action: str = "view",
) -> Dataset:
    """One dataset the user may see, by identifier or id; 404 when it is unknown or invisible."""
    from accounts.permissions import get_for_user_or_404

    qs = permissions.restrict(Dataset.objects.all(), user, action).select_related(
        "publisher", "data_access_committee", "current_version"
    )
    if pk is not None:
        return get_for_user_or_404(qs, pk=pk)
    return get_for_user_or_404(qs, identifier=identifier)


def dataset_list_published() -> QuerySet[Dataset]:
    """The published face (listed, not retired): the same for every reader."""
    return Dataset.objects.filter(permissions.PUBLIC)


def datasets_of_publisher(
    *, organisation: Organisation, ids: Iterable[int] | None = None
) -> QuerySet[Dataset]:
    """Datasets published by ``organisation`` (drafts included), for callers already authorised
    for that organisation (its site administrators managing a node, operators' commands)."""
    qs = Dataset.objects.filter(publisher=organisation).select_related("publisher")
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    return qs.order_by("title", "pk")


def dataset_with_relations(dataset: Dataset) -> Dataset:
    """Reload with what ``metadata.snapshot`` reads."""
    return (
        Dataset.objects.select_related("publisher", "data_access_committee", "current_version")
        .prefetch_related("indications", "distributions")
        .get(pk=dataset.pk)
    )


def steward_datasets(*, user: User) -> QuerySet[Dataset]:
    """Datasets of the organisations where the user is a data steward (retired ones included)."""
    return (
        permissions.restrict(Dataset.objects.all(), user, "steward")
        .select_related("publisher", "current_version", "data_access_committee")
        .prefetch_related("indications", "distributions")
        .order_by("-updated_at")
    )


def review_queue(*, user: User) -> QuerySet[Dataset]:
    return (
        permissions.restrict(Dataset.objects.filter(status=Status.SUBMITTED), user, "review")
        .select_related("publisher")
        .order_by("updated_at")
    )


def facet_labels() -> dict[str, Any]:
    return {
        "indication": "Cancer indication",
        "country": "Country",
        "category": "Data category",
        "mode": "Access mode",
        "cdm": "OMOP CDM version",
        "publisher": "Publisher",
    }


def dataset_profile(*, dataset: Dataset) -> DatasetProfile | None:
    """The database profile attached to a dataset the caller may already see, or None."""
    return DatasetProfile.objects.filter(dataset=dataset).first()
