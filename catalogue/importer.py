"""Import datasets from another DCAT-AP catalogue: the reverse of ``catalogue.rdf``.

The import acts as a named user with that user's rights: each ``dcat:Dataset`` (keyed by
``dct:identifier``, idempotent) must be published by an organisation where the user is a data
steward, and becomes a draft, or a new draft of a published dataset, that reaches the catalogue
through submit and review like any edit. Organisations are never created: an unknown publisher or
committee is an error. A dataset of an organisation the user does not steward, or an identifier of
another publisher's dataset, is refused. The whole import runs in one transaction: a malformed
graph, a refusal or any error imports nothing (refusals are audited after the rollback).
"""

from __future__ import annotations

import datetime as dt
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.text import slugify
from django_countries import countries
from rdflib import Graph, Literal
from rdflib.namespace import DCTERMS, FOAF, RDF, RDFS

from accounts.audit import record
from accounts.models import Organisation

from . import import_checks, permissions, rdf, services, validation
from .models import (
    AccessMode,
    AccessRights,
    CancerIndication,
    DataCategory,
    Dataset,
    DatasetType,
    DistributionKind,
    HealthCategory,
    Legislation,
    UpdateFrequency,
)

MAX_DOWNLOAD = 200 * 1024 * 1024
FORMAT_BY_SUFFIX = {
    ".ttl": "turtle",
    ".jsonld": "json-ld",
    ".json": "json-ld",
    ".rdf": "xml",
    ".xml": "xml",
    ".nt": "nt",
}
FORMAT_BY_TYPE = {
    "text/turtle": "turtle",
    "application/ld+json": "json-ld",
    "application/rdf+xml": "xml",
    "application/n-triples": "nt",
}


class ImportFailed(Exception):
    """The source cannot be read or parsed; nothing was imported."""


@dataclass
class Refusal:
    identifier: str
    reason: str
    organisation: Organisation | None = None  # whose dataset or name it was
    dataset: Dataset | None = None  # the existing dataset it would have changed


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


class ImportRefused(ImportFailed):
    """The source names datasets or organisations the acting user may not write; nothing was
    imported. ``report.refused`` says which and why."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        names = "; ".join(f"{r.identifier}: {r.reason}" for r in report.refused)
        super().__init__(f"Refused: {names}.")


def load(source: str, fmt: str | None = None) -> Graph:
    """Read a path or an http(s) URL into a graph; a clear ImportFailed on any problem."""
    content_type = ""
    try:
        if source.startswith(("http://", "https://")):
            accept = {"Accept": "text/turtle, application/ld+json, application/rdf+xml"}
            # Only http(s) sources reach here (checked above).
            request = urllib.request.Request(source, headers=accept)  # noqa: S310
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                content_type = response.headers.get_content_type()
                data = response.read(MAX_DOWNLOAD + 1)
            if len(data) > MAX_DOWNLOAD:
                raise ImportFailed(f"{source} is larger than {MAX_DOWNLOAD} bytes.")
        else:
            data = Path(source).read_bytes()
    except (OSError, ValueError) as exc:
        raise ImportFailed(f"Cannot read {source}: {exc}") from exc
    fmt = (
        fmt
        or FORMAT_BY_TYPE.get(content_type)
        or FORMAT_BY_SUFFIX.get(Path(source.split("?")[0]).suffix.lower())
        or "turtle"
    )
    return parse(data, fmt, source)


def parse(data: bytes | str, fmt: str, source: str = "input") -> Graph:
    try:
        if fmt == "json-ld":
            import_checks.check_jsonld_contexts(data)  # before rdflib could fetch a context
        graph = Graph().parse(data=data, format=fmt)
    except import_checks.Refused as exc:
        raise ImportFailed(f"{source} is refused: {exc}") from None
    except Exception as exc:  # rdflib raises many exception types for bad syntax
        # rdflib's messages can quote the whole document: keep the first line, briefly.
        reason = " ".join(str(exc).split("\n")[:2])[:300]
        raise ImportFailed(f"{source} is not valid {fmt} RDF: {reason}") from exc
    try:
        import_checks.check_graph(graph)
    except import_checks.Refused as exc:
        raise ImportFailed(f"{source} is refused: {exc}") from None
    return graph


# --- graph → snapshot ---------------------------------------------------------------------------------


def _text(g: Graph, s, p) -> str:
    values = list(g.objects(s, p))
    if not values:
        return ""
    english = [v for v in values if isinstance(v, Literal) and v.language in ("en", None)]
    return str((english or values)[0])


def _int(g: Graph, s, p) -> int | None:
    value = g.value(s, p)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _date(g: Graph, s, p) -> str | None:
    value = g.value(s, p)
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError:
        return None


def _tail(uri) -> str:
    return str(uri).rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]


class _Mapper:
    def __init__(self, g: Graph, report: ImportReport) -> None:
        self.g = g
        self.report = report
        self.opt = rdf.optima_ns()
        base = rdf.base_url()
        self.indications = {}
        for ind in CancerIndication.objects.all():
            self.indications[f"{base}/catalogue/indications/{ind.code}"] = ind.code
            if ind.uri:
                self.indications[ind.uri] = ind.code
        self.orgs: dict[str, Organisation] = {}
        for org in Organisation.objects.all():
            self.orgs[str(rdf.organisation_uri(org))] = org
            self.orgs[f"{base}/organisations/{org.slug}"] = org
        self.reverse = {
            "coding": {
                **rdf.LEGACY_CODING_SYSTEM_URIS,
                **{v: k for k, v in rdf.CODING_SYSTEM_URIS.items()},
            },
            "legal": {v: k for k, v in rdf.LEGAL_BASIS_URIS.items()},
            "cdm": {v: k for k, v in rdf.CDM_URIS.items()},
            "kind": {v: k for k, v in rdf.PUBLISHER_TYPES.items()},
        }

    def organisation(self, agent) -> Organisation | None:
        """The portal's organisation an agent names (by URI, identifier or name); never created."""
        if str(agent) in self.orgs:
            return self.orgs[str(agent)]
        g = self.g
        slug = _text(g, agent, DCTERMS.identifier) or slugify(_text(g, agent, FOAF.name))[:80]
        name = _text(g, agent, FOAF.name)
        org = Organisation.objects.filter(slug=slug).first() if slug else None
        if org is None and name:
            org = Organisation.objects.filter(name=name).first()
        if org is not None:
            self.orgs[str(agent)] = org
        return org

    def agent_label(self, agent) -> str:
        g = self.g
        return _text(g, agent, DCTERMS.identifier) or _text(g, agent, FOAF.name) or str(agent)

    def snapshot(self, ds) -> dict[str, Any]:
        g, opt = self.g, self.opt
        identifier = _text(g, ds, DCTERMS.identifier) or _tail(ds)
        data: dict[str, Any] = {
            "identifier": identifier,
            "title": _text(g, ds, DCTERMS.title),
            "description": _text(g, ds, DCTERMS.description),
            "keywords": sorted(str(k) for k in g.objects(ds, rdf.DCAT.keyword)),
        }
        cp = g.value(ds, rdf.DCAT.contactPoint)
        data["contact_name"] = _text(g, cp, rdf.VCARD.fn) if cp is not None else ""
        email = str(g.value(cp, rdf.VCARD.hasEmail) or "") if cp is not None else ""
        data["contact_email"] = email.removeprefix("mailto:")
        codes = []
        # The portal's hierarchy travels as optima:indication; older exports put it (and other
        # portals may put SNOMED concepts) in healthdcatap:healthTheme next to the EU themes.
        for theme in [
            *g.objects(ds, opt.indication),
            *g.objects(ds, rdf.HEALTH.healthTheme),
        ]:
            code = self.indications.get(str(theme))
            if code:
                codes.append(code)
            elif not str(theme).startswith(rdf.HDEU):
                self.report.notes.append(f"{identifier}: unknown indication {theme} left out.")
        data["indications"] = sorted(set(codes))
        categories = [*g.objects(ds, opt.dataCategory), *g.objects(ds, rdf.HEALTH.healthCategory)]
        data["data_categories"] = sorted(
            {c for c in (_tail(u) for u in categories) if c in DataCategory.values}
        )
        data["health_categories"] = sorted(
            {
                _tail(u)
                for u in g.objects(ds, rdf.HEALTH.healthCategory)
                if str(u).startswith(rdf.HDEU) and _tail(u) in HealthCategory.values
            }
        )
        kind = next(
            (
                _tail(u)
                for u in g.objects(ds, DCTERMS.type)
                if str(u).startswith(rdf.AUTH + "dataset-type/")
            ),
            "",
        )
        data["dataset_type"] = kind if kind in DatasetType.values else ""
        provenance = g.value(ds, DCTERMS.provenance)
        data["provenance"] = (
            _text(g, provenance, RDFS.label) or _text(g, provenance, DCTERMS.description)
            if provenance is not None
            else ""
        )
        data["population_coverage"] = _text(g, ds, rdf.HEALTH.populationCoverage)
        data["number_of_individuals"] = _int(g, ds, rdf.HEALTH.numberOfUniqueIndividuals)
        data["number_of_records"] = _int(g, ds, rdf.HEALTH.numberOfRecords)
        data["min_typical_age"] = _int(g, ds, rdf.HEALTH.minTypicalAge)
        data["max_typical_age"] = _int(g, ds, rdf.HEALTH.maxTypicalAge)
        period = g.value(ds, DCTERMS.temporal)
        data["temporal_start"] = _date(g, period, rdf.DCAT.startDate) if period else None
        data["temporal_end"] = _date(g, period, rdf.DCAT.endDate) if period else None
        data["country"] = next(
            (c for c in (_country(u) for u in g.objects(ds, DCTERMS.spatial)) if c), ""
        )
        freq = _tail(g.value(ds, DCTERMS.accrualPeriodicity) or "")
        data["update_frequency"] = freq if freq in UpdateFrequency.values else ""
        data["last_refreshed"] = _date(g, ds, DCTERMS.modified)
        data["cdm_version"] = _text(g, ds, opt.cdmVersion) or next(
            (
                self.reverse["cdm"][str(u)]
                for u in g.objects(ds, DCTERMS.conformsTo)
                if str(u) in self.reverse["cdm"]
            ),
            "",
        )
        data["vocabulary_version"] = _text(g, ds, opt.vocabularyVersion)
        data["coding_systems"] = sorted(
            {
                self.reverse["coding"][str(u)]
                for u in g.objects(ds, rdf.HEALTH.hasCodingSystem)
                if str(u) in self.reverse["coding"]
            }
        )
        # HealthDCAT-AP knows NON_PUBLIC and PUBLIC; anything else (RESTRICTED…) is not public.
        rights = _tail(g.value(ds, DCTERMS.accessRights) or "")
        data["access_rights"] = rights if rights in AccessRights.values else AccessRights.NON_PUBLIC
        data["access_modes"] = sorted(
            m for m in (_tail(u) for u in g.objects(ds, opt.accessMode)) if m in AccessMode.values
        )
        data["legal_basis"] = next(
            (
                self.reverse["legal"][str(u)]
                for u in g.objects(ds, rdf.DPV.hasLegalBasis)
                if str(u) in self.reverse["legal"]
            ),
            "",
        )
        purpose = g.value(ds, rdf.DPV.hasPurpose)
        data["purposes"] = (
            _text(g, purpose, DCTERMS.description) if purpose is not None else ""
        ) or _text(g, ds, opt.purposes)  # the portal's own term in exports before HealthDCAT-AP's
        data["applicable_legislation"] = sorted(
            str(u)
            for u in g.objects(ds, rdf.DCATAP.applicableLegislation)
            if str(u) in Legislation.values
        )
        data["terms_of_use_text"] = _text(g, ds, opt.termsOfUse)
        minimum = _int(g, ds, opt.termsMinCellCount)
        data["terms_min_cell_count"] = minimum if minimum and 1 <= minimum <= 1000 else None
        landing = str(g.value(ds, rdf.DCAT.landingPage) or "")
        distributions = []
        for d in g.objects(ds, rdf.DCAT.distribution):
            kind = _tail(g.value(d, opt.distributionKind) or "")
            if kind == "portal":  # written by the export when there is no distribution
                continue
            url = str(g.value(d, rdf.DCAT.accessURL) or "")
            distributions.append(
                {
                    "kind": kind if kind in DistributionKind.values else "documentation",
                    "title": _text(g, d, DCTERMS.title) or "Distribution",
                    "description": _text(g, d, DCTERMS.description),
                    "access_url": "" if url == landing else url,
                    "node_ref": _text(g, d, opt.nodeRef) or None,
                }
            )
        data["distributions"] = sorted(distributions, key=lambda x: (x["kind"], x["title"]))
        return data


def _country(uri) -> str:
    if uri is None or not str(uri).startswith(rdf.AUTH + "country/"):
        return ""
    alpha3 = _tail(uri)
    return next((code for code, _ in countries if countries.alpha3(code) == alpha3), "")


class _Refuse(Exception):
    """Leave the import's transaction: it must write nothing."""


def import_graph(g: Graph, *, source: str, actor) -> ImportReport:
    """Create or update, as ``actor``, one draft per ``dcat:Dataset``; all or nothing.

    Raises ImportRefused (nothing written, each refusal audited) when the graph names a publisher
    or committee the portal does not know, a publisher where ``actor`` is not a data steward, or
    the identifier of another publisher's dataset.
    """
    if not getattr(actor, "is_authenticated", False) or not actor.is_active:
        raise ImportFailed("An import acts as an active user (--as USERNAME).")
    report = ImportReport()
    try:
        with transaction.atomic():
            _import(g, source=source, actor=actor, report=report)
            if report.refused:
                raise _Refuse
    except _Refuse:
        for refusal in report.refused:
            record(
                "dataset.import_refused",
                actor=actor,
                obj=refusal.dataset,
                organisation=refusal.organisation,
                object_type="" if refusal.dataset else "catalogue.dataset",
                object_id="" if refusal.dataset else refusal.identifier[:64],
                payload={
                    "source": source,
                    "identifier": refusal.identifier,
                    "reason": refusal.reason,
                },
            )
        raise ImportRefused(report) from None
    return report


def _import(g: Graph, *, source: str, actor, report: ImportReport) -> None:
    mapper = _Mapper(g, report)
    stewarded = permissions.steward_org_ids(actor)
    subjects = sorted(set(g.subjects(RDF.type, rdf.DCAT.Dataset)), key=str)
    if not subjects:
        raise ImportFailed(f"{source} describes no dcat:Dataset.")
    for ds in subjects:
        data = mapper.snapshot(ds)
        identifier = data["identifier"]
        if not data["title"]:
            report.skipped.append((identifier, "no dct:title"))
            continue
        agent = g.value(ds, DCTERMS.publisher)
        if agent is None:
            report.skipped.append((identifier, "no dct:publisher"))
            continue
        publisher = mapper.organisation(agent)
        if publisher is None:
            report.refused.append(
                Refusal(identifier, f"unknown publisher {mapper.agent_label(agent)}")
            )
            continue
        existing = Dataset.objects.filter(identifier=identifier).select_related("publisher").first()
        if existing is not None and existing.publisher_id != publisher.pk:
            report.refused.append(
                Refusal(
                    identifier,
                    f"a dataset of another publisher ({existing.publisher.slug})",
                    existing.publisher,
                    existing,
                )
            )
            continue
        if publisher.pk not in stewarded:
            report.refused.append(
                Refusal(
                    identifier,
                    f"{actor.get_username()} is not a data steward of {publisher.slug}",
                    publisher,
                    existing,
                )
            )
            continue
        data["publisher"] = publisher.slug
        committee = g.value(ds, mapper.opt.dataAccessCommittee)
        dac_org = mapper.organisation(committee) if committee is not None else None
        if committee is not None and dac_org is None:
            report.refused.append(
                Refusal(
                    identifier,
                    f"unknown data access committee {mapper.agent_label(committee)}",
                    publisher,
                )
            )
            continue
        data["data_access_committee"] = dac_org.slug if dac_org else None
        hdab = g.value(ds, rdf.HEALTH.hdab)
        hdab_org = mapper.organisation(hdab) if hdab is not None else None
        if hdab is not None and hdab_org is None:
            report.notes.append(
                f"{identifier}: health data access body {mapper.agent_label(hdab)} is not an "
                "organisation of the portal; left empty (the committee or publisher stands in)."
            )
        data["hdab"] = hdab_org.slug if hdab_org else None
        problems = validation.validate_snapshot(data, portal_rules=False)["violations"]
        if problems:
            report.skipped.append(
                (identifier, "DCAT-AP violations: " + "; ".join(p["message"] for p in problems))
            )
            continue
        try:
            outcome = services.dataset_import(
                user=actor,
                publisher=publisher,
                data=data,
                notes=_text(g, ds, rdf.ADMS.versionNotes),
                source=source,
            )
        except PermissionDenied as exc:
            report.refused.append(Refusal(identifier, str(exc), publisher))
            continue
        except ValidationError as exc:
            # The lifecycle's own rules (e.g. which committee a publisher may name).
            report.refused.append(Refusal(identifier, "; ".join(exc.messages), publisher))
            continue
        if outcome == "created":
            report.created.append(identifier)
        elif outcome == "updated":
            report.updated.append(identifier)
        else:
            report.skipped.append((identifier, outcome))
