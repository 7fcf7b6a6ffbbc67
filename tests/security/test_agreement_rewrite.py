"""Probe finding: an agreement's creator could rewrite its parties and cover other hospitals' drafts.

Every edit (API PATCH/PUT, the edit form) checks again what creation checks; covered datasets must be
published by a party; nobody sees the title of a draft they cannot see in the catalogue.
"""

from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import ValidationError

from accounts.models import Role
from catalogue.models import Dataset
from governance import services
from governance.default_templates import ensure_default_templates
from governance.models import Agreement, AgreementTemplate
from tests.factories import make_member
from tests.governance.factories import published_dataset

pytestmark = pytest.mark.django_db

SECRET = "Secret pancreas pilot of hospital B"


@pytest.fixture
def draft(platform_admin, org_admin_a, hospital_a, institute):
    ensure_default_templates(actor=platform_admin)
    return services.agreement_create(
        actor=org_admin_a,
        template=AgreementTemplate.objects.get(kind="data_access_use"),
        title="Access to A",
        effective_date=date(2026, 1, 1),
        expiry_date=date(2028, 1, 1),
        parties=[(hospital_a, "controller"), (institute, "data_user")],
    )


@pytest.fixture
def b_draft(hospital_b):
    """A dataset hospital B has not published: only B's members and curators see it."""
    return Dataset.objects.create(publisher=hospital_b, title=SECRET, description="WIP")


def _state(agreement):
    agreement = Agreement.objects.get(pk=agreement.pk)
    return (
        sorted(agreement.parties.values_list("organisation__slug", "role")),
        sorted(agreement.datasets.values_list("pk", flat=True)),
        agreement.title,
    )


def test_it_refuses_a_creator_handing_the_draft_to_other_hospitals(
    api_as, draft, org_admin_a, hospital_b
):
    before = _state(draft)
    response = api_as(org_admin_a).patch(
        f"/api/agreements/{draft.pk}/",
        {
            "title": "Now between B and the institute",
            "parties": [
                {"organisation": "hospital-b", "role": "controller"},
                {"organisation": "institute", "role": "data_user"},
            ],
        },
        format="json",
    )
    assert response.status_code == 403, response.content
    assert "organisation admin, signatory or DAC member" in response.json()["error"]["message"]
    assert _state(draft) == before


def test_it_refuses_the_same_through_the_edit_form(client_as, draft, org_admin_a, hospital_b):
    before = _state(draft)
    response = client_as(org_admin_a).post(
        f"/governance/agreements/{draft.pk}/edit/",
        {
            "template": draft.template_id,
            "title": "Now between B and the institute",
            "effective_date": "2026-01-01",
            "expiry_date": "2028-01-01",
            "party_1_organisation": hospital_b.pk,
            "party_1_role": "controller",
            "party_2_organisation": draft.parties.get(role="data_user").organisation_id,
            "party_2_role": "data_user",
        },
    )
    assert response.status_code == 400
    assert _state(draft) == before


def test_it_refuses_another_hospitals_draft_as_if_it_did_not_exist(
    api_as, draft, org_admin_a, hospital_a, hospital_b, institute, b_draft
):
    # Even with hospital B made a party (org_admin_a still manages it through hospital A).
    services.agreement_update(
        actor=org_admin_a,
        agreement=draft,
        parties=[(hospital_a, "controller"), (hospital_b, "controller"), (institute, "data_user")],
    )
    before = _state(draft)
    client = api_as(org_admin_a)
    hidden = client.patch(f"/api/agreements/{draft.pk}/", {"datasets": [b_draft.pk]}, format="json")
    missing = client.patch(f"/api/agreements/{draft.pk}/", {"datasets": [10**9]}, format="json")
    assert hidden.status_code == missing.status_code == 400
    # The same answer as for an id that does not exist: nothing about the draft leaks.
    hidden_message = hidden.json()["error"]["fields"]["datasets"][0]
    assert hidden_message == missing.json()["error"]["fields"]["datasets"][0].replace(
        str(10**9), str(b_draft.pk)
    )
    assert SECRET not in hidden.content.decode()
    assert _state(draft) == before
    with pytest.raises(ValidationError) as exc:
        services.agreement_update(actor=org_admin_a, agreement=draft, datasets=[b_draft])
    assert "No such dataset" in str(exc.value) and SECRET not in str(exc.value)
    assert _state(draft) == before


def test_it_refuses_datasets_no_party_publishes(
    api_as, draft, org_admin_a, hospital_a, hospital_b, steward_a
):
    b_published = published_dataset(hospital_b, title="Breast cohort B")
    a_unpublished = Dataset.objects.create(publisher=hospital_a, title="A work in progress")
    before = _state(draft)
    for dataset, message in (
        (b_published, "is not published by a party"),
        (a_unpublished, "is not published in the catalogue"),
    ):
        response = api_as(org_admin_a).patch(
            f"/api/agreements/{draft.pk}/", {"datasets": [dataset.pk]}, format="json"
        )
        assert response.status_code == 400, response.content
        assert message in " ".join(response.json()["error"]["fields"]["datasets"])
        assert _state(draft) == before
    # And at creation.
    response = api_as(org_admin_a).post(
        "/api/agreements/",
        {
            "template": draft.template_id,
            "title": "x",
            "effective_date": "2026-01-01",
            "expiry_date": "2027-01-01",
            "parties": [
                {"organisation": "hospital-a", "role": "controller"},
                {"organisation": "institute", "role": "data_user"},
            ],
            "datasets": [b_published.pk],
        },
        format="json",
    )
    assert response.status_code == 400
    assert Agreement.objects.count() == 1


def test_it_refuses_dropping_the_party_whose_dataset_is_covered(
    api_as, draft, org_admin_a, hospital_a, hospital_b
):
    a_published = published_dataset(hospital_a, title="NSCLC cohort A")
    services.agreement_update(actor=org_admin_a, agreement=draft, datasets=[a_published])
    org_admin_a_also_institute = make_member(
        draft.parties.get(role="data_user").organisation, Role.ORG_ADMIN, username="orgadmin_a"
    )
    before = _state(draft)
    response = api_as(org_admin_a_also_institute).patch(
        f"/api/agreements/{draft.pk}/",
        {
            "parties": [
                {"organisation": "institute", "role": "controller"},
                {"organisation": "hospital-b", "role": "data_user"},
            ]
        },
        format="json",
    )
    assert response.status_code == 400
    assert "not published by a party" in " ".join(response.json()["error"]["fields"]["datasets"])
    assert _state(draft) == before


def test_nobody_sees_the_title_of_a_draft_they_cannot_see(
    api_as, client_as, platform_admin, hospital_a, hospital_b, institute, b_draft, org_admin_a
):
    """An agreement between A and B that (from before this rule) covers B's unpublished draft, and
    A's published dataset whose working copy has an unpublished new title."""
    ensure_default_templates(actor=platform_admin)
    agreement = services.agreement_create(
        actor=org_admin_a,
        template=AgreementTemplate.objects.get(kind="collaboration"),
        title="A and B",
        effective_date=date(2026, 1, 1),
        expiry_date=date(2028, 1, 1),
        parties=[(hospital_a, "controller"), (hospital_b, "controller")],
    )
    a_published = published_dataset(hospital_a, title="NSCLC cohort A")
    Dataset.objects.filter(pk=a_published.pk).update(title="Unpublished new title of A")
    agreement.datasets.add(b_draft, a_published)

    page = client_as(org_admin_a).get(f"/governance/agreements/{agreement.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert SECRET not in html
    assert "NSCLC cohort A" in html and "1 dataset not published in the catalogue" in html

    body = api_as(org_admin_a).get(f"/api/agreements/{agreement.pk}/").json()
    assert body["datasets"] == [a_published.pk] and body["datasets_not_visible"] == 1
    listing = api_as(org_admin_a).get("/api/agreements/").content.decode()
    assert SECRET not in listing and str(b_draft.pk) not in [
        str(d)
        for row in api_as(org_admin_a).get("/api/agreements/").json()["results"]
        for d in row["datasets"]
    ]

    edit = client_as(org_admin_a).get(f"/governance/agreements/{agreement.pk}/edit/")
    assert SECRET not in edit.content.decode()
    # Saving the form keeps the dataset the editor cannot see (they can neither add nor remove it).
    services.agreement_update(actor=org_admin_a, agreement=agreement, datasets=[a_published])
    assert set(agreement.datasets.values_list("pk", flat=True)) == {a_published.pk, b_draft.pk}

    # B's own members see their draft's title.
    steward_b = make_member(hospital_b, Role.ORG_ADMIN, username="orgadmin_b")
    assert (
        SECRET
        in client_as(steward_b).get(f"/governance/agreements/{agreement.pk}/").content.decode()
    )
