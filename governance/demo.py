"""Demo governance data: an active Data Access and Use Agreement between each demo hospital and the
research institute (signed by the demo signatories), one approved request that gives ``researcher``
federated-analytics entitlements on several demo datasets, and one pending request.

Made through the services, so PDFs, signatures, audit events and guardian permissions are real.
Idempotent: agreements are found by their parties, requests by their project titles.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from accounts.models import Organisation

from . import datasets as ds
from . import services
from .default_templates import ensure_default_templates
from .models import (
    ACCESS_GATING_KINDS,
    AccessRequest,
    Agreement,
    AgreementKind,
    AgreementStatus,
    AgreementTemplate,
    Decision,
    PartyRole,
)

HOSPITAL_CODES = ("de", "fr", "nl", "se")
APPROVED_TITLE = "Real-world survival across two European hospitals"
PENDING_TITLE = "Time to first treatment across European hospitals"
FA = "federated_analytics"
FL = "federated_learning"
FL_TITLE = "Federated survival-risk model for solid tumours"
ETHICS_PDF = b"%PDF-1.4\n% OPTIMA demo ethics approval\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _user(username):
    return get_user_model().objects.filter(username=username).first()


def _agreement(hospital: Organisation, institute: Organisation, code: str) -> Agreement:
    existing = (
        Agreement.objects.filter(
            kind__in=ACCESS_GATING_KINDS,
            status=AgreementStatus.ACTIVE,
            parties__organisation=hospital,
        )
        .filter(parties__organisation=institute)
        .first()
    )
    if existing:
        return existing
    today = timezone.localdate()
    agreement = services.agreement_create(
        actor=_user(f"orgadmin.{code}"),
        template=AgreementTemplate.objects.filter(kind=AgreementKind.DATA_ACCESS_USE)
        .order_by("-version")
        .first(),
        title=f"Data access and use: {hospital.name} and {institute.name}",
        purposes="Outcomes research in solid tumours through federated analysis",
        effective_date=today.replace(month=1, day=1),
        expiry_date=today.replace(year=today.year + 3, month=12, day=31),
        parties=[(hospital, PartyRole.CONTROLLER), (institute, PartyRole.DATA_USER)],
    )
    agreement = services.agreement_send(actor=_user(f"orgadmin.{code}"), agreement=agreement)
    for username, org in ((f"signatory.{code}", hospital), ("signatory.eicor", institute)):
        signer = _user(username)
        services.agreement_sign(
            actor=signer,
            agreement=agreement,
            party=agreement.parties.get(organisation=org),
            full_name=signer.get_full_name(),
            confirm=True,
            ip_address="127.0.0.1",
        )
    agreement.refresh_from_db()
    return agreement


def _request(*, applicant, title, chosen, team=(), mode=FA):
    access_request = AccessRequest.objects.filter(project_title=title, applicant=applicant).first()
    if access_request:
        return access_request, False
    access_request = services.access_request_create(
        actor=applicant,
        project_title=title,
        datasets=[(d, mode, True) for d in chosen],
        team_members=list(team),
        research_question="How do survival and time to treatment compare between hospitals and "
        "treatment strategies in routine care?",
        lay_summary="We compare, across four European hospitals, how long patients live after the "
        "treatments they received in routine care. No patient data leave the hospitals.",
        purpose="DUO:0000007",
        requested_end_date=timezone.localdate() + timedelta(days=365),
        ethics_reference="EC-EICOR-2026-017",
    )
    upload = ContentFile(ETHICS_PDF, name="ethics-approval.pdf")
    services.attachment_add(
        actor=applicant, access_request=access_request, kind="ethics_approval", upload=upload
    )
    services.access_request_submit(actor=applicant, access_request=access_request)
    return access_request, True


@transaction.atomic
def seed(stdout=None) -> dict:
    ensure_default_templates(actor=_user("admin"))
    institute = Organisation.objects.filter(slug="eicor").first()
    hospitals = {
        code: Organisation.objects.filter(slug=f"{code}-hospital").first()
        for code in HOSPITAL_CODES
    }
    if institute is None or None in hospitals.values():
        return {}
    agreements = {code: _agreement(h, institute, code) for code, h in hospitals.items()}

    researcher, researcher2 = _user("researcher"), _user("researcher2")
    published = list(
        ds.published()
        .filter(publisher__in=hospitals.values())
        .select_related("current_version", "publisher")
        .order_by("publisher__slug", "identifier")
    )
    offering = [d for d in published if FA in ds.offered_modes(d)]
    result = {"agreements": agreements}
    if researcher and offering:
        # Two datasets from each of the first two hospitals that offer federated analytics.
        chosen, per_publisher = [], {}
        for d in offering:
            if (
                per_publisher.get(d.publisher_id, 0) < 2
                and len(per_publisher.keys() | {d.publisher_id}) <= 2
            ):
                chosen.append(d)
                per_publisher[d.publisher_id] = per_publisher.get(d.publisher_id, 0) + 1
        approved, created = _request(
            applicant=researcher,
            title=APPROVED_TITLE,
            chosen=chosen,
            team=[researcher2] if researcher2 else [],
        )
        if created:
            for decision in Decision.objects.filter(request=approved).select_related("custodian"):
                code = decision.custodian.slug.split("-")[0]
                services.decision_approve(
                    actor=_user(f"dac.{code}"),
                    decision=decision,
                    reason="Within the scope of the Data Access and Use Agreement.",
                )
        result["approved_request"] = approved
        # Federated learning needs several sites: one dataset offering it from each of three hospitals.
        fl_chosen, fl_publishers = [], set()
        for d in published:
            if (
                FL in ds.offered_modes(d)
                and d.publisher_id not in fl_publishers
                and len(fl_chosen) < 3
            ):
                fl_chosen.append(d)
                fl_publishers.add(d.publisher_id)
        if len(fl_chosen) >= 2:
            fl_request, fl_created = _request(
                applicant=researcher, title=FL_TITLE, chosen=fl_chosen, mode=FL
            )
            if fl_created:
                for decision in Decision.objects.filter(request=fl_request).select_related(
                    "custodian"
                ):
                    code = decision.custodian.slug.split("-")[0]
                    services.decision_approve(
                        actor=_user(f"dac.{code}"),
                        decision=decision,
                        reason="Model training within the Data Access and Use Agreement.",
                    )
            result["fl_request"] = fl_request
        remaining = [d for d in offering if d not in chosen]
        if remaining:
            pending, _ = _request(applicant=researcher, title=PENDING_TITLE, chosen=remaining[:2])
            result["pending_request"] = pending
    if stdout:
        stdout.write(
            f"Governance: {len(agreements)} active agreements"
            + (
                ", one approved and one pending access request."
                if "approved_request" in result
                else "."
            )
        )
    return result
