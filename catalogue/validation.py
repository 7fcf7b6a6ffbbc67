"""SHACL validation of one dataset's own RDF against HealthDCAT-AP Release 8.

The shapes are those the EU's HealthData@EU validator stacks for an access level (vendored with
their validator in ``shapes/healthdcat-ap/``, which extends DCAT-AP 3.0.1 in ``shapes/``): a
non-public dataset is checked at the non-public level, a public one at the public level.
Violations block submission and publishing; warnings (the recommended shapes) are shown too.
Each result is mapped back to the form field it concerns, in plain words.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import pyshacl
from django.core.exceptions import ValidationError
from rdflib import Graph, URIRef
from rdflib.namespace import RDF, RDFS, SH, SKOS

from . import metadata, rdf
from .models import AccessRights, Dataset

SHAPES_DIR = Path(__file__).parent / "shapes"
VALIDATOR = SHAPES_DIR / "healthdcat-ap" / "validate.py"
LEVELS = ("non-public", "public")

PATH_FIELDS = {
    str(rdf.DCTERMS.title): "title",
    str(rdf.DCTERMS.description): "description",
    str(rdf.DCAT.keyword): "keywords",
    str(rdf.DCAT.contactPoint): "contact_email",
    str(rdf.VCARD.hasEmail): "contact_email",
    str(rdf.VCARD.fn): "contact_name",
    str(rdf.DCTERMS.publisher): "publisher",
    str(rdf.DCTERMS.spatial): "country",
    str(rdf.DCTERMS.temporal): "temporal_start",
    str(rdf.DCAT.startDate): "temporal_start",
    str(rdf.DCAT.endDate): "temporal_end",
    str(rdf.DCTERMS.accrualPeriodicity): "update_frequency",
    str(rdf.DCTERMS.modified): "last_refreshed",
    str(rdf.DCTERMS.conformsTo): "cdm_version",
    str(rdf.DCTERMS.accessRights): "access_rights",
    str(rdf.DCAT.distribution): "distributions",
    str(rdf.DCAT.accessURL): "distributions",
    str(rdf.DCATAP.applicableLegislation): "applicable_legislation",
    str(rdf.DCTERMS.type): "dataset_type",
    str(rdf.DCTERMS.provenance): "provenance",
    str(rdf.HEALTH.hdab): "hdab",
    str(rdf.HEALTH.healthCategory): "health_categories",
    str(rdf.HEALTH.healthTheme): "indications",
    str(rdf.HEALTH.hasCodingSystem): "coding_systems",
    str(rdf.HEALTH.populationCoverage): "population_coverage",
    str(rdf.HEALTH.numberOfUniqueIndividuals): "number_of_individuals",
    str(rdf.HEALTH.numberOfRecords): "number_of_records",
    str(rdf.HEALTH.minTypicalAge): "min_typical_age",
    str(rdf.HEALTH.maxTypicalAge): "max_typical_age",
    str(rdf.DPV.hasLegalBasis): "legal_basis",
    str(rdf.DPV.hasPurpose): "purposes",
    str(rdf.DCAT.theme): "",
}
# Plain words for the kinds of SHACL constraint (the raw messages name shapes and IRIs).
PLAIN = {
    SH.MinCountConstraintComponent: "missing; HealthDCAT-AP {verb} it",
    SH.MaxCountConstraintComponent: "give only one value",
    SH.InConstraintComponent: "not a value of the EU list HealthDCAT-AP {verb}",
    SH.HasValueConstraintComponent: "not the value HealthDCAT-AP {verb} here",
    SH.ClassConstraintComponent: "not the kind of value HealthDCAT-AP {verb}",
    SH.NodeConstraintComponent: "incomplete: some of its details are missing or invalid",
    SH.DatatypeConstraintComponent: "not in the expected format",
    SH.NodeKindConstraintComponent: "must be a link (URL), not text",
    SH.PatternConstraintComponent: "not in the expected format",
}


class ViolationsFound(ValidationError):
    """A ValidationError whose field messages come from a SHACL report."""

    def __init__(self, report: dict):
        self.report = report
        fields: dict[str, list[str]] = {}
        for v in report["violations"]:
            fields.setdefault(v["field"] or "__all__", []).append(v["message"])
        super().__init__(fields)


@cache
def validator() -> ModuleType:
    """The vendored validate.py of the EU stack, loaded as a module (it is not a package)."""
    name = "catalogue_healthdcat_validate"
    spec = importlib.util.spec_from_file_location(name, VALIDATOR)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@cache
def shapes(level: str = "non-public") -> Graph:
    v = validator()
    notes: list[str] = []
    sg, _ = v.load_shapes(level, "3.0.1", notes)
    v.fix_pathless(sg, notes)
    return sg


def level_of(access_rights: str) -> str:
    return "public" if access_rights == AccessRights.PUBLIC else "non-public"


@cache
def _background(catalog_as_dataset: bool) -> Graph:
    return validator().background(catalog_as_dataset)


def background_for(data: Graph, catalog_as_dataset: bool) -> Graph:
    """The part of the EU vocabularies and ontology axioms that ``data`` refers to: what the
    validator merges with an export, without the hundreds of concepts it does not use (each would
    be validated, then discarded, on every submit)."""
    full = _background(catalog_as_dataset)
    bg = Graph()
    for triple in full.triples((None, RDFS.subClassOf, None)):
        bg.add(triple)
    used = {n for n in data.objects() if isinstance(n, URIRef)}
    schemes = set()
    for node in used:
        for p, o in full.predicate_objects(node):
            bg.add((node, p, o))
            if p == SKOS.inScheme:
                schemes.add(o)
    for scheme in schemes:
        for p, o in full.predicate_objects(scheme):
            bg.add((scheme, p, o))
    validator().vocab_fallback(data, bg, False, [])
    return bg


def validate_graph(
    data: Graph, *, level: str = "non-public", catalog_as_dataset: bool = True
) -> tuple[bool, Graph]:
    """(conforms, report) as the EU validator sees ``data``: no Violation outside the background
    vocabularies. The report holds only the results that count (see validate.py)."""
    bg = background_for(data, catalog_as_dataset)
    _, report, _ = pyshacl.validate(
        data + bg,
        shacl_graph=shapes(level),
        inference="none",
        advanced=True,
        allow_warnings=True,
        allow_infos=True,
        do_owl_imports=False,
    )
    nested = set(report.objects(None, SH.detail))
    export_subjects = set(data.subjects())
    background_only = set(bg.subjects()) - export_subjects
    counted = Graph()
    conforms = True
    root = next(report.subjects(RDF.type, SH.ValidationReport))
    counted.add((root, RDF.type, SH.ValidationReport))
    for r in list(report.subjects(RDF.type, SH.ValidationResult)):
        if r in nested or report.value(r, SH.focusNode) in background_only:
            continue
        counted.add((root, SH.result, r))
        for p, o in report.predicate_objects(r):
            counted.add((r, p, o))
        if report.value(r, SH.resultSeverity) == SH.Violation:
            conforms = False
    return conforms, counted


def _property_words(path) -> str:
    """dcterms:isReferencedBy, health:retentionPeriod → "is referenced by", "retention period"."""
    local = re.split(r"[#/:]", str(path))[-1]
    return re.sub(r"(?<!^)(?=[A-Z])", " ", local).lower()


def _plain(field: str, path, component, verb: str, on_distribution: bool) -> str:
    """A steward's words for one SHACL result (its raw message names shapes and IRIs)."""
    what = PLAIN.get(component, "not accepted by HealthDCAT-AP").format(verb=verb)
    if on_distribution:
        thing = _property_words(path) if isinstance(path, URIRef) else "a detail"
        return f"Distribution ({thing}): {what}."
    label = metadata.LABELS.get(field, "")
    if label:
        return f"{label}: {what}."
    if isinstance(path, URIRef):
        # Not a field of this form: it can come with a DCAT import.
        return f"{_property_words(path).capitalize()} (not in this form): {what}."
    return ""


def _results(results: Graph, dataset_uri: str) -> list[dict]:
    found = []
    for report in results.subjects(RDF.type, SH.ValidationReport):
        for r in results.objects(report, SH.result):
            path = results.value(r, SH.resultPath)
            message = results.value(r, SH.resultMessage)
            severity = results.value(r, SH.resultSeverity)
            focus = results.value(r, SH.focusNode)
            field = ""
            on_distribution = "/distributions/" in str(focus)
            if on_distribution and str(focus).startswith(dataset_uri):
                field = "distributions"  # a detail of a distribution, not of the dataset
            elif isinstance(path, URIRef) and str(focus).startswith(dataset_uri):
                field = PATH_FIELDS.get(str(path), "")
            component = results.value(r, SH.sourceConstraintComponent)
            is_violation = severity == SH.Violation
            verb = "requires" if is_violation else "recommends"
            text = _plain(field, path, component, verb, on_distribution) or str(message)
            found.append(
                {
                    "field": field,
                    "path": str(path) if path is not None else "",
                    "focus": str(focus) if focus is not None else "",
                    "message": text,
                    "detail": str(message or ""),
                    "severity": "Violation" if is_violation else "Warning",
                }
            )
    found.sort(key=lambda x: (x["field"], x["message"]))
    return found


def validate_snapshot(data: dict, *, portal_rules: bool = True) -> dict:
    ctx = rdf.Context.load()
    g = rdf.new_graph()
    # One CDM table stands for all: they are generated from the specification, not typed in.
    uri = str(rdf.add_dataset(g, data, ctx, version=1, table_limit=1))
    _, report = validate_graph(
        g, level=level_of(rdf.access_rights_code(data)), catalog_as_dataset=False
    )
    results = _results(report, uri)
    violations = [r for r in results if r["severity"] == "Violation"]
    # Only what the steward can act on: the dataset's own nodes, not shared ones.
    warnings = [r for r in results if r["severity"] != "Violation" and r["focus"].startswith(uri)]
    # The portal's own mandatory fields, which HealthDCAT-AP leaves optional.
    missing = metadata.completeness(data).mandatory_missing if portal_rules else []
    already = {v["field"] for v in violations}
    for name in (m for m in missing if m not in already):
        violations.append(
            {
                "field": name,
                "path": "",
                "focus": "",
                "message": metadata.REQUIRED_MESSAGES.get(
                    name, f"{metadata.LABELS[name]} is required to submit for review."
                ),
                "detail": "",
                "severity": "Violation",
            }
        )
    return {"violations": violations, "warnings": warnings}


def validate_dataset(dataset: Dataset) -> dict:
    dataset = (
        Dataset.objects.select_related("publisher", "data_access_committee", "hdab")
        .prefetch_related("indications", "distributions")
        .get(pk=dataset.pk)
    )
    return validate_snapshot(metadata.snapshot(dataset))
