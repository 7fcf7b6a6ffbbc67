"""DCAT-AP 3 / HealthDCAT-AP graphs built from metadata snapshots, and the way back (import).

The same snapshot dict (``catalogue.metadata.snapshot``) is used for a working copy (validation on
submit) and for a published version (export), so what is validated is what is exported.
Properties without a standard term use the portal's own namespace ``optima:``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any

from django.conf import settings
from django_countries import countries
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, FOAF, RDF, RDFS, SKOS, XSD

from accounts.models import Organisation, OrganisationKind

from .models import (
    AccessRights,
    CodingSystem,
    DataCategory,
    LegalBasis,
    UpdateFrequency,
)

DCAT = Namespace("http://www.w3.org/ns/dcat#")  # open namespace: DCAT 3 terms (dcat:version)
ADMS = Namespace("http://www.w3.org/ns/adms#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
DCATAP = Namespace("http://data.europa.eu/r5r/")
HEALTH = Namespace("http://healthdataportal.eu/ns/health#")
DPV = Namespace("https://w3id.org/dpv#")
ELI = Namespace("http://data.europa.eu/eli/ontology#")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
AUTH = "http://publications.europa.eu/resource/authority/"
HEAL_THEME = URIRef(AUTH + "data-theme/HEAL")


def base_url() -> str:
    return settings.PORTAL_BASE_URL.rstrip("/")


def optima_ns() -> Namespace:
    return Namespace(base_url() + "/catalogue/ns#")


PREFIXES = {
    "dcat": DCAT,
    "dct": DCTERMS,
    "foaf": FOAF,
    "vcard": VCARD,
    "adms": ADMS,
    "dcatap": DCATAP,
    "healthdcatap": HEALTH,
    "dpv": DPV,
    "eli": ELI,
    "skos": SKOS,
    "xsd": XSD,
    "rdfs": RDFS,
    "hydra": HYDRA,
}

CODING_SYSTEM_URIS = {
    CodingSystem.SNOMED_CT: "http://snomed.info/sct",
    CodingSystem.ICD10: "http://hl7.org/fhir/sid/icd-10",
    CodingSystem.ICDO3: "http://terminology.hl7.org/CodeSystem/icd-o-3",
    CodingSystem.LOINC: "http://loinc.org",
    CodingSystem.RXNORM: "http://www.nlm.nih.gov/research/umls/rxnorm",
    CodingSystem.ATC: "http://www.whocc.no/atc",
}
LEGAL_BASIS_URIS = {
    LegalBasis.ART_6_1_E: "https://w3id.org/dpv/legal/eu/gdpr#A6-1-e",
    LegalBasis.ART_6_1_A: "https://w3id.org/dpv/legal/eu/gdpr#A6-1-a",
    LegalBasis.ART_9_2_J: "https://w3id.org/dpv/legal/eu/gdpr#A9-2-j",
    LegalBasis.ART_9_2_A: "https://w3id.org/dpv/legal/eu/gdpr#A9-2-a",
    LegalBasis.ART_9_2_I: "https://w3id.org/dpv/legal/eu/gdpr#A9-2-i",
}
CDM_URIS = {
    "5.3": "https://ohdsi.github.io/CommonDataModel/cdm53.html",
    "5.4": "https://ohdsi.github.io/CommonDataModel/cdm54.html",
}
PUBLISHER_TYPES = {
    OrganisationKind.HOSPITAL: "http://purl.org/adms/publishertype/Academia-ScientificOrganisation",
    OrganisationKind.RESEARCH: "http://purl.org/adms/publishertype/Academia-ScientificOrganisation",
    OrganisationKind.INDUSTRY: "http://purl.org/adms/publishertype/Company",
    OrganisationKind.PATIENT_ORG: "http://purl.org/adms/publishertype/NonGovernmentalOrganisation",
    OrganisationKind.PLATFORM: "http://purl.org/adms/publishertype/NonProfitOrganisation",
}
# EU authority tables the profile names, and the scheme each concept belongs to.
SCHEMES = {
    "access-right": AUTH + "access-right",
    "frequency": AUTH + "frequency",
    "country": AUTH + "country",
    "data-theme": AUTH + "data-theme",
}


def dataset_uri(identifier: str) -> URIRef:
    return URIRef(f"{base_url()}/catalogue/datasets/{identifier}")


def landing_page(identifier: str) -> URIRef:
    return URIRef(f"{base_url()}/catalogue/datasets/{identifier}/")


def organisation_uri(org: Organisation) -> URIRef:
    if org.ror_id:
        return URIRef(org.ror_url)
    return URIRef(f"{base_url()}/organisations/{org.slug}")


def indication_uri(code: str, uri: str = "") -> URIRef:
    return URIRef(uri or f"{base_url()}/catalogue/indications/{code}")


def data_category_uri(code: str) -> URIRef:
    return URIRef(f"{base_url()}/catalogue/vocab/data-category/{code}")


def country_uri(alpha2: str) -> URIRef:
    return URIRef(f"{AUTH}country/{countries.alpha3(alpha2)}")


def _scheme_of(uri: URIRef) -> str | None:
    for key, scheme in SCHEMES.items():
        if str(uri).startswith(f"{AUTH}{key}/"):
            return scheme
    return None


@dataclass
class Context:
    """What building a graph needs besides the snapshot: organisations and indication URIs."""

    organisations: dict[str, Organisation]
    indication_uris: dict[str, str]
    agents_done: set[str] = field(default_factory=set)

    @classmethod
    def load(cls) -> Context:
        from .models import CancerIndication

        return cls(
            organisations={o.slug: o for o in Organisation.objects.all()},
            indication_uris=dict(CancerIndication.objects.values_list("code", "uri")),
        )


def _lit(value: Any, datatype=None, lang: str | None = None) -> Literal:
    return Literal(value, datatype=datatype) if datatype else Literal(value, lang=lang)


def add_agent(g: Graph, org: Organisation, ctx: Context) -> URIRef:
    uri = organisation_uri(org)
    if str(uri) not in ctx.agents_done:
        ctx.agents_done.add(str(uri))
        g.add((uri, RDF.type, FOAF.Agent))
        g.add((uri, FOAF.name, _lit(org.name, lang="en")))
        g.add(
            (uri, DCTERMS.type, URIRef(PUBLISHER_TYPES.get(org.kind, PUBLISHER_TYPES["hospital"])))
        )
        g.add((uri, DCTERMS.identifier, Literal(org.slug)))
        if org.country:
            g.add((uri, DCTERMS.spatial, country_uri(str(org.country))))
    return uri


def add_dataset(
    g: Graph,
    data: dict[str, Any],
    ctx: Context,
    *,
    version: int | None = None,
    version_notes: str = "",
    version_numbers: Iterable[int] = (),
    issued: date | None = None,
) -> URIRef:
    """Add one dataset described by a snapshot dict (see ``catalogue.metadata.snapshot``)."""
    opt = optima_ns()
    identifier = data["identifier"]
    ds = dataset_uri(identifier)
    add = g.add
    add((ds, RDF.type, DCAT.Dataset))
    add((ds, DCTERMS.identifier, Literal(identifier)))
    add((ds, DCTERMS.title, _lit(data["title"], lang="en")))
    add((ds, DCTERMS.description, _lit(data["description"], lang="en")))
    add((ds, DCAT.theme, HEAL_THEME))
    add((ds, DCAT.landingPage, landing_page(identifier)))
    add((landing_page(identifier), RDF.type, FOAF.Document))
    for kw in data.get("keywords") or []:
        add((ds, DCAT.keyword, _lit(kw, lang="en")))
    publisher = ctx.organisations.get(data.get("publisher"))
    if publisher is not None:
        add((ds, DCTERMS.publisher, add_agent(g, publisher, ctx)))
    if data.get("contact_email") or data.get("contact_name"):
        cp = URIRef(f"{ds}#contact")
        add((ds, DCAT.contactPoint, cp))
        add((cp, RDF.type, VCARD.Kind))
        if data.get("contact_name"):
            add((cp, VCARD.fn, Literal(data["contact_name"])))
        if data.get("contact_email"):
            add((cp, VCARD.hasEmail, URIRef(f"mailto:{data['contact_email']}")))
    for code in data.get("indications") or []:
        add((ds, HEALTH.healthTheme, indication_uri(code, ctx.indication_uris.get(code, ""))))
    for code in data.get("data_categories") or []:
        add((ds, HEALTH.healthCategory, data_category_uri(code)))
    if data.get("population_coverage"):
        add((ds, HEALTH.populationCoverage, _lit(data["population_coverage"], lang="en")))
    for name, prop in (
        ("number_of_individuals", HEALTH.numberOfUniqueIndividuals),
        ("number_of_records", HEALTH.numberOfRecords),
        ("min_typical_age", HEALTH.minTypicalAge),
        ("max_typical_age", HEALTH.maxTypicalAge),
    ):
        if data.get(name) is not None:
            add((ds, prop, Literal(data[name], datatype=XSD.nonNegativeInteger)))
    if data.get("temporal_start") or data.get("temporal_end"):
        period = URIRef(f"{ds}#temporal")
        add((ds, DCTERMS.temporal, period))
        add((period, RDF.type, DCTERMS.PeriodOfTime))
        if data.get("temporal_start"):
            add((period, DCAT.startDate, Literal(data["temporal_start"], datatype=XSD.date)))
        if data.get("temporal_end"):
            add((period, DCAT.endDate, Literal(data["temporal_end"], datatype=XSD.date)))
    if data.get("country"):
        add((ds, DCTERMS.spatial, country_uri(data["country"])))
        add((country_uri(data["country"]), RDF.type, DCTERMS.Location))
    if data.get("update_frequency"):
        freq = URIRef(f"{AUTH}frequency/{data['update_frequency']}")
        add((ds, DCTERMS.accrualPeriodicity, freq))
        add((freq, RDF.type, DCTERMS.Frequency))
    if data.get("last_refreshed"):
        add((ds, DCTERMS.modified, Literal(data["last_refreshed"], datatype=XSD.date)))
    if issued:
        add((ds, DCTERMS.issued, Literal(issued.isoformat(), datatype=XSD.date)))
    if data.get("cdm_version") in CDM_URIS:
        std = URIRef(CDM_URIS[data["cdm_version"]])
        add((ds, DCTERMS.conformsTo, std))
        add((std, RDF.type, DCTERMS.Standard))
        add((std, DCTERMS.title, Literal(f"OMOP CDM {data['cdm_version']}")))
    if data.get("vocabulary_version"):
        add((ds, opt.vocabularyVersion, Literal(data["vocabulary_version"])))
    for code in data.get("coding_systems") or []:
        add((ds, HEALTH.hasCodingSystem, URIRef(CODING_SYSTEM_URIS[code])))
    rights = None
    if data.get("access_rights"):
        rights = URIRef(f"{AUTH}access-right/{data['access_rights']}")
        add((ds, DCTERMS.accessRights, rights))
        add((rights, RDF.type, DCTERMS.RightsStatement))
    for code in data.get("access_modes") or []:
        add((ds, opt.accessMode, URIRef(f"{opt}{code}")))
    if data.get("legal_basis") in LEGAL_BASIS_URIS:
        add((ds, DPV.hasLegalBasis, URIRef(LEGAL_BASIS_URIS[data["legal_basis"]])))
    if data.get("purposes"):
        # As HealthDCAT-AP: dpv:hasPurpose → a dpv:Purpose described in words.
        purpose = URIRef(f"{ds}#purpose")
        add((ds, DPV.hasPurpose, purpose))
        add((purpose, RDF.type, DPV.Purpose))
        add((purpose, DCTERMS.description, _lit(data["purposes"], lang="en")))
    for eli in data.get("applicable_legislation") or []:
        add((ds, DCATAP.applicableLegislation, URIRef(eli)))
        add((URIRef(eli), RDF.type, ELI.LegalResource))
    dac = ctx.organisations.get(data.get("data_access_committee") or "")
    if dac is not None:
        add((ds, opt.dataAccessCommittee, add_agent(g, dac, ctx)))
    if data.get("terms_of_use_text"):
        add((ds, opt.termsOfUse, _lit(data["terms_of_use_text"], lang="en")))
    for i, dist in enumerate(data.get("distributions") or [], start=1):
        d = URIRef(f"{ds}/distributions/{i}")
        add((ds, DCAT.distribution, d))
        add((d, RDF.type, DCAT.Distribution))
        add((d, DCTERMS.title, _lit(dist["title"], lang="en")))
        if dist.get("description"):
            add((d, DCTERMS.description, _lit(dist["description"], lang="en")))
        add((d, DCAT.accessURL, URIRef(dist.get("access_url") or landing_page(identifier))))
        add((d, opt.distributionKind, URIRef(f"{opt}{dist['kind']}")))
        if dist.get("node_ref"):
            add((d, opt.nodeRef, Literal(dist["node_ref"])))
        if rights is not None:
            add((d, DCTERMS.accessRights, rights))
    if version is not None:
        add((ds, DCAT.version, Literal(str(version))))
        if version_notes:
            add((ds, ADMS.versionNotes, _lit(version_notes, lang="en")))
        for n in version_numbers:
            add((ds, DCAT.hasVersion, URIRef(f"{ds}/versions/{n}")))
        if version > 1:
            add((ds, DCAT.previousVersion, URIRef(f"{ds}/versions/{version - 1}")))
    return ds


def new_graph() -> Graph:
    g = Graph(bind_namespaces="core")
    for prefix, ns in PREFIXES.items():
        g.bind(prefix, ns)
    g.bind("optima", optima_ns())
    return g


def catalog_uri() -> URIRef:
    return URIRef(f"{base_url()}/catalogue/dcat")


def add_catalog(g: Graph, ctx: Context) -> URIRef:
    cat = catalog_uri()
    g.add((cat, RDF.type, DCAT.Catalog))
    g.add((cat, DCTERMS.title, _lit("OPTIMA dataset catalogue", lang="en")))
    g.add(
        (
            cat,
            DCTERMS.description,
            _lit(
                "Harmonised real-world cancer datasets of the OPTIMA network (OMOP CDM), "
                "available for federated analysis, federated learning or as central copies.",
                lang="en",
            ),
        )
    )
    home = URIRef(f"{base_url()}/catalogue/")
    g.add((cat, FOAF.homepage, home))
    g.add((home, RDF.type, FOAF.Document))
    themes = URIRef(SCHEMES["data-theme"])
    g.add((cat, DCAT.themeTaxonomy, themes))
    g.add((themes, RDF.type, SKOS.ConceptScheme))
    g.add((themes, DCTERMS.title, _lit("Data theme", lang="en")))
    platform = next(
        (o for o in ctx.organisations.values() if o.kind == OrganisationKind.PLATFORM), None
    )
    if platform is not None:
        g.add((cat, DCTERMS.publisher, add_agent(g, platform, ctx)))
    return cat


@cache
def vocabulary_stub() -> Graph:
    """The EU authority concepts the portal uses, typed, labelled and placed in their schemes.

    The official validator loads the full authority tables; these triples are the part of them the
    portal uses, so validation works offline.
    """
    g = Graph()
    concepts = {HEAL_THEME: "Health"}
    concepts.update(
        {URIRef(f"{AUTH}access-right/{c}"): str(label) for c, label in AccessRights.choices}
    )
    concepts.update(
        {URIRef(f"{AUTH}frequency/{c}"): str(label) for c, label in UpdateFrequency.choices}
    )
    concepts.update({URIRef(f"{AUTH}country/{countries.alpha3(c)}"): str(n) for c, n in countries})
    for c, label in concepts.items():
        g.add((c, RDF.type, SKOS.Concept))
        g.add((c, SKOS.prefLabel, Literal(label, lang="en")))
        g.add((c, SKOS.inScheme, URIRef(_scheme_of(c))))
    publisher_types = URIRef("http://purl.org/adms/publishertype/1.0")
    g.add((publisher_types, RDF.type, SKOS.ConceptScheme))
    g.add((publisher_types, DCTERMS.title, Literal("ADMS publisher types", lang="en")))
    for uri in set(PUBLISHER_TYPES.values()):
        g.add((URIRef(uri), RDF.type, SKOS.Concept))
        g.add((URIRef(uri), SKOS.prefLabel, Literal(uri.rsplit("/", 1)[-1], lang="en")))
        g.add((URIRef(uri), SKOS.inScheme, publisher_types))
    for code, label in DataCategory.choices:
        g.add((data_category_uri(code), RDF.type, SKOS.Concept))
        g.add((data_category_uri(code), SKOS.prefLabel, Literal(str(label), lang="en")))
    return g


def vocabulary_for(data: Graph) -> Graph:
    """The part of the vocabulary stub that ``data`` refers to."""
    used = set(data.objects())
    stub = vocabulary_stub()
    g = Graph()
    for s, p, o in stub:
        if s in used or str(s) == "http://purl.org/adms/publishertype/1.0":
            g.add((s, p, o))
    return g
