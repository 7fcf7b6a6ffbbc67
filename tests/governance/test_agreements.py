"""Agreements: templates, drafting, sending (PDF + SHA-256), signing, versions, termination, expiry."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import AuditEvent, Notification
from governance import documents, services
from governance.default_templates import ensure_default_templates
from governance.models import (
    Agreement,
    AgreementKind,
    AgreementStatus,
    AgreementTemplate,
    PartyRole,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def templates(platform_admin):
    ensure_default_templates(actor=platform_admin)
    return {t.kind: t for t in AgreementTemplate.objects.all()}


@pytest.fixture
def draft(templates, org_admin_a, hospital_a, institute, signatory_a, signatory_i):
    return services.agreement_create(
        actor=org_admin_a,
        template=templates[AgreementKind.DATA_ACCESS_USE],
        title="Access to hospital A data",
        purposes="Outcomes research in lung cancer",
        effective_date=date(2026, 1, 1),
        expiry_date=date(2028, 12, 31),
        parties=[(hospital_a, PartyRole.CONTROLLER), (institute, PartyRole.DATA_USER)],
    )


def _sign_all(agreement, *signers):
    for user in signers:
        party = agreement.parties.get(organisation__memberships__user=user)
        services.agreement_sign(
            actor=user,
            agreement=agreement,
            party=party,
            full_name=user.get_full_name(),
            confirm=True,
            ip_address="192.0.2.10",
        )
    agreement.refresh_from_db()
    return agreement


# --- Templates --------------------------------------------------------------------------------
def test_publishing_a_template_makes_the_next_version(platform_admin, templates):
    template = services.agreement_template_publish(
        actor=platform_admin,
        kind=AgreementKind.DATA_PROCESSING,
        title="DPA",
        body="# {{ title }}\n{{ parties }}",
    )
    assert template.version == 2
    assert AgreementTemplate.objects.filter(kind=AgreementKind.DATA_PROCESSING).count() == 2
    assert AuditEvent.objects.filter(action="agreement_template.published").exists()


def test_a_template_with_an_unknown_placeholder_is_refused(platform_admin):
    with pytest.raises(ValidationError) as exc:
        services.agreement_template_publish(
            actor=platform_admin, kind="collaboration", title="C", body="{{ nonsense }}"
        )
    assert "nonsense" in str(exc.value.message_dict["body"])
    assert not AgreementTemplate.objects.exists()


def test_only_platform_admins_publish_templates(org_admin_a):
    with pytest.raises(PermissionDenied):
        services.agreement_template_publish(
            actor=org_admin_a, kind="collaboration", title="C", body="x"
        )


# --- Drafting ---------------------------------------------------------------------------------
def test_an_outsider_cannot_draft_for_other_organisations(
    templates, outsider, hospital_a, institute
):
    with pytest.raises(PermissionDenied):
        services.agreement_create(
            actor=outsider,
            template=templates[AgreementKind.DATA_ACCESS_USE],
            title="x",
            effective_date=date(2026, 1, 1),
            expiry_date=date(2027, 1, 1),
            parties=[(hospital_a, "controller"), (institute, "data_user")],
        )
    assert not Agreement.objects.exists()


def test_bad_dates_and_single_party_are_refused(templates, org_admin_a, hospital_a):
    with pytest.raises(ValidationError) as exc:
        services.agreement_create(
            actor=org_admin_a,
            template=templates[AgreementKind.DATA_ACCESS_USE],
            title="x",
            effective_date=date(2026, 1, 1),
            expiry_date=date(2025, 1, 1),
            parties=[(hospital_a, "controller")],
        )
    assert "parties" in exc.value.message_dict


# --- Sending ----------------------------------------------------------------------------------
def test_sending_renders_the_pdf_once_and_stores_its_hash(
    draft, org_admin_a, signatory_a, signatory_i
):
    agreement = services.agreement_send(actor=org_admin_a, agreement=draft)
    assert agreement.status == AgreementStatus.OUT_FOR_SIGNATURE
    data = agreement.document.read()
    assert data.startswith(b"%PDF")
    assert hashlib.sha256(data).hexdigest() == agreement.document_sha256
    assert "Access to hospital A data" in agreement.rendered_markdown
    assert (
        "Hospital A" in agreement.rendered_markdown and "Data user" in agreement.rendered_markdown
    )
    assert "2028-12-31" in agreement.rendered_markdown
    assert AuditEvent.objects.filter(action="agreement.sent", object_id=str(agreement.pk)).exists()
    told = set(
        Notification.objects.filter(verb="agreement.sent").values_list(
            "recipient__username", flat=True
        )
    )
    assert told == {"signatory_a", "signatory_i"}  # the sender (org admin) is not told


def test_the_pdf_hash_is_stable_for_the_same_content(draft, org_admin_a):
    agreement = services.agreement_send(actor=org_admin_a, agreement=draft)
    again = documents.sha256(documents.render_agreement_pdf(agreement))
    assert again == agreement.document_sha256
    agreement.rendered_markdown += "\n\nOne more clause."
    assert documents.sha256(documents.render_agreement_pdf(agreement)) != again


def test_sending_needs_a_signatory_for_every_party(
    templates, org_admin_a, hospital_a, hospital_b, signatory_a
):
    agreement = services.agreement_create(
        actor=org_admin_a,
        template=templates[AgreementKind.JOINT_CONTROLLER],
        title="JCA",
        effective_date=date(2026, 1, 1),
        expiry_date=date(2027, 1, 1),
        parties=[(hospital_a, "joint_controller"), (hospital_b, "joint_controller")],
    )
    with pytest.raises(ValidationError) as exc:
        services.agreement_send(actor=org_admin_a, agreement=agreement)
    assert "Hospital B" in str(exc.value.message_dict["parties"])
    agreement.refresh_from_db()
    assert agreement.status == AgreementStatus.DRAFT and not agreement.document_sha256


def test_a_new_template_version_never_changes_a_sent_agreement(draft, org_admin_a, platform_admin):
    sent = services.agreement_send(actor=org_admin_a, agreement=draft)
    before = (sent.rendered_markdown, sent.document_sha256)
    services.agreement_template_publish(
        actor=platform_admin, kind=AgreementKind.DATA_ACCESS_USE, title="DAUA", body="All new text."
    )
    sent.refresh_from_db()
    assert (sent.rendered_markdown, sent.document_sha256) == before
    assert sent.template.version == 1


# --- Signing ----------------------------------------------------------------------------------
def test_signatures_are_recorded_and_the_last_one_activates(
    draft, org_admin_a, signatory_a, signatory_i
):
    agreement = services.agreement_send(actor=org_admin_a, agreement=draft)
    agreement = _sign_all(agreement, signatory_a)
    assert agreement.status == AgreementStatus.OUT_FOR_SIGNATURE
    signature = agreement.signatures.get()
    assert signature.user == signatory_a
    assert signature.ip_address == "192.0.2.10"
    assert signature.document_sha256 == agreement.document_sha256
    assert signature.full_name == "Sina Signer"
    agreement = _sign_all(agreement, signatory_i)
    assert agreement.status == AgreementStatus.ACTIVE
    signed = agreement.signed_document.read()
    assert hashlib.sha256(signed).hexdigest() == agreement.signed_document_sha256
    assert agreement.signed_document_sha256 != agreement.document_sha256
    assert AuditEvent.objects.filter(action="agreement.activated").count() == 1
    assert AuditEvent.objects.filter(action="agreement.signed").count() == 2


@pytest.mark.parametrize(
    ("full_name", "confirm", "field"),
    [
        ("", True, "full_name"),
        ("Somebody Else", True, "full_name"),
        ("Sina Signer", False, "confirm"),
    ],
)
def test_a_signature_needs_the_typed_full_name_and_confirmation(
    draft, org_admin_a, signatory_a, signatory_i, full_name, confirm, field
):
    agreement = services.agreement_send(actor=org_admin_a, agreement=draft)
    party = agreement.parties.get(organisation__slug="hospital-a")
    with pytest.raises(ValidationError) as exc:
        services.agreement_sign(
            actor=signatory_a,
            agreement=agreement,
            party=party,
            full_name=full_name,
            confirm=confirm,
        )
    assert field in exc.value.message_dict
    assert not agreement.signatures.exists()


def test_only_a_signatory_of_the_party_signs(draft, org_admin_a, signatory_a, signatory_i):
    agreement = services.agreement_send(actor=org_admin_a, agreement=draft)
    party_a = agreement.parties.get(organisation__slug="hospital-a")
    for actor in (signatory_i, org_admin_a):
        with pytest.raises(PermissionDenied):
            services.agreement_sign(
                actor=actor,
                agreement=agreement,
                party=party_a,
                full_name=actor.get_full_name(),
                confirm=True,
            )
    assert not agreement.signatures.exists()


def test_a_draft_cannot_be_signed_and_a_party_signs_once(
    draft, org_admin_a, signatory_a, signatory_i
):
    party = draft.parties.get(organisation__slug="hospital-a")
    with pytest.raises(ValidationError):
        services.agreement_sign(
            actor=signatory_a, agreement=draft, party=party, full_name="Sina Signer", confirm=True
        )
    agreement = services.agreement_send(actor=org_admin_a, agreement=draft)
    _sign_all(agreement, signatory_a)
    with pytest.raises(ValidationError):
        services.agreement_sign(
            actor=signatory_a,
            agreement=agreement,
            party=party,
            full_name="Sina Signer",
            confirm=True,
        )
    assert agreement.signatures.count() == 1


# --- Changes after sending --------------------------------------------------------------------
def test_a_change_after_sending_needs_a_new_version(draft, org_admin_a, signatory_a, signatory_i):
    sent = services.agreement_send(actor=org_admin_a, agreement=draft)
    with pytest.raises(ValidationError) as exc:
        services.agreement_update(actor=org_admin_a, agreement=sent, title="Changed")
    assert "new version" in str(exc.value.message_dict["status"])
    sent.refresh_from_db()
    assert sent.title == "Access to hospital A data"

    v2 = services.agreement_new_version(actor=org_admin_a, agreement=sent)
    assert (v2.version, v2.status, v2.previous_version) == (2, AgreementStatus.DRAFT, sent)
    assert v2.parties.count() == 2
    services.agreement_update(actor=org_admin_a, agreement=v2, title="Changed")
    v2 = services.agreement_send(actor=org_admin_a, agreement=v2)
    sent.refresh_from_db()
    # The first version was still waiting for signatures: it is replaced, its signatures void.
    assert sent.status == AgreementStatus.SUPERSEDED and sent.superseded_by == v2
    assert v2.document_sha256 != sent.document_sha256


def test_a_signed_new_version_supersedes_the_active_one(
    draft, org_admin_a, signatory_a, signatory_i
):
    v1 = _sign_all(
        services.agreement_send(actor=org_admin_a, agreement=draft), signatory_a, signatory_i
    )
    assert v1.status == AgreementStatus.ACTIVE
    v2 = services.agreement_new_version(actor=org_admin_a, agreement=v1)
    services.agreement_update(actor=org_admin_a, agreement=v2, expiry_date=date(2030, 12, 31))
    v2 = services.agreement_send(actor=org_admin_a, agreement=v2)
    v1.refresh_from_db()
    assert v1.status == AgreementStatus.ACTIVE  # stays in force until v2 is signed
    v2 = _sign_all(v2, signatory_a, signatory_i)
    v1.refresh_from_db()
    assert v2.status == AgreementStatus.ACTIVE
    assert v1.status == AgreementStatus.SUPERSEDED and v1.superseded_by == v2
    with pytest.raises(ValidationError):
        services.agreement_new_version(actor=org_admin_a, agreement=v1)


# --- Termination and expiry -------------------------------------------------------------------
def test_termination_needs_a_reason(draft, org_admin_a, signatory_a, signatory_i):
    agreement = _sign_all(
        services.agreement_send(actor=org_admin_a, agreement=draft), signatory_a, signatory_i
    )
    with pytest.raises(ValidationError):
        services.agreement_terminate(actor=org_admin_a, agreement=agreement, reason=" ")
    agreement.refresh_from_db()
    assert agreement.status == AgreementStatus.ACTIVE
    services.agreement_terminate(
        actor=signatory_i, agreement=agreement, reason="Project ended early"
    )
    agreement.refresh_from_db()
    assert agreement.status == AgreementStatus.TERMINATED
    assert agreement.termination_reason == "Project ended early"
    assert AuditEvent.objects.filter(action="agreement.terminated").exists()


def test_an_outsider_cannot_terminate(draft, org_admin_a, outsider):
    agreement = services.agreement_send(actor=org_admin_a, agreement=draft)
    with pytest.raises(PermissionDenied):
        services.agreement_terminate(actor=outsider, agreement=agreement, reason="x")


def test_expiry_moves_active_agreements_to_expired(draft, org_admin_a, signatory_a, signatory_i):
    agreement = _sign_all(
        services.agreement_send(actor=org_admin_a, agreement=draft), signatory_a, signatory_i
    )
    assert not services.agreement_expire(agreement=agreement, today=date(2028, 12, 30))
    assert services.agreement_expire(agreement=agreement, today=date(2028, 12, 31))
    agreement.refresh_from_db()
    assert agreement.status == AgreementStatus.EXPIRED
    assert not services.agreement_expire(agreement=agreement, today=date(2029, 1, 1))


def test_reference_names_lineage_and_version(draft):
    assert draft.reference == f"AGR-{draft.pk} v1"
    assert draft.expiry_date - draft.effective_date > timedelta(days=365)


def test_the_signed_document_has_a_signature_page(draft, org_admin_a, signatory_a, signatory_i):
    agreement = _sign_all(
        services.agreement_send(actor=org_admin_a, agreement=draft), signatory_a, signatory_i
    )
    signatures = list(agreement.signatures.select_related("party__organisation", "user"))
    html = documents.render_agreement_html(agreement, signatures=signatures)
    assert 'class="signature-page"' in html and agreement.document_sha256 in html
    for name in ("Sina Signer", "Ivo Institute", "192.0.2.10", "Hospital A", "Research Institute"):
        assert name in html
    assert documents.sha256(documents.render_agreement_pdf(agreement, signatures=signatures)) == (
        agreement.signed_document_sha256
    )
    unsigned = documents.render_agreement_html(agreement)
    assert 'class="signature-page"' not in unsigned and "<h1" in unsigned


def test_a_signed_agreement_is_not_shown_active_before_its_effective_date(
    client_as, steward_a, hospital_a, institute
):
    from datetime import timedelta

    from django.utils import timezone

    from tests.governance.factories import active_agreement

    agreement = active_agreement(hospital_a, institute)
    starts = timezone.localdate() + timedelta(days=10)
    agreement.effective_date = starts
    agreement.save(update_fields=["effective_date"])
    client = client_as(steward_a)
    expected = f"Signed — effective from {starts:%Y-%m-%d}"
    detail = client.get(f"/governance/agreements/{agreement.pk}/").content.decode()
    assert expected in detail and ">Active<" not in detail
    assert expected in client.get("/governance/agreements/").content.decode()
    agreement.effective_date = timezone.localdate()
    agreement.save(update_fields=["effective_date"])
    assert ">Active<" in client.get(f"/governance/agreements/{agreement.pk}/").content.decode()
