"""Demo catalogue: twelve published datasets across the four demo hospitals and one draft each.

Created through the services (so the audit trail and versions are real) by each hospital's data
steward and published by the demo curator. Idempotent: datasets are keyed by fixed identifiers.
"""

from __future__ import annotations

import datetime as dt
import importlib

from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.models import Organisation

from . import notifications, services
from .models import CancerIndication, Dataset, DistributionKind

FA, FL, CC = "federated_analytics", "federated_learning", "central_copy"
GDPR = "http://data.europa.eu/eli/reg/2016/679/oj"
EHDS = "http://data.europa.eu/eli/reg/2025/327/oj"

TERMS = (
    "Results leave the hospital only as aggregates that pass the node's disclosure control "
    "(no cell below 10 individuals). Cite the providing hospital and the OPTIMA network in every "
    "publication. No attempt may be made to re-identify individuals."
)

# code, identifier suffix, title, description, keywords, indications, categories, modes, CDM,
# individuals, records, (min age, max age), start year, frequency
PUBLISHED = [
    (
        "de",
        "prostate-treatment",
        "Localised prostate cancer: prostatectomy and radiotherapy",
        "Men treated for localised prostate cancer with radical prostatectomy or radiotherapy, with "
        "PSA follow-up, pathology (Gleason/ISUP) and functional outcomes.",
        ["PSA", "prostatectomy", "radiotherapy", "ISUP grade"],
        ["prostate"],
        ["clinical", "pathology"],
        [FA, FL],
        "5.4",
        6800,
        2_400_000,
        (45, 85),
        2012,
        "QUARTERLY",
    ),
    (
        "de",
        "nsclc-immunotherapy",
        "Advanced NSCLC treated with immune checkpoint inhibitors",
        "Stage IIIB–IV non-small cell lung cancer patients receiving first-line immunotherapy alone or "
        "with chemotherapy; PD-L1 status, lines of therapy and overall survival.",
        ["immunotherapy", "PD-L1", "pembrolizumab", "overall survival"],
        ["nsclc"],
        ["clinical", "pathology"],
        [FA, FL],
        "5.4",
        2150,
        910_000,
        (38, 88),
        2016,
        "MONTHLY",
    ),
    (
        "de",
        "breast-genomics",
        "Breast cancer pathology and tumour genomics",
        "Early and metastatic breast cancer with receptor status, Ki-67 and gene-expression "
        "signatures linked to treatment and recurrence.",
        ["HER2", "hormone receptor", "gene expression"],
        ["breast"],
        ["clinical", "pathology", "omics"],
        [FA],
        "5.4",
        3900,
        1_300_000,
        (25, 90),
        2014,
        "ANNUAL",
    ),
    (
        "fr",
        "breast-registry",
        "Breast cancer screening and treatment registry",
        "Women diagnosed after organised screening or symptoms, with surgery, radiotherapy, systemic "
        "treatment and five-year outcomes.",
        ["screening", "mammography", "adjuvant therapy"],
        ["breast"],
        ["clinical", "imaging"],
        [FA, CC],
        "5.3",
        12400,
        5_800_000,
        (40, 80),
        2010,
        "QUARTERLY",
    ),
    (
        "fr",
        "lung-outcomes",
        "Lung cancer real-world outcomes (NSCLC and SCLC)",
        "All lung cancers diagnosed at the hospital: histology, stage, EGFR/ALK testing, treatments "
        "and survival.",
        ["EGFR", "ALK", "survival", "staging"],
        ["nsclc", "sclc"],
        ["clinical", "pathology"],
        [FA],
        "5.3",
        4300,
        1_900_000,
        (40, 90),
        2013,
        "QUARTERLY",
    ),
    (
        "fr",
        "mcrpc-sequences",
        "Metastatic prostate cancer: hormone therapy sequences",
        "Metastatic hormone-sensitive and castration-resistant prostate cancer with sequences of "
        "androgen-receptor pathway inhibitors, docetaxel and radioligand therapy.",
        ["mCRPC", "abiraterone", "enzalutamide", "treatment sequence"],
        ["prostate"],
        ["clinical"],
        [FA, FL],
        "5.3",
        1850,
        640_000,
        (50, 92),
        2015,
        "QUARTERLY",
    ),
    (
        "nl",
        "breast-proms",
        "Early breast cancer with patient-reported outcomes",
        "Early breast cancer treated with curative intent, with EORTC QLQ-C30/BR23 questionnaires "
        "before and after treatment.",
        ["quality of life", "EORTC QLQ-C30", "PROMs"],
        ["breast"],
        ["clinical", "patient_reported"],
        [FA, FL],
        "5.4",
        5200,
        1_700_000,
        (28, 85),
        2017,
        "MONTHLY",
    ),
    (
        "nl",
        "sclc-cohort",
        "Small cell lung cancer cohort",
        "Limited and extensive-stage small cell lung cancer with chemo-immunotherapy, prophylactic "
        "cranial irradiation and survival.",
        ["chemo-immunotherapy", "extensive stage"],
        ["sclc"],
        ["clinical"],
        [FA],
        "5.4",
        640,
        210_000,
        (45, 85),
        2015,
        "ANNUAL",
    ),
    (
        "nl",
        "prostate-mri",
        "Prostate MRI and biopsy cohort",
        "Men referred with suspected prostate cancer: PI-RADS scored MRI, targeted and systematic "
        "biopsies and subsequent treatment.",
        ["MRI", "PI-RADS", "biopsy"],
        ["prostate"],
        ["clinical", "imaging", "pathology"],
        [FA, FL],
        "5.4",
        3100,
        800_000,
        (45, 80),
        2018,
        "MONTHLY",
    ),
    (
        "se",
        "lung-imaging",
        "Regional lung cancer cohort with CT imaging",
        "Lung cancer patients of the northern region with baseline and follow-up CT reports, "
        "treatments and survival.",
        ["CT", "radiomics", "regional cohort"],
        ["nsclc"],
        ["clinical", "imaging"],
        [FL, FA],
        "5.4",
        2700,
        1_100_000,
        (40, 90),
        2014,
        "QUARTERLY",
    ),
    (
        "se",
        "prostate-population",
        "Prostate cancer population cohort",
        "All prostate cancers of the region with diagnostics, risk group, primary treatment and "
        "long-term follow-up.",
        ["risk group", "active surveillance", "long-term follow-up"],
        ["prostate"],
        ["clinical"],
        [CC, FA],
        "5.3",
        9800,
        3_600_000,
        (45, 95),
        2008,
        "ANNUAL",
    ),
    (
        "se",
        "breast-adjuvant",
        "Breast cancer adjuvant therapy cohort",
        "Operated breast cancer with adjuvant endocrine, chemotherapy and anti-HER2 treatments and "
        "recurrence-free survival.",
        ["adjuvant", "endocrine therapy", "trastuzumab"],
        ["breast"],
        ["clinical", "pathology"],
        [FA],
        "5.4",
        4450,
        1_500_000,
        (30, 88),
        2011,
        "QUARTERLY",
    ),
]

DRAFTS = [
    ("de", "lung-radiotherapy-draft", "Lung cancer radiotherapy toxicity", ["nsclc"]),
    ("fr", "breast-imaging-draft", "Breast cancer imaging archive", ["breast"]),
    ("nl", "nsclc-targeted-draft", "NSCLC targeted therapy cohort", ["nsclc"]),
    ("se", "prostate-surveillance-draft", "Prostate cancer active surveillance", ["prostate"]),
]


def _distributions(slug: str) -> list[dict]:
    return [
        {
            "kind": DistributionKind.FEDERATED_OMOP,
            "title": "Federated OMOP CDM database",
            "description": "Queried in place through the hospital's OPTIMA node.",
            "access_url": "",
            # The federation demo's node of the site ("de-hospital/de-omop"), as the form names it.
            "node_ref": f"{slug}/{slug.split('-')[0]}-omop",
        },
        {
            "kind": DistributionKind.DOCUMENTATION,
            "title": "OMOP CDM documentation",
            "description": "",
            "access_url": "https://ohdsi.github.io/CommonDataModel/",
            "node_ref": None,
        },
    ]


def seed(stdout=None) -> list[Dataset]:
    with notifications.muted(), transaction.atomic():
        created = _seed()
    if stdout:
        stdout.write(
            f"Catalogue: {Dataset.objects.exclude(current_version=None).count()} published datasets, "
            f"{Dataset.objects.filter(current_version=None).count()} drafts ({len(created)} new)."
        )
    return created


def _ensure_indications() -> None:
    """The hierarchy comes from a data migration; a flushed test database no longer has it."""
    from django.apps import apps

    migration = importlib.import_module("catalogue.migrations.0002_indications_and_search_index")
    migration.seed_indications(apps, None)


def _seed() -> list[Dataset]:
    _ensure_indications()
    users = get_user_model().objects
    curator = users.filter(username="curator").first()
    indications = {i.code: i for i in CancerIndication.objects.all()}
    created = []
    for row in PUBLISHED:
        code, suffix, title, description, keywords, codes, categories, modes, cdm = row[:9]
        individuals, records, (min_age, max_age), start, frequency = row[9:]
        org = Organisation.objects.filter(slug=f"{code}-hospital").first()
        steward = users.filter(username=f"steward.{code}").first()
        identifier = f"optima-{code}-{suffix}"
        if org is None or steward is None or Dataset.objects.filter(identifier=identifier).exists():
            continue
        dataset = services.dataset_create(
            user=steward,
            publisher=org,
            identifier=identifier,
            data={
                "title": title,
                "description": description,
                "keywords": keywords,
                "contact_name": f"Data office, {org.name}",
                "contact_email": f"data-office@{code}-hospital.demo.optima.local",
                "data_categories": categories,
                "population_coverage": f"Patients treated at {org.name} since {start}.",
                "number_of_individuals": individuals,
                "number_of_records": records,
                "min_typical_age": min_age,
                "max_typical_age": max_age,
                "temporal_start": dt.date(start, 1, 1),
                "temporal_end": dt.date(2026, 9, 30),
                "country": str(org.country),
                "update_frequency": frequency,
                "last_refreshed": dt.date(2026, 10, 1),
                "cdm_version": cdm,
                "vocabulary_version": "v5.0 31-AUG-24" if cdm == "5.4" else "v5.0 28-FEB-23",
                "coding_systems": ["snomed_ct", "icd10", "icdo3", "loinc", "rxnorm", "atc"],
                # Patient-level data: non-public at every hospital (access through a permit).
                "access_rights": "NON_PUBLIC",
                "access_modes": modes,
                "legal_basis": "gdpr_9_2_j",
                "purposes": "Scientific research and quality of care in oncology.",
                "applicable_legislation": [GDPR, EHDS],
                "data_access_committee": org,
                "hdab": org,
                "dataset_type": "STATISTICAL",
                "health_categories": sorted(
                    {
                        "HGPD" if c == "omics" else "RQSH" if c == "patient_reported" else "EHRS"
                        for c in categories
                    }
                ),
                "provenance": (
                    f"Extracted nightly from the electronic health record, pathology and pharmacy "
                    f"systems of {org.name}, pseudonymised and transformed to OMOP CDM {cdm} by the "
                    "hospital's ETL (mapping documented in its ETL specification); refreshed "
                    f"{frequency.lower()}."
                ),
                "terms_of_use_text": TERMS,
            },
            indications=[indications[c] for c in codes if c in indications],
            distributions=_distributions(org.slug),
        )
        if curator is not None:
            services.dataset_submit(user=steward, dataset=dataset)
            services.dataset_publish(user=curator, dataset=dataset, notes="First publication.")
        created.append(dataset)
    for code, suffix, title, codes in DRAFTS:
        org = Organisation.objects.filter(slug=f"{code}-hospital").first()
        steward = users.filter(username=f"steward.{code}").first()
        identifier = f"optima-{code}-{suffix}"
        if org is None or steward is None or Dataset.objects.filter(identifier=identifier).exists():
            continue
        created.append(
            services.dataset_create(
                user=steward,
                publisher=org,
                identifier=identifier,
                data={
                    "title": title,
                    "description": "Work in progress: the cohort definition is being validated.",
                    "keywords": [],
                    "access_modes": [FA],
                    "access_rights": "NON_PUBLIC",
                },
                indications=[indications[c] for c in codes if c in indications],
            )
        )
    return created
