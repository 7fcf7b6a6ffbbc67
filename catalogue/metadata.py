"""One description of a dataset's metadata as plain data: snapshot, restore, diff and completeness.

A snapshot is what a ``DatasetVersion`` stores; the same dict feeds the diff page and the score, so
a published version and a working copy are compared and scored the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError

from accounts.models import Organisation

from .models import (
    AccessMode,
    CancerIndication,
    CodingSystem,
    DataCategory,
    Dataset,
    DatasetType,
    Distribution,
    HealthCategory,
    Legislation,
)

# Scalar fields copied one to one between the working copy and a snapshot.
SCALAR_FIELDS = [
    "title",
    "description",
    "contact_name",
    "contact_email",
    "population_coverage",
    "number_of_individuals",
    "number_of_records",
    "min_typical_age",
    "max_typical_age",
    "update_frequency",
    "cdm_version",
    "vocabulary_version",
    "access_rights",
    "legal_basis",
    "purposes",
    "terms_of_use_text",
    "terms_min_cell_count",
    "dataset_type",
    "provenance",
]
DATE_FIELDS = ["temporal_start", "temporal_end", "last_refreshed"]
LIST_FIELDS = [
    "keywords",
    "data_categories",
    "coding_systems",
    "access_modes",
    "applicable_legislation",
    "health_categories",
]
# Organisations stored by slug in a snapshot.
ORGANISATION_FIELDS = ["data_access_committee", "hdab"]
# What a snapshot keeps of each distribution (the form and the services use the same keys).
DISTRIBUTION_FIELDS = ("kind", "title", "description", "access_url", "node_ref")

# Mandatory in the portal's HealthDCAT-AP profile (the SHACL shapes check the RDF ones too).
MANDATORY = [
    "title",
    "description",
    "contact_email",
    "indications",
    "data_categories",
    "country",
    "access_rights",
    "access_modes",
    "legal_basis",
    "terms_of_use_text",
    "distributions",
]
# What a steward reads when a mandatory field is empty at submission: what to do, in their words.
REQUIRED_MESSAGES = {
    "title": "Give the dataset a title.",
    "description": "Describe the dataset: who is in it and what it holds.",
    "contact_email": "Give an e-mail address researchers can write to about the data.",
    "indications": "Tick at least one cancer indication.",
    "data_categories": "Tick at least one kind of data the dataset holds.",
    "country": "Choose the country the data comes from.",
    "access_rights": "Choose whether the data is public or not.",
    "access_modes": "Tick at least one way researchers may use the data.",
    "legal_basis": "Choose the legal basis under which the data may be used.",
    "terms_of_use_text": "Write the terms researchers accept before using the data.",
    "distributions": (
        "Give the identifier of the hospital's OPTIMA node, so researchers can analyse the data."
    ),
}
RECOMMENDED = [
    "keywords",
    "contact_name",
    "population_coverage",
    "number_of_individuals",
    "number_of_records",
    "min_typical_age",
    "max_typical_age",
    "temporal_start",
    "temporal_end",
    "update_frequency",
    "last_refreshed",
    "cdm_version",
    "vocabulary_version",
    "coding_systems",
    "purposes",
    "applicable_legislation",
    "data_access_committee",
]

LABELS = {
    "title": "Title",
    "description": "Description",
    "keywords": "Keywords",
    "contact_name": "Contact name",
    "contact_email": "Contact e-mail",
    "indications": "Cancer indications",
    "data_categories": "Data categories",
    "population_coverage": "Population coverage",
    "number_of_individuals": "Number of unique individuals",
    "number_of_records": "Number of records",
    "min_typical_age": "Minimum typical age",
    "max_typical_age": "Maximum typical age",
    "temporal_start": "Temporal coverage start",
    "temporal_end": "Temporal coverage end",
    "country": "Country",
    "update_frequency": "Update frequency",
    "last_refreshed": "Date of last refresh",
    "cdm_version": "OMOP CDM version",
    "vocabulary_version": "Vocabulary version",
    "coding_systems": "Coding systems",
    "access_rights": "Access rights",
    "access_modes": "Access modes",
    "legal_basis": "Legal basis",
    "purposes": "Purposes",
    "applicable_legislation": "Applicable legislation",
    "data_access_committee": "Data access committee",
    "terms_of_use_text": "Terms of use",
    "terms_min_cell_count": "Minimum cell count (terms of use)",
    "distributions": "Distributions",
    "publisher": "Publisher",
    "dataset_type": "Dataset type",
    "health_categories": "Health categories (EHDS)",
    "provenance": "Provenance",
    "hdab": "Health data access body",
}
CHOICE_LABELS = {
    "access_modes": dict(AccessMode.choices),
    "data_categories": dict(DataCategory.choices),
    "coding_systems": dict(CodingSystem.choices),
    "applicable_legislation": dict(Legislation.choices),
    "health_categories": dict(HealthCategory.choices),
}


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def snapshot(dataset: Dataset) -> dict[str, Any]:
    """The working copy as JSON-ready data (uses prefetched indications and distributions)."""
    data: dict[str, Any] = {"identifier": dataset.identifier}
    for name in SCALAR_FIELDS:
        data[name] = getattr(dataset, name)
    for name in DATE_FIELDS:
        data[name] = _iso(getattr(dataset, name))
    for name in LIST_FIELDS:
        data[name] = list(getattr(dataset, name) or [])
    data["country"] = str(dataset.country or "")
    data["publisher"] = dataset.publisher.slug
    for name in ORGANISATION_FIELDS:
        org = getattr(dataset, name) if getattr(dataset, f"{name}_id") else None
        data[name] = org.slug if org is not None else None
    data["indications"] = sorted(i.code for i in dataset.indications.all())
    data["distributions"] = [
        {k: getattr(d, k) for k in DISTRIBUTION_FIELDS}
        for d in sorted(dataset.distributions.all(), key=lambda d: (d.kind, d.title))
    ]
    return data


def apply(dataset: Dataset, data: dict[str, Any]) -> None:
    """Write a snapshot back into the working copy (restore). The dataset must be saved already."""
    for name in SCALAR_FIELDS:
        if name in data:
            value = data[name]
            setattr(dataset, name, "" if value is None and name not in _NULLABLE else value)
    for name in DATE_FIELDS:
        if name in data:
            setattr(dataset, name, date.fromisoformat(data[name]) if data[name] else None)
    for name in LIST_FIELDS:
        if name in data:
            setattr(dataset, name, list(data[name] or []))
    if "country" in data:
        dataset.country = data["country"] or ""
    for name in ORGANISATION_FIELDS:
        if name in data:
            slug = data[name]
            setattr(dataset, name, Organisation.objects.filter(slug=slug).first() if slug else None)
    if "data_access_committee" in data and (problem := dataset.committee_error()):
        raise ValidationError({"data_access_committee": [problem]})
    dataset.save()
    if "indications" in data:
        dataset.indications.set(CancerIndication.objects.filter(code__in=data["indications"]))
    if "distributions" in data:
        dataset.distributions.all().delete()
        Distribution.objects.bulk_create(
            [Distribution(dataset=dataset, **d) for d in data["distributions"]]
        )


def fields_from_snapshot(
    data: dict[str, Any],
) -> tuple[dict[str, Any], list[CancerIndication], list[dict[str, Any]]]:
    """A snapshot as the arguments of the lifecycle services (``dataset_create``/``_update``):
    model field values, indications and distribution rows. Unknown slugs and codes are left out
    (the importer checks organisations before it gets here)."""
    fields: dict[str, Any] = {}
    for name in SCALAR_FIELDS:
        value = data.get(name)
        fields[name] = "" if value is None and name not in _NULLABLE else value
    for name in DATE_FIELDS:
        fields[name] = date.fromisoformat(data[name]) if data.get(name) else None
    for name in LIST_FIELDS:
        fields[name] = list(data.get(name) or [])
    fields["country"] = data.get("country") or ""
    for name in ORGANISATION_FIELDS:
        slug = data.get(name)
        fields[name] = Organisation.objects.filter(slug=slug).first() if slug else None
    indications = list(CancerIndication.objects.filter(code__in=data.get("indications") or []))
    distributions = [dict(d) for d in data.get("distributions") or []]
    return fields, indications, distributions


_NULLABLE = {
    "number_of_individuals",
    "number_of_records",
    "min_typical_age",
    "max_typical_age",
    "terms_min_cell_count",
}


def _filled(value: Any) -> bool:
    return value not in (None, "", [], {})


@dataclass(frozen=True)
class Completeness:
    score: int  # 0..100
    mandatory_missing: list[str]
    recommended_missing: list[str]

    @property
    def mandatory_missing_labels(self) -> list[str]:
        return [LABELS[f] for f in self.mandatory_missing]

    @property
    def recommended_missing_labels(self) -> list[str]:
        return [LABELS[f] for f in self.recommended_missing]


def completeness(data: dict[str, Any]) -> Completeness:
    """Mandatory fields weigh twice as much as recommended ones."""
    mandatory_missing = [f for f in MANDATORY if not _filled(data.get(f))]
    recommended_missing = [f for f in RECOMMENDED if not _filled(data.get(f))]
    total = 2 * len(MANDATORY) + len(RECOMMENDED)
    got = 2 * (len(MANDATORY) - len(mandatory_missing)) + (
        len(RECOMMENDED) - len(recommended_missing)
    )
    return Completeness(round(100 * got / total), mandatory_missing, recommended_missing)


def display(name: str, value: Any) -> str:
    """A human-readable rendering of one snapshot value (for the diff and the dataset page)."""
    if value in (None, "", []):
        return "—"
    if name in CHOICE_LABELS and isinstance(value, list):
        return ", ".join(CHOICE_LABELS[name].get(v, v) for v in value)
    if name == "terms_min_cell_count":
        return f"No cell below {value} individuals"
    if name == "distributions":
        return "; ".join(f"{d['title']} ({d['kind']})" for d in value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class Change:
    field: str
    label: str
    old: str
    new: str


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Field-by-field differences, in the order of the form."""
    order = [*SCALAR_FIELDS, *DATE_FIELDS, *LIST_FIELDS]
    order += ["country", "indications", *ORGANISATION_FIELDS, "distributions"]
    return [
        Change(
            name, LABELS.get(name, name), display(name, old.get(name)), display(name, new.get(name))
        )
        for name in order
        if old.get(name) != new.get(name)
    ]


DISPLAY_ORDER = [
    "description",
    "keywords",
    "indications",
    "data_categories",
    "health_categories",
    "dataset_type",
    "population_coverage",
    "number_of_individuals",
    "number_of_records",
    "min_typical_age",
    "max_typical_age",
    "temporal_start",
    "temporal_end",
    "country",
    "update_frequency",
    "last_refreshed",
    "cdm_version",
    "vocabulary_version",
    "coding_systems",
    "provenance",
    "access_rights",
    "access_modes",
    "legal_basis",
    "purposes",
    "applicable_legislation",
    "data_access_committee",
    "hdab",
    "contact_name",
    "contact_email",
    "terms_of_use_text",
    "terms_min_cell_count",
    "distributions",
]


def rows(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field, label, shown value) for the dataset page, with choice codes turned into labels."""
    from django_countries import countries

    from .models import AccessRights, CancerIndication, CdmVersion, LegalBasis, UpdateFrequency

    labels = {
        "update_frequency": dict(UpdateFrequency.choices),
        "cdm_version": dict(CdmVersion.choices),
        "access_rights": dict(AccessRights.choices),
        "legal_basis": dict(LegalBasis.choices),
        "dataset_type": dict(DatasetType.choices),
    }
    indication_names = dict(CancerIndication.objects.values_list("code", "name"))
    org_names = dict(Organisation.objects.values_list("slug", "name"))
    result = []
    for name in DISPLAY_ORDER:
        value = data.get(name)
        if name in labels and value:
            shown = str(labels[name].get(value, value))
        elif name == "country" and value:
            shown = str(countries.name(value) or value)
        elif name == "indications":
            shown = ", ".join(indication_names.get(c, c) for c in value or []) or "—"
        elif name in ORGANISATION_FIELDS and value:
            shown = org_names.get(value, value)
        else:
            shown = display(name, value)
        result.append((name, LABELS[name], shown))
    return result
