"""Factories for governance tests: published datasets, agreements and requests in a given state."""

from __future__ import annotations

from datetime import date, timedelta

import factory
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from catalogue.models import Dataset, DatasetVersion, Status, TermsOfUse
from governance import services
from governance.default_templates import DEFAULTS
from governance.models import (
    Agreement,
    AgreementKind,
    AgreementParty,
    AgreementStatus,
    AgreementTemplate,
    PartyRole,
)

PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


class AgreementTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgreementTemplate

    kind = AgreementKind.DATA_ACCESS_USE
    version = factory.Sequence(lambda n: n + 1)
    title = factory.LazyAttribute(lambda t: DEFAULTS[t.kind][0])
    body = factory.LazyAttribute(lambda t: DEFAULTS[t.kind][1])


def published_dataset(
    publisher,
    *,
    title: str = "Lung cancer cohort",
    modes=("federated_analytics", "federated_learning"),
    terms_text: str = "Use for cancer research only.",
    dac=None,
) -> Dataset:
    dataset = Dataset.objects.create(
        publisher=publisher,
        title=title,
        description=f"{title} description",
        access_modes=list(modes),
        terms_of_use_text=terms_text,
        data_access_committee=dac,
    )
    return publish_version(dataset, terms_text=terms_text)


def publish_version(dataset: Dataset, *, terms_text: str | None = None) -> Dataset:
    """A new published version; a changed terms text makes a new terms-of-use version."""
    terms = None
    text = terms_text if terms_text is not None else dataset.terms_of_use_text
    if text:
        latest = dataset.terms_versions.order_by("-version").first()
        terms = (
            latest
            if latest and latest.text == text
            else TermsOfUse.objects.create(
                dataset=dataset, version=(latest.version + 1 if latest else 1), text=text
            )
        )
    number = dataset.versions.count() + 1
    version = DatasetVersion.objects.create(
        dataset=dataset,
        number=number,
        published_at=timezone.now(),
        metadata={},
        terms_of_use=terms,
        is_listed=True,
        publisher=dataset.publisher,
        title=dataset.title,
        description=dataset.description,
        access_modes=list(dataset.access_modes),
    )
    DatasetVersion.objects.filter(dataset=dataset).exclude(pk=version.pk).update(is_listed=False)
    dataset.current_version = version
    dataset.status = Status.PUBLISHED
    dataset.terms_of_use_text = text or ""
    dataset.save()
    return Dataset.objects.select_related("current_version").get(pk=dataset.pk)


def active_agreement(
    custodian,
    user_org,
    *,
    kind=AgreementKind.DATA_ACCESS_USE,
    datasets=(),
    expiry: date | None = None,
) -> Agreement:
    """An active agreement made directly (the signing flow has its own tests)."""
    template = AgreementTemplate.objects.filter(kind=kind).first() or AgreementTemplateFactory(
        kind=kind
    )
    today = timezone.localdate()
    agreement = Agreement.objects.create(
        template=template,
        kind=kind,
        title=f"{custodian} – {user_org}",
        effective_date=today - timedelta(days=30),
        expiry_date=expiry or today + timedelta(days=365),
        status=AgreementStatus.ACTIVE,
        activated_at=timezone.now(),
    )
    agreement.lineage = agreement
    agreement.save(update_fields=["lineage"])
    AgreementParty.objects.create(
        agreement=agreement, organisation=custodian, role=PartyRole.CONTROLLER
    )
    AgreementParty.objects.create(
        agreement=agreement, organisation=user_org, role=PartyRole.DATA_USER
    )
    agreement.datasets.set(datasets)
    return agreement


def ethics_pdf(name: str = "ethics.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, PDF_BYTES, content_type="application/pdf")


def complete_draft(researcher, datasets, *, team=(), end_in_days: int = 180, **overrides):
    """A draft access request with every field filled, terms accepted and the ethics file uploaded."""
    fields = {
        "research_question": "Does treatment A improve survival in NSCLC?",
        "lay_summary": "We compare how long patients live after two treatments.",
        "purpose": "DUO:0000007",
        "requested_end_date": timezone.localdate() + timedelta(days=end_in_days),
        "ethics_reference": "EC-2026-042",
    }
    fields.update(overrides)
    access_request = services.access_request_create(
        actor=researcher,
        project_title="Survival after first-line therapy",
        datasets=[(d, "federated_analytics", True) for d in datasets],
        team_members=list(team),
        **fields,
    )
    services.attachment_add(
        actor=researcher, access_request=access_request, kind="ethics_approval", upload=ethics_pdf()
    )
    return access_request
