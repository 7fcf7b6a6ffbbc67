"""Catalogue factories: a complete, valid working copy by default."""

from __future__ import annotations

import datetime

import factory

from catalogue import services
from catalogue.models import (
    CancerIndication,
    Dataset,
    Distribution,
    DistributionKind,
)

COMPLETE = {
    "title": "Lung cancer cohort",
    "description": "Patients diagnosed with lung cancer, harmonised to OMOP CDM.",
    "keywords": ["lung", "immunotherapy"],
    "contact_name": "Data Office",
    "contact_email": "data@hospital-a.example",
    "data_categories": ["clinical", "pathology"],
    "population_coverage": "All adults treated at the hospital since 2015.",
    "number_of_individuals": 4200,
    "number_of_records": 1_200_000,
    "min_typical_age": 40,
    "max_typical_age": 85,
    "temporal_start": datetime.date(2015, 1, 1),
    "temporal_end": datetime.date(2025, 12, 31),
    "update_frequency": "QUARTERLY",
    "last_refreshed": datetime.date(2026, 10, 1),
    "cdm_version": "5.4",
    "vocabulary_version": "v5.0 31-AUG-24",
    "coding_systems": ["snomed_ct", "icd10", "loinc"],
    "access_rights": "NON_PUBLIC",
    "access_modes": ["federated_analytics", "federated_learning"],
    "legal_basis": "gdpr_9_2_j",
    "purposes": "Scientific research on cancer outcomes.",
    "applicable_legislation": ["http://data.europa.eu/eli/reg/2016/679/oj"],
    "terms_of_use_text": "Results may only be published in aggregate.",
}

DISTRIBUTIONS = [
    {
        "kind": DistributionKind.FEDERATED_OMOP,
        "title": "OMOP database at the hospital node",
        "description": "",
        "access_url": "",
        "node_ref": "node-a",
    }
]


def indications(*codes: str) -> list[CancerIndication]:
    return list(CancerIndication.objects.filter(code__in=codes))


def make_draft(steward, publisher, *, codes=("nsclc",), **overrides) -> Dataset:
    """A complete draft created through the service, as a steward would."""
    data = {"data_access_committee": publisher, **COMPLETE, **overrides}
    return services.dataset_create(
        user=steward,
        publisher=publisher,
        data=data,
        indications=indications(*codes),
        distributions=[dict(d) for d in DISTRIBUTIONS],
    )


def make_published(steward, curator, publisher, **kwargs) -> Dataset:
    dataset = make_draft(steward, publisher, **kwargs)
    services.dataset_submit(user=steward, dataset=dataset)
    services.dataset_publish(user=curator, dataset=dataset, notes="First release.")
    dataset.refresh_from_db()
    return dataset


class DatasetFactory(factory.django.DjangoModelFactory):
    """A bare working copy (no lifecycle); use make_draft/make_published for real flows."""

    class Meta:
        model = Dataset

    title = factory.Sequence(lambda n: f"Dataset {n}")
    description = "A dataset."


class DistributionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Distribution

    kind = DistributionKind.DOCUMENTATION
    title = "Documentation"
    access_url = "https://example.org/docs"
