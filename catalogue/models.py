"""The dataset catalogue: HealthDCAT-AP dataset descriptions, their lifecycle and published versions.

A ``Dataset`` holds the stable identity (identifier, publisher) and the *working copy* of its
metadata, which stewards edit. Publishing freezes the working copy into an immutable
``DatasetVersion`` (a JSON snapshot plus the few columns search and facets need), so readers always
see the published version while a new draft is being prepared.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django_countries.fields import CountryField

from accounts.models import Organisation

EU_AUTHORITY = "http://publications.europa.eu/resource/authority"


class Status(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted for review"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    PUBLISHED = "published", "Published"
    RETIRED = "retired", "Retired"


class AccessMode(models.TextChoices):
    # Other apps (governance, federation) depend on exactly these three codes.
    FEDERATED_ANALYTICS = "federated_analytics", "Federated analytics"
    FEDERATED_LEARNING = "federated_learning", "Federated learning"
    CENTRAL_COPY = "central_copy", "Central copy"


class DataCategory(models.TextChoices):
    CLINICAL = "clinical", "Clinical"
    IMAGING = "imaging", "Imaging"
    OMICS = "omics", "Omics"
    PATHOLOGY = "pathology", "Pathology"
    PATIENT_REPORTED = "patient_reported", "Patient-reported outcomes"


class CodingSystem(models.TextChoices):
    SNOMED_CT = "snomed_ct", "SNOMED CT"
    ICD10 = "icd10", "ICD-10"
    ICDO3 = "icdo3", "ICD-O-3"
    LOINC = "loinc", "LOINC"
    RXNORM = "rxnorm", "RxNorm"
    ATC = "atc", "ATC"


class AccessRights(models.TextChoices):
    # The two levels of HealthDCAT-AP (EU access-right table): patient-level health data is
    # NON_PUBLIC (access through a permit); PUBLIC is for data anyone may use (e.g. aggregates).
    NON_PUBLIC = "NON_PUBLIC", "Non-public"
    PUBLIC = "PUBLIC", "Public"


class DatasetType(models.TextChoices):
    # Codes of the EU "dataset-type" authority table that fit the network's datasets.
    STATISTICAL = "STATISTICAL", "Statistical data (records of individuals or aggregates)"
    SYNTHETIC_DATA = "SYNTHETIC_DATA", "Synthetic data"
    TEST_DATA = "TEST_DATA", "Test data"


class HealthCategory(models.TextChoices):
    # Codes of the EHDS health-category table (Article 51 of Regulation (EU) 2025/327) that the
    # network's OMOP datasets fall under.
    EHRS = "EHRS", "Electronic health records"
    HGPD = "HGPD", "Human genetic, epigenomic and genomic data"
    HPML = "HPML", "Other human molecular data (proteomic, metabolomic, lipidomic)"
    RQSH = "RQSH", "Research cohorts, questionnaires and surveys related to health"
    PHDR = "PHDR", "Population-based public health registries"
    MRMR = "MRMR", "Medical and mortality registries"
    EHCT = "EHCT", "Clinical trials, clinical studies and investigations"


class UpdateFrequency(models.TextChoices):
    # Codes of the EU "frequency" authority table.
    DAILY = "DAILY", "Daily"
    WEEKLY = "WEEKLY", "Weekly"
    MONTHLY = "MONTHLY", "Monthly"
    QUARTERLY = "QUARTERLY", "Quarterly"
    ANNUAL = "ANNUAL", "Annual"
    IRREG = "IRREG", "Irregular"


class CdmVersion(models.TextChoices):
    V5_3 = "5.3", "OMOP CDM 5.3"
    V5_4 = "5.4", "OMOP CDM 5.4"


class LegalBasis(models.TextChoices):
    ART_6_1_E = "gdpr_6_1_e", "GDPR Art. 6(1)(e) public task"
    ART_6_1_A = "gdpr_6_1_a", "GDPR Art. 6(1)(a) consent"
    ART_9_2_J = "gdpr_9_2_j", "GDPR Art. 9(2)(j) scientific research"
    ART_9_2_A = "gdpr_9_2_a", "GDPR Art. 9(2)(a) explicit consent"
    ART_9_2_I = "gdpr_9_2_i", "GDPR Art. 9(2)(i) public interest in public health"


class Legislation(models.TextChoices):
    # ELI identifiers of the EU legal acts, as HealthDCAT-AP's applicableLegislation expects.
    GDPR = "http://data.europa.eu/eli/reg/2016/679/oj", "GDPR (Regulation (EU) 2016/679)"
    EHDS = "http://data.europa.eu/eli/reg/2025/327/oj", "EHDS (Regulation (EU) 2025/327)"
    DGA = "http://data.europa.eu/eli/reg/2022/868/oj", "Data Governance Act (EU) 2022/868"


def default_legislation() -> list[str]:
    """The EHDS regulation: every dataset of the network is made available under it."""
    return [Legislation.EHDS.value]


# Access mode code -> the object permission (Dataset.Meta.permissions) that grants it; governance
# assigns them with django-guardian while an entitlement is active, catalogue.permissions reads them.
PERMISSION_FOR_MODE = {
    "federated_analytics": "catalogue.run_federated_analysis",
    "federated_learning": "catalogue.run_federated_learning",
    "central_copy": "catalogue.access_central_copy",
}


class CancerIndication(models.Model):
    """A node of the indication hierarchy (solid tumours → lung → NSCLC …); admins may add more."""

    code = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    uri = models.URLField("concept URI", blank=True, help_text="e.g. a SNOMED CT concept URI")
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        node, seen = self.parent, set()
        while node is not None:
            if node.pk == self.pk or node.pk in seen:
                raise ValidationError({"parent": "An indication cannot be its own ancestor."})
            seen.add(node.pk)
            node = node.parent


def new_identifier() -> str:
    return f"optima-{uuid.uuid4().hex[:12]}"


class Dataset(models.Model):
    """Identity of a dataset plus the working copy of its metadata (what stewards edit)."""

    identifier = models.CharField(
        max_length=200, unique=True, default=new_identifier, help_text="Stable, never reused."
    )
    publisher = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="datasets")
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    current_version = models.OneToOneField(
        "DatasetVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="current_of",
        help_text="The version readers see; empty until first published.",
    )

    # --- working copy ("draft fields") ---------------------------------------------------------
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)  # required on submission, not for a draft
    keywords = models.JSONField(default=list, blank=True)
    contact_name = models.CharField(max_length=200, blank=True)
    contact_email = models.EmailField(blank=True)
    indications = models.ManyToManyField(CancerIndication, blank=True, related_name="datasets")
    data_categories = models.JSONField(default=list, blank=True)
    population_coverage = models.TextField(blank=True)
    number_of_individuals = models.PositiveIntegerField(null=True, blank=True)
    number_of_records = models.PositiveBigIntegerField(null=True, blank=True)
    min_typical_age = models.PositiveSmallIntegerField(null=True, blank=True)
    max_typical_age = models.PositiveSmallIntegerField(null=True, blank=True)
    temporal_start = models.DateField(null=True, blank=True)
    temporal_end = models.DateField(null=True, blank=True)
    country = CountryField(blank=True)
    update_frequency = models.CharField(max_length=20, choices=UpdateFrequency.choices, blank=True)
    last_refreshed = models.DateField("date of last refresh", null=True, blank=True)
    cdm_version = models.CharField(
        "OMOP CDM version", max_length=10, choices=CdmVersion.choices, blank=True
    )
    vocabulary_version = models.CharField(max_length=100, blank=True)
    coding_systems = models.JSONField(default=list, blank=True)
    access_rights = models.CharField(
        max_length=20, choices=AccessRights.choices, default=AccessRights.NON_PUBLIC
    )
    access_modes = models.JSONField(
        default=list, blank=True, help_text="Codes of AccessMode offered for this dataset."
    )
    legal_basis = models.CharField(max_length=20, choices=LegalBasis.choices, blank=True)
    purposes = models.TextField(blank=True)
    applicable_legislation = models.JSONField(default=default_legislation, blank=True)
    # --- HealthDCAT-AP (empty values are exported with the defaults of catalogue.rdf) -----------
    dataset_type = models.CharField(
        max_length=30, choices=DatasetType.choices, default=DatasetType.STATISTICAL, blank=True
    )
    health_categories = models.JSONField(
        default=list, blank=True, help_text="Codes of the EHDS health categories (HealthCategory)."
    )
    provenance = models.TextField(
        blank=True, help_text="Where the data comes from and how it was transformed (the ETL)."
    )
    hdab = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="hdab_datasets",
        verbose_name="health data access body",
    )
    data_access_committee = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="dac_datasets",
    )
    terms_of_use_text = models.TextField("terms of use", blank=True)
    # The terms' disclosure rule as a number, not prose: federated results never release a
    # count of 1 … N − 1 individuals (the strictest of this and each node's own policy applies).
    terms_min_cell_count = models.PositiveSmallIntegerField(
        "minimum cell count",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="No released count below this number of individuals (federated analyses).",
    )
    # The data provider's promise: a new database profile at least this often (freshness).
    update_interval_days = models.PositiveIntegerField(
        "agreed update interval (days)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(3660)],
        help_text="How often the data provider agreed to refresh the data behind the dataset.",
    )
    version_notes = models.TextField(blank=True, help_text="Notes for the next published version.")

    # --- review bookkeeping ---------------------------------------------------------------------
    review_comment = models.TextField(blank=True)
    validation_report = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        permissions = [
            ("run_federated_analysis", "Run federated analyses on the dataset"),
            ("run_federated_learning", "Run federated learning on the dataset"),
            ("access_central_copy", "Access a central copy of the dataset"),
        ]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        errors = {}
        if (
            self.min_typical_age is not None
            and self.max_typical_age is not None
            and self.min_typical_age > self.max_typical_age
        ):
            errors["max_typical_age"] = "The maximum age must not be below the minimum age."
        if self.temporal_start and self.temporal_end and self.temporal_start > self.temporal_end:
            errors["temporal_end"] = "The end of the coverage must not be before its start."
        unknown = set(self.access_modes or []) - set(AccessMode.values)
        if unknown:
            errors["access_modes"] = f"Unknown access modes: {', '.join(sorted(unknown))}."
        unknown = set(self.data_categories or []) - set(DataCategory.values)
        if unknown:
            errors["data_categories"] = f"Unknown data categories: {', '.join(sorted(unknown))}."
        unknown = set(self.coding_systems or []) - set(CodingSystem.values)
        if unknown:
            errors["coding_systems"] = f"Unknown coding systems: {', '.join(sorted(unknown))}."
        unknown = set(self.health_categories or []) - set(HealthCategory.values)
        if unknown:
            errors["health_categories"] = (
                f"Unknown health categories: {', '.join(sorted(unknown))}."
            )
        committee = self.committee_error()
        if committee:
            errors["data_access_committee"] = committee
        if errors:
            raise ValidationError(errors)

    def committee_error(self) -> str | None:
        """Only the publisher's own committee or one the publisher designates may decide on its
        data (Organisation.designated_committees); checked on every write of the dataset."""
        if self.data_access_committee_id is None or self.publisher_id is None:
            return None
        if self.publisher.designates(self.data_access_committee_id):
            return None
        return (
            f"{self.data_access_committee} is not a data access committee {self.publisher} "
            f"designates: choose {self.publisher} itself or a committee it designates."
        )

    @property
    def is_public(self) -> bool:
        return self.current_version_id is not None and self.status != Status.RETIRED

    @property
    def is_editable(self) -> bool:
        return self.status in (Status.DRAFT, Status.CHANGES_REQUESTED, Status.PUBLISHED)

    @property
    def published_min_cell_count(self) -> int | None:
        """The minimum cell count of the published terms of use (what analyses must honour)."""
        terms = self.current_terms_of_use
        return terms.min_cell_count if terms is not None else None

    @property
    def current_terms_of_use(self) -> TermsOfUse | None:
        """The terms of use of the published version (what an access request agrees to)."""
        if self.current_version_id is None:
            return None
        return self.current_version.terms_of_use


class DatasetProfile(models.Model):
    """The database profile a data steward attached: measured by the nodes serving the dataset,
    released through their disclosure gates and the site admins' review, pooled by the portal
    (the shape of ``federation.kinds.profile.pool``). Operational, not part of the versioned
    metadata: a new profile does not make a new version."""

    dataset = models.OneToOneField(Dataset, on_delete=models.CASCADE, related_name="profile")
    data = models.JSONField()
    computed_at = models.DateTimeField(help_text="When the nodes' profile was completed.")
    source = models.CharField(
        max_length=200, blank=True, help_text="e.g. the analysis it came from"
    )
    # The date the data behind the dataset was last refreshed (the CDM source release date, or
    # else the newest record), and when the agreed update interval runs out after it.
    data_updated_on = models.DateField(null=True, blank=True)
    refresh_due_on = models.DateField(null=True, blank=True, db_index=True)
    overdue_notified_on = models.DateField(null=True, blank=True)
    attached_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    attached_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Profile of {self.dataset}"


class TermsOfUse(models.Model):
    """A version of a dataset's terms of use; a new one is made when publishing changes the text."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="terms_versions")
    version = models.PositiveIntegerField()
    text = models.TextField()
    min_cell_count = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "version"], name="one_terms_version")
        ]

    def __str__(self) -> str:
        return f"Terms of use v{self.version} of {self.dataset_id}"


class DatasetVersion(models.Model):
    """An immutable published snapshot. ``metadata`` is the whole description; the other columns
    repeat what search, facets and sorting need so the search page never reads JSON."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    published_at = models.DateTimeField(db_index=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    notes = models.TextField(blank=True)
    metadata = models.JSONField()
    terms_of_use = models.ForeignKey(
        TermsOfUse, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Listed = the dataset's current version and the dataset is not retired.
    is_listed = models.BooleanField(default=False)

    # --- search columns (copied from metadata at publish time) ----------------------------------
    publisher = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=300)
    description = models.TextField()
    keywords_text = models.TextField(blank=True)
    country = CountryField(blank=True)
    cdm_version = models.CharField(max_length=10, blank=True)
    access_modes = models.JSONField(default=list)
    data_categories = models.JSONField(default=list)
    indications = models.ManyToManyField(CancerIndication, blank=True, related_name="+")
    number_of_individuals = models.PositiveIntegerField(null=True, blank=True)
    # PostgreSQL only (its GIN index is made in the migration); stays empty on SQLite.
    search_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="one_version_number")
        ]
        indexes = [
            models.Index(fields=["is_listed", "-published_at"], name="cat_listed_recent"),
            models.Index(fields=["is_listed", "country"], name="cat_listed_country"),
            models.Index(fields=["is_listed", "cdm_version"], name="cat_listed_cdm"),
        ]

    def __str__(self) -> str:
        return f"{self.title} v{self.number}"


class DistributionKind(models.TextChoices):
    FEDERATED_OMOP = "federated_omop", "Federated OMOP database at a node"
    DOCUMENTATION = "documentation", "Documentation"


class Distribution(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="distributions")
    kind = models.CharField(max_length=20, choices=DistributionKind.choices)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    access_url = models.URLField(max_length=500, blank=True)
    # Free text (nullable, as agreed) until the federation app points this at its Node model.
    node_ref = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001

    class Meta:
        ordering = ["dataset", "kind", "title"]

    def __str__(self) -> str:
        return self.title


class SearchEntry(models.Model):
    """One row per listed version, holding only what search, facets and sorting read.

    Kept narrow so a search scans a few megabytes even at 50,000 datasets (the version rows carry
    the whole metadata JSON). Access modes and data categories are bit sets; ``indications`` holds
    each indication of the version *and all its ancestors*, so choosing "lung" is one lookup, and
    ``indication_key`` spells the same set as ``|1|4|9|`` so that every facet count comes from one
    GROUP BY over the matching entries (see ``selectors._facet_counts``). The text-search vector
    lives on the row too, so a free-text search filters, ranks and counts without a join.
    Maintained by ``catalogue.search_index``.
    """

    version = models.OneToOneField(
        DatasetVersion, on_delete=models.CASCADE, primary_key=True, related_name="search_entry"
    )
    publisher = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    published_at = models.DateTimeField()
    title = models.CharField(max_length=300)
    country = models.CharField(max_length=2, blank=True)
    cdm_version = models.CharField(max_length=10, blank=True)
    access_mode_bits = models.PositiveSmallIntegerField(default=0)
    category_bits = models.PositiveSmallIntegerField(default=0)
    number_of_individuals = models.PositiveIntegerField(null=True, blank=True)
    indications = models.ManyToManyField(CancerIndication, blank=True, related_name="+")
    indication_key = models.TextField(blank=True, default="")
    # PostgreSQL only (its GIN index is made in the migration); stays empty on SQLite, where search
    # falls back to word-prefix matching on the version's text.
    search_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["-published_at", "version"], name="cat_entry_recent"),
            # Covers the facet GROUP BY (without a text query it reads this index only) and, as
            # its first column, the country filter.
            models.Index(
                fields=[
                    "country",
                    "cdm_version",
                    "publisher",
                    "access_mode_bits",
                    "category_bits",
                    "indication_key",
                ],
                name="cat_entry_facets",
            ),
            models.Index(fields=["cdm_version"], name="cat_entry_cdm"),
        ]

    def __str__(self) -> str:
        return self.title
