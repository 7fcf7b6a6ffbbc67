"""Keeps ``SearchEntry`` rows in step with the listed versions (called by the services)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from django.db.models import OuterRef, Subquery

from .models import (
    AccessMode,
    CancerIndication,
    DataCategory,
    DatasetVersion,
    SearchEntry,
)

MODE_BITS = {code: 1 << i for i, code in enumerate(AccessMode.values)}
CATEGORY_BITS = {code: 1 << i for i, code in enumerate(DataCategory.values)}


def bits(codes: Iterable[str], table: dict[str, int]) -> int:
    value = 0
    for code in codes or []:
        value |= table.get(code, 0)
    return value


def ancestors_by_id() -> dict[int, set[int]]:
    """{indication id: itself and all its ancestors}."""
    parents = dict(CancerIndication.objects.values_list("pk", "parent_id"))
    closure = {}
    for pk in parents:
        seen, node = set(), pk
        while node is not None and node not in seen:
            seen.add(node)
            node = parents.get(node)
        closure[pk] = seen
    return closure


def indication_key(ids: Iterable[int]) -> str:
    """The set of indication ids as one comparable string, ``|1|4|9|`` (empty set: ``""``)."""
    ordered = sorted(set(ids))
    return "|" + "|".join(str(i) for i in ordered) + "|" if ordered else ""


def parse_indication_key(key: str) -> list[int]:
    return [int(part) for part in key.split("|") if part]


def closed_indications(
    indication_ids: Iterable[int], closure: dict[int, set[int]] | None = None
) -> set[int]:
    """The indications and all their ancestors (what an entry is found under)."""
    closure = closure if closure is not None else ancestors_by_id()
    ids: set[int] = set()
    for pk in indication_ids:
        ids |= closure.get(pk, {pk})
    return ids


def entry_for(version: DatasetVersion, indication_ids: Iterable[int]) -> SearchEntry:
    """The entry of ``version``; ``indication_ids`` already closed under ancestors."""
    return SearchEntry(
        version=version,
        publisher_id=version.publisher_id,
        published_at=version.published_at,
        title=version.title,
        country=str(version.country or ""),
        cdm_version=version.cdm_version,
        access_mode_bits=bits(version.access_modes, MODE_BITS),
        category_bits=bits(version.data_categories, CATEGORY_BITS),
        number_of_individuals=version.number_of_individuals,
        indication_key=indication_key(indication_ids),
    )


def list_version(version: DatasetVersion, closure: dict[int, set[int]] | None = None) -> None:
    """Make ``version`` the listed entry of its dataset."""
    SearchEntry.objects.filter(version__dataset_id=version.dataset_id).delete()
    ids = closed_indications(version.indications.values_list("pk", flat=True), closure)
    entry = entry_for(version, ids)
    entry.save(force_insert=True)
    entry.indications.set(ids)
    refresh_vectors([entry.pk])


def refresh_vectors(entry_ids: list[int]) -> None:
    """Copy the versions' text-search vectors onto their entries (PostgreSQL only)."""
    if connection.vendor != "postgresql":
        return
    vector = DatasetVersion.objects.filter(pk=OuterRef("pk")).values("search_vector")[:1]
    SearchEntry.objects.filter(pk__in=entry_ids).update(search_vector=Subquery(vector))


def unlist_dataset(dataset_id: int) -> None:
    SearchEntry.objects.filter(version__dataset_id=dataset_id).delete()


def rebuild() -> int:
    """Recompute every entry (after the indication hierarchy changed)."""
    SearchEntry.objects.all().delete()
    closure = ancestors_by_id()
    count = 0
    for version in DatasetVersion.objects.filter(is_listed=True).iterator(chunk_size=500):
        list_version(version, closure)
        count += 1
    return count
