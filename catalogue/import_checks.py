"""What ``import_dcat`` refuses before it maps anything: values the database would refuse with a
traceback, and JSON-LD that would make the parser fetch a URL.

* A NUL (or another C0 control character) in any term: PostgreSQL refuses NUL in text.
* A value longer than its column (``dct:title`` of a dataset against ``Dataset.title``, the
  publisher's ``foaf:name`` against ``Organisation.name``, ...), any text over :data:`MAX_TEXT`,
  and a count or an age outside its integer column.
* A JSON-LD ``@context`` (or ``@import``) given as a URL: rdflib would fetch it, from wherever the
  document says (a server-side request from the portal). Contexts must be inline.

Each problem raises :class:`Refused` with one line naming the value's subject and property; the
importer turns it into ``ImportFailed`` and nothing is imported.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from django.db import connection
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, FOAF, RDF

from accounts.models import Organisation
from accounts.parsers import loads as json_loads

from . import rdf
from .models import Dataset, DatasetVersion, Distribution

MAX_TEXT = 50_000
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class Refused(ValueError):
    """The document holds a value the portal will not import (the message says which)."""


def _max_length(model, name: str) -> int:
    return model._meta.get_field(name).max_length


def _int_range(model, name: str) -> tuple[int, int]:
    low, high = connection.ops.integer_field_range(model._meta.get_field(name).get_internal_type())
    return max(low or 0, 0), high


def _limits() -> dict[str, dict[Any, int | tuple[int, int]]]:
    """Per kind of node, property -> the column's max length (or integer range)."""
    opt = rdf.optima_ns()
    return {
        "dataset": {
            DCTERMS.title: min(_max_length(Dataset, "title"), _max_length(DatasetVersion, "title")),
            DCTERMS.identifier: _max_length(Dataset, "identifier"),
            opt.vocabularyVersion: _max_length(Dataset, "vocabulary_version"),
            rdf.HEALTH.numberOfUniqueIndividuals: _int_range(Dataset, "number_of_individuals"),
            rdf.HEALTH.numberOfRecords: _int_range(Dataset, "number_of_records"),
            rdf.HEALTH.minTypicalAge: _int_range(Dataset, "min_typical_age"),
            rdf.HEALTH.maxTypicalAge: _int_range(Dataset, "max_typical_age"),
            rdf.DCAT.version: _int_range(DatasetVersion, "number"),
        },
        "contact": {
            rdf.VCARD.fn: _max_length(Dataset, "contact_name"),
            rdf.VCARD.hasEmail: _max_length(Dataset, "contact_email") + len("mailto:"),
        },
        "agent": {
            FOAF.name: _max_length(Organisation, "name"),
            DCTERMS.identifier: _max_length(Organisation, "slug"),
        },
        "distribution": {
            DCTERMS.title: _max_length(Distribution, "title"),
            rdf.DCAT.accessURL: _max_length(Distribution, "access_url"),
            opt.nodeRef: _max_length(Distribution, "node_ref"),
        },
    }


def _nodes(g: Graph) -> Iterator[tuple[str, Any]]:
    """(kind, node) for every node the importer reads, found the way the importer finds them."""
    opt = rdf.optima_ns()
    for ds in set(g.subjects(RDF.type, rdf.DCAT.Dataset)):
        yield "dataset", ds
        for cp in g.objects(ds, rdf.DCAT.contactPoint):
            yield "contact", cp
        for agent in (*g.objects(ds, DCTERMS.publisher), *g.objects(ds, opt.dataAccessCommittee)):
            yield "agent", agent
        for d in g.objects(ds, rdf.DCAT.distribution):
            yield "distribution", d


def _short(term) -> str:
    text = re.sub(r"[\x00-\x1f\x7f]", "?", str(term))
    return text if len(text) <= 80 else text[:77] + "..."


def check_graph(g: Graph) -> None:
    """Raise :class:`Refused` for the first value the database could not store."""
    for triple in g:
        for term in triple:
            text = str(term)
            if CONTROL.search(text):
                s, p, _ = triple
                raise Refused(
                    f"A value of <{_short(p)}> on <{_short(s)}> contains a control character."
                )
            if isinstance(term, Literal | URIRef) and len(text) > MAX_TEXT:
                raise Refused(
                    f"A value of <{_short(triple[1])}> on <{_short(triple[0])}> is longer than "
                    f"{MAX_TEXT} characters."
                )
    limits = _limits()
    for kind, node in _nodes(g):
        if kind == "dataset" and g.value(node, DCTERMS.identifier) is None:
            # Without dct:identifier the importer takes the tail of the dataset's IRI.
            tail = str(node).rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]
            if len(tail) > limits["dataset"][DCTERMS.identifier]:
                raise Refused(f"The identifier of <{_short(node)}> is too long.")
        for predicate, limit in limits[kind].items():
            for value in g.objects(node, predicate):
                _check_value(node, predicate, value, limit)


def _check_value(node, predicate, value, limit) -> None:
    where = f"<{_short(predicate)}> of <{_short(node)}>"
    if isinstance(limit, tuple):
        try:
            number = int(value)
        except (TypeError, ValueError):
            return  # not a number: the importer leaves it out
        if not limit[0] <= number <= limit[1]:
            raise Refused(f"{where} must be between {limit[0]} and {limit[1]}.")
    elif len(str(value)) > limit:
        raise Refused(f"{where} is longer than {limit} characters.")


def check_jsonld_contexts(data: bytes | str) -> None:
    """Raise :class:`Refused` unless every ``@context`` in the JSON-LD document is inline."""
    try:
        document = json_loads(data)
    except ValueError as exc:  # also "JSON nested too deeply."
        raise Refused(f"not valid JSON: {' '.join(str(exc).split())[:200]}") from None
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for key, value in item.items():
                if key == "@import" or (key == "@context" and _names_a_url(value)):
                    raise Refused(
                        "a remote JSON-LD @context is not fetched; inline the context in the "
                        "document."
                    )
                stack.append(value)


def _names_a_url(context) -> bool:
    if isinstance(context, str):
        return True
    if isinstance(context, list):
        return any(isinstance(c, str) for c in context)
    return False
