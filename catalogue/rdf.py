"""DCAT-AP 3 / HealthDCAT-AP graphs built from metadata snapshots, and the way back (import).

The same snapshot dict (``catalogue.metadata.snapshot``) is used for a working copy (validation on
submit) and for a published version (export), so what is validated is what is exported.
Properties without a standard term use the portal's own namespace ``optima:``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
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
    DatasetType,
    HealthCategory,
    LegalBasis,
    Legislation,
)

DCAT = Namespace("http://www.w3.org/ns/dcat#")  # open namespace: DCAT 3 terms (dcat:version)
ADMS = Namespace("http://www.w3.org/ns/adms#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
DCATAP = Namespace("http://data.europa.eu/r5r/")
HEALTH = Namespace("http://healthdataportal.eu/ns/health#")
DPV = Namespace("https://w3id.org/dpv#")
ELI = Namespace("http://data.europa.eu/eli/ontology#")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
GEODCATAP = Namespace("http://data.europa.eu/930/")
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
    "geodcatap": GEODCATAP,
    "csvw": Namespace("http://www.w3.org/ns/csvw#"),
    "cv": Namespace("http://data.europa.eu/m8g/"),
}

HDEU = "https://hdeu-dcat.data.health.europa.eu/resource/authority/"
CSVW = Namespace("http://www.w3.org/ns/csvw#")
CV = Namespace("http://data.europa.eu/m8g/")
EHDS = Legislation.EHDS.value

# EU coding-system table (HealthDCAT-AP); each concept is also a dct:Standard.
CODING_SYSTEM_URIS = {
    CodingSystem.SNOMED_CT: HDEU + "coding-system/SNOMED-CT",
    CodingSystem.ICD10: HDEU + "coding-system/ICD-10",
    CodingSystem.ICDO3: HDEU + "coding-system/ICD-O",
    CodingSystem.LOINC: HDEU + "coding-system/LOINC",
    CodingSystem.RXNORM: HDEU + "coding-system/RXNORM",
    CodingSystem.ATC: HDEU + "coding-system/ATC",
}
# What exports before HealthDCAT-AP Release 8 used (still read by the importer).
LEGACY_CODING_SYSTEM_URIS = {
    "http://snomed.info/sct": CodingSystem.SNOMED_CT,
    "http://hl7.org/fhir/sid/icd-10": CodingSystem.ICD10,
    "http://terminology.hl7.org/CodeSystem/icd-o-3": CodingSystem.ICDO3,
    "http://loinc.org": CodingSystem.LOINC,
    "http://www.nlm.nih.gov/research/umls/rxnorm": CodingSystem.RXNORM,
    "http://www.whocc.no/atc": CodingSystem.ATC,
}
LEGAL_BASIS_URIS = {
    LegalBasis.ART_6_1_E: "https://w3id.org/dpv/legal/eu/gdpr#A6-1-e",
    LegalBasis.ART_6_1_A: "https://w3id.org/dpv/legal/eu/gdpr#A6-1-a",
    LegalBasis.ART_9_2_J: "https://w3id.org/dpv/legal/eu/gdpr#A9-2-j",
    LegalBasis.ART_9_2_A: "https://w3id.org/dpv/legal/eu/gdpr#A9-2-a",
    LegalBasis.ART_9_2_I: "https://w3id.org/dpv/legal/eu/gdpr#A9-2-i",
}
OMOP_CDM_STANDARD = URIRef(HDEU + "standard/OMOP-CDM")
# Earlier exports pointed dct:conformsTo at the OHDSI pages (still read by the importer).
CDM_URIS = {
    "5.3": "https://ohdsi.github.io/CommonDataModel/cdm53.html",
    "5.4": "https://ohdsi.github.io/CommonDataModel/cdm54.html",
}
# EU publisher-type table of HealthDCAT-AP.
PUBLISHER_TYPES = {
    OrganisationKind.HOSPITAL: HDEU + "publisher-type/healthcare-providers",
    OrganisationKind.RESEARCH: HDEU + "publisher-type/research-institute-org",
    OrganisationKind.INDUSTRY: HDEU + "publisher-type/pharma-company",
    OrganisationKind.PATIENT_ORG: HDEU + "publisher-type/non-gov-org",
    OrganisationKind.PLATFORM: HDEU + "publisher-type/research-infra",
}
# The portal's data categories (facets) mapped to the EHDS health categories.
HEALTH_CATEGORY_OF = {
    DataCategory.CLINICAL: HealthCategory.EHRS,
    DataCategory.IMAGING: HealthCategory.EHRS,
    DataCategory.PATHOLOGY: HealthCategory.EHRS,
    DataCategory.OMICS: HealthCategory.HGPD,
    DataCategory.PATIENT_REPORTED: HealthCategory.RQSH,
}
# Every indication of the portal's hierarchy is a cancer: one EU health theme.
CANCER_THEME = URIRef(HDEU + "health-theme/CANCER_DISEASE")
DEFAULT_KEYWORD = "oncology"
# EU authority tables the profile names, and the scheme each concept belongs to.
SCHEMES = {
    "access-right": AUTH + "access-right",
    "frequency": AUTH + "frequency",
    "country": AUTH + "country",
    "data-theme": AUTH + "data-theme",
}


def access_rights_code(data: dict[str, Any]) -> str:
    """NON_PUBLIC or PUBLIC; snapshots from before Release 8 may say RESTRICTED (= NON_PUBLIC)."""
    code = data.get("access_rights") or AccessRights.NON_PUBLIC
    return code if code in AccessRights.values else AccessRights.NON_PUBLIC


def health_categories(data: dict[str, Any]) -> list[str]:
    """The EHDS categories given, else those of the portal's data categories, else EHR data."""
    codes = [c for c in data.get("health_categories") or [] if c in HealthCategory.values]
    if not codes:
        codes = [HEALTH_CATEGORY_OF[c] for c in data.get("data_categories") or []]
    return sorted(set(codes or [HealthCategory.EHRS]))


def default_provenance(data: dict[str, Any], publisher_name: str) -> str:
    """The ETL in words, for datasets whose steward has not described the provenance."""
    cdm = data.get("cdm_version") or "5.4"
    text = (
        f"Extracted from the electronic health records of {publisher_name or 'the hospital'} and "
        f"transformed to the OMOP Common Data Model {cdm} by the hospital's ETL"
    )
    if data.get("vocabulary_version"):
        text += f", with the OHDSI standardised vocabularies {data['vocabulary_version']}"
    return text + ". It is queried in place through the hospital's OPTIMA node."


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
    """A portal data category (a facet), in the portal's namespace."""
    return URIRef(f"{optima_ns()}{code}")


def country_uri(alpha2: str) -> URIRef:
    return URIRef(f"{AUTH}country/{countries.alpha3(alpha2)}")


def legislation(data: dict[str, Any]) -> list[str]:
    return sorted(data.get("applicable_legislation") or [EHDS])


@dataclass
class Context:
    """What building a graph needs besides the snapshot: organisations and indication URIs."""

    organisations: dict[str, Organisation]
    indication_uris: dict[str, str]
    indication_names: dict[str, str] = field(default_factory=dict)
    agents_done: set[str] = field(default_factory=set)
    nodes_done: set[str] = field(default_factory=set)

    @classmethod
    def load(cls) -> Context:
        from .models import CancerIndication

        rows = list(CancerIndication.objects.values_list("code", "uri", "name"))
        return cls(
            organisations={o.slug: o for o in Organisation.objects.all()},
            indication_uris={code: uri for code, uri, _ in rows},
            indication_names={code: name for code, _, name in rows},
        )

    def first(self, key: str) -> bool:
        """True the first time a shared node (agent, vocabulary, CDM table) is written."""
        if key in self.nodes_done:
            return False
        self.nodes_done.add(key)
        return True


def _lit(value: Any, datatype=None, lang: str | None = None) -> Literal:
    return Literal(value, datatype=datatype) if datatype else Literal(value, lang=lang)


def add_agent(g: Graph, org: Organisation, ctx: Context) -> URIRef:
    """A foaf:Agent with a HealthDCAT-AP publisher type and exactly one cv:ContactPoint."""
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
            g.add((country_uri(str(org.country)), RDF.type, DCTERMS.Location))
        contact = URIRef(f"{base_url()}/organisations/{org.slug}#contact")
        page = URIRef(org.website or f"{base_url()}/organisations/{org.slug}/")
        g.add((uri, CV.contactPoint, contact))
        g.add((contact, RDF.type, CV.ContactPoint))
        g.add((contact, CV.contactPage, page))
        g.add((page, RDF.type, FOAF.Document))
    return uri


def _typed(g: Graph, uri: URIRef, *types: URIRef) -> URIRef:
    for t in types:
        g.add((uri, RDF.type, t))
    return uri


def add_variables(
    g: Graph, ds: URIRef, data: dict[str, Any], ctx: Context, limit: int | None = None
) -> None:
    """healthdcatap:hasVariables: the OMOP CDM tables and columns of the dataset (csvw).

    ``limit`` keeps the first tables only (submit-time validation: the tables come from the CDM
    specification, not from the steward, and the test suite validates the full export)."""
    from . import omop

    cdm = data.get("cdm_version") or "5.4"
    group = URIRef(f"{ds}#variables")
    g.add((ds, HEALTH.hasStructuredData, Literal(True)))
    g.add((ds, HEALTH.hasVariables, group))
    g.add((group, RDF.type, CSVW.TableGroup))
    g.add((group, DCTERMS.title, _lit(f"OMOP CDM {cdm} tables of the dataset", lang="en")))
    tables = omop.tables(cdm)
    if data.get("profile_tables"):  # the tables the database profile found records in
        measured = set(data["profile_tables"])
        tables = [t for t in tables if t.name in measured] or tables
    for table in tables[:limit]:
        t = URIRef(f"{optima_ns()}omop-cdm-{cdm}/{table.name}")
        g.add((group, CSVW.table, t))
        if not ctx.first(str(t)):
            continue
        g.add((t, RDF.type, CSVW.Table))
        g.add((t, DCTERMS.title, _lit(table.name, lang="en")))
        if table.description:
            g.add((t, DCTERMS.description, _lit(table.description, lang="en")))
        for column in table.columns:
            c = URIRef(f"{t}/{column.name}")
            g.add((t, CSVW.column, c))
            g.add((c, RDF.type, CSVW.Column))
            g.add((c, CSVW.name, Literal(column.name)))
            g.add((c, CSVW.title, _lit(column.title, lang="en")))
            g.add((c, DCTERMS.description, _lit(column.description, lang="en")))
            g.add((c, CSVW.datatype, Literal(column.datatype)))


def add_dataset(
    g: Graph,
    data: dict[str, Any],
    ctx: Context,
    *,
    version: int | None = None,
    version_notes: str = "",
    version_numbers: Iterable[int] = (),
    issued: date | None = None,
    table_limit: int | None = None,
) -> URIRef:
    """Add one dataset described by a snapshot dict (see ``catalogue.metadata.snapshot``).

    Every property HealthDCAT-AP makes mandatory is written, with the portal's default when the
    steward left the field empty (see docs/catalogue.md), so a draft exports valid too.
    """
    opt = optima_ns()
    identifier = data["identifier"]
    ds = dataset_uri(identifier)
    add = g.add
    publisher = ctx.organisations.get(data.get("publisher"))
    publisher_name = publisher.name if publisher is not None else ""
    add((ds, RDF.type, DCAT.Dataset))
    add((ds, DCTERMS.identifier, Literal(identifier)))
    add((ds, DCTERMS.title, _lit(data["title"], lang="en")))
    description = data.get("description") or (
        f"{data['title']}: a dataset of {publisher_name or 'an OPTIMA hospital'} in the OPTIMA "
        "network (description pending)."
    )
    add((ds, DCTERMS.description, _lit(description, lang="en")))
    add((ds, DCAT.theme, HEAL_THEME))
    add((ds, DCAT.landingPage, landing_page(identifier)))
    add((landing_page(identifier), RDF.type, FOAF.Document))
    keywords = data.get("keywords") or [DEFAULT_KEYWORD]
    for kw in keywords:
        add((ds, DCAT.keyword, _lit(kw, lang="en")))
    if publisher is not None:
        # The hospital publishes the description and holds the data (custodian).
        add((ds, DCTERMS.publisher, add_agent(g, publisher, ctx)))
        add((ds, GEODCATAP.custodian, add_agent(g, publisher, ctx)))
    # The machine-readable description of this dataset.
    metadata_page = URIRef(f"{landing_page(identifier)}dcat.ttl")
    add((ds, FOAF.page, metadata_page))
    add((metadata_page, RDF.type, FOAF.Document))
    # Contact point: the portal's dataset page always (where access is requested), the e-mail too.
    cp = URIRef(f"{ds}#contact")
    add((ds, DCAT.contactPoint, cp))
    add((cp, RDF.type, VCARD.Kind))
    add((cp, VCARD.hasURL, landing_page(identifier)))
    if data.get("contact_name"):
        add((cp, VCARD.fn, Literal(data["contact_name"])))
    if data.get("contact_email"):
        add((cp, VCARD.hasEmail, URIRef(f"mailto:{data['contact_email']}")))
    # dct:type from the EU dataset-type table; provenance; the health data access body.
    dataset_type = URIRef(
        f"{AUTH}dataset-type/{data.get('dataset_type') or DatasetType.STATISTICAL}"
    )
    add((ds, DCTERMS.type, dataset_type))
    provenance = URIRef(f"{ds}#provenance")
    add((ds, DCTERMS.provenance, provenance))
    add((provenance, RDF.type, DCTERMS.ProvenanceStatement))
    text = data.get("provenance") or default_provenance(data, publisher_name)
    add((provenance, RDFS.label, _lit(text, lang="en")))
    hdab = (
        ctx.organisations.get(data.get("hdab") or "")
        or ctx.organisations.get(data.get("data_access_committee") or "")
        or publisher
    )
    if hdab is not None:
        add((ds, HEALTH.hdab, add_agent(g, hdab, ctx)))
    # Cancer indications: the portal's hierarchy (facets) kept, mapped to the EU health theme.
    add((ds, HEALTH.healthTheme, CANCER_THEME))
    for code in data.get("indications") or []:
        add((ds, opt.indication, indication_uri(code, ctx.indication_uris.get(code, ""))))
    for code in health_categories(data):
        add((ds, HEALTH.healthCategory, URIRef(f"{HDEU}healthcategories/{code}")))
    for code in data.get("data_categories") or []:
        add((ds, opt.dataCategory, data_category_uri(code)))
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
    # Every OPTIMA dataset is an OMOP CDM database: the EU standard, and the version in words.
    add((ds, DCTERMS.conformsTo, _typed(g, OMOP_CDM_STANDARD, DCTERMS.Standard)))
    if data.get("cdm_version"):
        add((ds, opt.cdmVersion, Literal(data["cdm_version"])))
    if data.get("vocabulary_version"):
        add((ds, opt.vocabularyVersion, Literal(data["vocabulary_version"])))
    for code in data.get("coding_systems") or []:
        system = _typed(g, URIRef(CODING_SYSTEM_URIS[code]), DCTERMS.Standard)
        add((ds, HEALTH.hasCodingSystem, system))
    rights = _typed(
        g, URIRef(f"{AUTH}access-right/{access_rights_code(data)}"), DCTERMS.RightsStatement
    )
    add((ds, DCTERMS.accessRights, rights))
    for code in data.get("access_modes") or []:
        add((ds, opt.accessMode, URIRef(f"{opt}{code}")))
    if data.get("legal_basis") in LEGAL_BASIS_URIS:
        basis = _typed(g, URIRef(LEGAL_BASIS_URIS[data["legal_basis"]]), DPV.LegalBasis)
        add((ds, DPV.hasLegalBasis, basis))
        label = dict(LegalBasis.choices)[data["legal_basis"]]
        add((basis, DCTERMS.description, _lit(str(label), lang="en")))
    if data.get("purposes"):
        # As HealthDCAT-AP: dpv:hasPurpose → a dpv:Purpose described in words.
        purpose = URIRef(f"{ds}#purpose")
        add((ds, DPV.hasPurpose, purpose))
        add((purpose, RDF.type, DPV.Purpose))
        add((purpose, DCTERMS.description, _lit(data["purposes"], lang="en")))
    laws = [_typed(g, URIRef(eli), ELI.LegalResource) for eli in legislation(data)]
    for eli in laws:
        add((ds, DCATAP.applicableLegislation, eli))
    dac = ctx.organisations.get(data.get("data_access_committee") or "")
    if dac is not None:
        add((ds, opt.dataAccessCommittee, add_agent(g, dac, ctx)))
    licence = URIRef(f"{landing_page(identifier)}#terms-of-use")
    if data.get("terms_of_use_text"):
        add((ds, opt.termsOfUse, _lit(data["terms_of_use_text"], lang="en")))
    if data.get("terms_min_cell_count") is not None:
        add(
            (
                ds,
                opt.termsMinCellCount,
                Literal(data["terms_min_cell_count"], datatype=XSD.positiveInteger),
            )
        )
    add((licence, RDF.type, DCTERMS.LicenseDocument))
    add((licence, DCTERMS.title, _lit(f"Terms of use of {data['title']}", lang="en")))
    distributions = data.get("distributions") or [
        # No distribution yet: the dataset is reached through its page on the portal.
        {"kind": "portal", "title": "Access through the OPTIMA portal", "access_url": ""}
    ]
    for i, dist in enumerate(distributions, start=1):
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
        add((d, DCTERMS.accessRights, rights))
        add((d, DCTERMS.license, licence))
        for eli in laws:
            add((d, DCATAP.applicableLegislation, eli))
    add_variables(g, ds, data, ctx, table_limit)
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


def add_catalog(g: Graph, ctx: Context, *, access_rights: str = AccessRights.NON_PUBLIC) -> URIRef:
    """The catalog record. The EU validator also reads it as a dataset (DCAT 2: Catalog ⊑
    Dataset), so it carries the dataset's mandatory properties too, at the harvested level."""
    cat = catalog_uri()
    add = g.add
    add((cat, RDF.type, DCAT.Catalog))
    title = "OPTIMA dataset catalogue"
    add((cat, DCTERMS.title, _lit(title, lang="en")))
    add(
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
    add((cat, FOAF.homepage, home))
    add((home, RDF.type, FOAF.Document))
    themes = URIRef(SCHEMES["data-theme"])
    add((cat, DCAT.themeTaxonomy, themes))
    add((themes, RDF.type, SKOS.ConceptScheme))
    add((themes, DCTERMS.title, _lit("Data theme", lang="en")))
    law = _typed(g, URIRef(EHDS), ELI.LegalResource)
    add((cat, DCATAP.applicableLegislation, law))
    platform = next(
        (o for o in ctx.organisations.values() if o.kind == OrganisationKind.PLATFORM), None
    )
    if platform is not None:
        add((cat, DCTERMS.publisher, add_agent(g, platform, ctx)))
        add((cat, HEALTH.hdab, add_agent(g, platform, ctx)))
    # What the catalog record needs when it is read as a dataset.
    add((cat, DCTERMS.identifier, Literal("optima-catalogue")))
    rights = _typed(g, URIRef(f"{AUTH}access-right/{access_rights}"), DCTERMS.RightsStatement)
    add((cat, DCTERMS.accessRights, rights))
    add((cat, DCAT.theme, HEAL_THEME))
    add((cat, DCAT.keyword, _lit(DEFAULT_KEYWORD, lang="en")))
    add((cat, DCAT.keyword, _lit("real-world data", lang="en")))
    add((cat, DCTERMS.type, URIRef(f"{AUTH}dataset-type/DIRECTORY")))
    cp = URIRef(f"{cat}#contact")
    add((cat, DCAT.contactPoint, cp))
    add((cp, RDF.type, VCARD.Kind))
    add((cp, VCARD.hasURL, home))
    provenance = URIRef(f"{cat}#provenance")
    add((cat, DCTERMS.provenance, provenance))
    add((provenance, RDF.type, DCTERMS.ProvenanceStatement))
    add(
        (
            provenance,
            RDFS.label,
            _lit(
                "Compiled from the dataset descriptions that the network's data stewards publish "
                "after review by the catalogue curators.",
                lang="en",
            ),
        )
    )
    add((cat, HEALTH.healthCategory, URIRef(f"{HDEU}healthcategories/{HealthCategory.EHRS}")))
    add((cat, HEALTH.healthTheme, CANCER_THEME))
    add((cat, HEALTH.hasStructuredData, Literal(False)))
    dist = URIRef(f"{cat}#turtle")
    add((cat, DCAT.distribution, dist))
    add((dist, RDF.type, DCAT.Distribution))
    add((dist, DCTERMS.title, _lit(f"{title} in Turtle", lang="en")))
    add((dist, DCAT.accessURL, URIRef(f"{base_url()}/catalogue/dcat.ttl")))
    add((dist, DCATAP.applicableLegislation, law))
    add((dist, DCTERMS.accessRights, rights))
    return cat


# The portal's own terms: everything exported under optima: that HealthDCAT-AP has no term for.
NAMESPACE_TERMS = {
    "indication": (
        RDF.Property,
        "Cancer indication",
        "A node of the portal's cancer-type hierarchy (a SNOMED CT concept where one exists); the "
        "portal's facets use it, healthdcatap:healthTheme carries the EU health theme.",
    ),
    "dataCategory": (
        RDF.Property,
        "Data category",
        "A data category of the portal's facets (clinical, imaging, omics, pathology, "
        "patient-reported); healthdcatap:healthCategory carries the EHDS category.",
    ),
    "cdmVersion": (RDF.Property, "OMOP CDM version", "The OMOP CDM version, e.g. 5.4."),
    "vocabularyVersion": (
        RDF.Property,
        "Vocabulary version",
        "The release of the OHDSI standardised vocabularies loaded in the OMOP database.",
    ),
    "accessMode": (
        RDF.Property,
        "Access mode",
        "How the dataset may be used: federated analytics, federated learning or central copy.",
    ),
    "dataAccessCommittee": (
        RDF.Property,
        "Data access committee",
        "The organisation whose data access committee decides on requests.",
    ),
    "termsOfUse": (RDF.Property, "Terms of use", "The terms an access request agrees to."),
    "termsMinCellCount": (
        RDF.Property,
        "Minimum cell count",
        "The terms of use's disclosure rule: no released count below this many individuals.",
    ),
    "distributionKind": (
        RDF.Property,
        "Distribution kind",
        "federated_omop (an OMOP database at a node), documentation, or portal (the dataset's "
        "page, written when no distribution is described).",
    ),
    "nodeRef": (RDF.Property, "Node", "The identifier of the OPTIMA node serving the database."),
    "purposes": (
        RDF.Property,
        "Purposes (superseded)",
        "Exports before HealthDCAT-AP used this; dpv:hasPurpose replaces it.",
    ),
}


def namespace_graph() -> Graph:
    from .models import AccessMode, DistributionKind

    opt = optima_ns()
    g = new_graph()
    ns = URIRef(str(opt).rstrip("#"))
    g.add((ns, RDF.type, URIRef("http://www.w3.org/2002/07/owl#Ontology")))
    g.add((ns, DCTERMS.title, _lit("OPTIMA catalogue terms", lang="en")))
    g.add(
        (
            ns,
            DCTERMS.description,
            _lit(
                "Terms of the OPTIMA catalogue's HealthDCAT-AP export for which neither "
                "HealthDCAT-AP nor DCAT-AP has a term.",
                lang="en",
            ),
        )
    )
    for name, (kind, label, comment) in NAMESPACE_TERMS.items():
        g.add((opt[name], RDF.type, kind))
        g.add((opt[name], RDFS.label, _lit(label, lang="en")))
        g.add((opt[name], RDFS.comment, _lit(comment, lang="en")))
        g.add((opt[name], RDFS.isDefinedBy, ns))
    codes = [*AccessMode.choices, *DataCategory.choices, *DistributionKind.choices]
    codes.append(("portal", "The dataset's page on the portal"))
    for code, label in codes:
        g.add((opt[code], RDF.type, SKOS.Concept))
        g.add((opt[code], SKOS.prefLabel, _lit(str(label), lang="en")))
        g.add((opt[code], RDFS.isDefinedBy, ns))
    return g
