"""SHACL validation of one dataset's own RDF against the vendored DCAT-AP 3.0.1 shapes.

Violations block submission and publishing; warnings (``shapes_recommended.ttl``) are shown too.
Each result is mapped back to the form field it concerns.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from django.core.exceptions import ValidationError
from pyshacl import validate
from rdflib import Graph, URIRef
from rdflib.namespace import RDF, SH

from . import metadata, rdf
from .models import Dataset

SHAPES_DIR = Path(__file__).parent / "shapes"
MANDATORY_SHAPES = ("shapes.ttl", "range.ttl", "mdr-vocabularies.shape.ttl")
RECOMMENDED_SHAPES = ("shapes_recommended.ttl",)

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
    str(rdf.DCAT.theme): "",
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
def shapes(recommended: bool = False) -> Graph:
    g = Graph()
    for name in RECOMMENDED_SHAPES if recommended else MANDATORY_SHAPES:
        g.parse(SHAPES_DIR / name, format="turtle")
    return g


def validate_graph(data: Graph, *, recommended: bool = False) -> tuple[bool, Graph]:
    conforms, results, _ = validate(
        data + rdf.vocabulary_for(data),
        shacl_graph=shapes(recommended),
        inference="none",
        allow_warnings=True,
        abort_on_first=False,
    )
    return conforms, results


def _results(results: Graph, dataset_uri: str) -> list[dict]:
    found = []
    # Only top-level results: nested sh:detail results repeat them.
    for report in results.subjects(RDF.type, SH.ValidationReport):
        for r in results.objects(report, SH.result):
            path = results.value(r, SH.resultPath)
            message = results.value(r, SH.resultMessage)
            severity = results.value(r, SH.resultSeverity)
            focus = results.value(r, SH.focusNode)
            field = ""
            if isinstance(path, URIRef) and str(focus).startswith(dataset_uri):
                field = PATH_FIELDS.get(str(path), "")
            component = results.value(r, SH.sourceConstraintComponent)
            is_violation = str(severity).endswith("Violation")
            label = metadata.LABELS.get(field, "")
            if component == SH.MinCountConstraintComponent and label:
                text = (
                    f"{label}: missing; DCAT-AP {'requires' if is_violation else 'recommends'} it."
                )
            elif label:
                text = f"{label}: {message}"
            else:
                text = str(message)
            found.append(
                {
                    "field": field,
                    "path": str(path) if path is not None else "",
                    "focus": str(focus) if focus is not None else "",
                    "message": text,
                    "severity": "Violation" if is_violation else "Warning",
                }
            )
    found.sort(key=lambda x: (x["field"], x["message"]))
    return found


def validate_snapshot(data: dict, *, portal_rules: bool = True) -> dict:
    ctx = rdf.Context.load()
    g = rdf.new_graph()
    uri = str(rdf.add_dataset(g, data, ctx, version=1))
    _, mandatory = validate_graph(g)
    _, recommended = validate_graph(g, recommended=True)
    violations = [r for r in _results(mandatory, uri) if r["severity"] == "Violation"]
    warnings = [r for r in _results(mandatory, uri) if r["severity"] != "Violation"]
    warnings += _results(recommended, uri)
    # Only what the steward can act on: the dataset's own nodes, not the EU vocabularies.
    warnings = [w for w in warnings if w["focus"].startswith(uri)]
    # The portal's own mandatory fields, which DCAT-AP leaves optional.
    missing = metadata.completeness(data).mandatory_missing if portal_rules else []
    already = {v["field"] for v in violations}
    for name in (m for m in missing if m not in already):
        violations.append(
            {
                "field": name,
                "path": "",
                "focus": "",
                "message": f"{metadata.LABELS[name]} is required before submission.",
                "severity": "Violation",
            }
        )
    return {"violations": violations, "warnings": warnings}


def validate_dataset(dataset: Dataset) -> dict:
    dataset = (
        Dataset.objects.select_related("publisher", "data_access_committee")
        .prefetch_related("indications", "distributions")
        .get(pk=dataset.pk)
    )
    return validate_snapshot(metadata.snapshot(dataset))
