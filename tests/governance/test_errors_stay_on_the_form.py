"""A refused submit, decision or signature answers on its own form: the message next to the
field, what was typed kept, never a dead-end "That cannot be done now" page."""

from __future__ import annotations

from datetime import date

import pytest

from governance import services
from governance.default_templates import ensure_default_templates
from governance.models import AgreementStatus, AgreementTemplate, DecisionStatus, RequestStatus
from tests.governance.factories import active_agreement, complete_draft

pytestmark = pytest.mark.django_db

DEAD_END = "That cannot be done now"


def test_an_incomplete_request_submitted_from_its_page_opens_its_form_with_the_gaps(
    client_as, researcher, dataset_a
):
    draft = complete_draft(researcher, [dataset_a], lay_summary="", ethics_reference="")
    client = client_as(researcher)
    response = client.post(f"/governance/requests/{draft.pk}/submit/", follow=True)
    html = response.content.decode()
    assert DEAD_END not in html
    assert response.redirect_chain[-1][0] == f"/governance/requests/{draft.pk}/edit/?check=1"
    assert 'id="id_lay_summary_error"' in html and "Give a lay summary." in html
    assert 'href="#id_ethics_reference"' in html  # the summary links to the field
    assert 'value="Survival after first-line therapy"' in html  # saved values shown
    draft.refresh_from_db()
    assert draft.status == RequestStatus.DRAFT


def test_save_and_submit_keeps_the_input_and_marks_what_is_missing(
    client_as, researcher, dataset_a
):
    draft = complete_draft(researcher, [dataset_a], lay_summary="")
    response = client_as(researcher).post(
        f"/governance/requests/{draft.pk}/edit/",
        {
            "project_title": "Survival after first-line therapy",
            "research_question": "A question typed just now",
            "lay_summary": "",
            "purpose": "DUO:0000007",
            "requested_end_date": draft.requested_end_date.isoformat(),
            "ethics_reference": "EC-2026-042",
            f"mode_{dataset_a.pk}": "federated_analytics",
            f"terms_{dataset_a.pk}": "on",
            "submit": "1",
        },
    )
    html = response.content.decode()
    assert response.status_code == 400 and DEAD_END not in html
    assert "A question typed just now" in html
    assert 'id="id_lay_summary_error"' in html
    draft.refresh_from_db()
    assert draft.status == RequestStatus.DRAFT
    assert draft.research_question == "A question typed just now"  # saved, not submitted


def test_request_changes_without_a_reason_answers_under_the_reason(
    client_as, researcher, dac_a, hospital_a, institute, dataset_a
):
    active_agreement(hospital_a, institute, datasets=[dataset_a])
    draft = complete_draft(researcher, [dataset_a])
    services.access_request_submit(actor=researcher, access_request=draft)
    decision = draft.decisions.get()
    url = f"/governance/requests/{draft.pk}/decisions/{decision.custodian_id}/request-changes/"
    response = client_as(dac_a).post(url, {"reason": "   "})
    html = response.content.decode()
    assert response.status_code == 400 and DEAD_END not in html
    assert f'id="reason-{decision.custodian_id}-error"' in html
    assert "Give the reason; the researcher sees it." in html
    decision.refresh_from_db()
    assert decision.status == DecisionStatus.PENDING
    # Too long a reason: the typed text stays in the box.
    response = client_as(dac_a).post(url, {"reason": "x" * 20_000})
    assert response.status_code == 400 and "x" * 100 in response.content.decode()


@pytest.fixture
def out_for_signature(platform_admin, org_admin_a, signatory_i, hospital_a, institute):
    ensure_default_templates(actor=platform_admin)
    agreement = services.agreement_create(
        actor=org_admin_a,
        template=AgreementTemplate.objects.get(kind="data_access_use"),
        title="Access to A",
        purposes="Outcomes research",
        effective_date=date(2026, 1, 1),
        expiry_date=date(2029, 1, 1),
        parties=[(hospital_a, "controller"), (institute, "data_user")],
    )
    services.agreement_send(actor=org_admin_a, agreement=agreement)
    return agreement


def test_a_signature_ignores_case_and_spaces_and_says_what_it_expects(
    client_as, signatory_a, out_for_signature
):
    agreement = out_for_signature
    party = agreement.parties.get(organisation__slug="hospital-a")
    client = client_as(signatory_a)
    url = f"/governance/agreements/{agreement.pk}/sign/"
    response = client.post(url, {"party": party.pk, "full_name": "Sina Singer", "confirm": "on"})
    html = response.content.decode()
    assert response.status_code == 400 and DEAD_END not in html
    assert f'id="id_p{party.pk}_full_name_error"' in html
    assert "type “Sina Signer”" in html and 'value="Sina Singer"' in html
    response = client.post(
        url, {"party": party.pk, "full_name": "  sina   SIGNER ", "confirm": "on"}
    )
    assert response.status_code == 302
    assert agreement.signatures.get().full_name == "sina SIGNER"
    agreement.refresh_from_db()
    assert agreement.status == AgreementStatus.OUT_FOR_SIGNATURE  # the institute signs too
