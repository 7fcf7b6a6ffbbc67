"""Probe finding: a member who posted an invalid invitation form saw the admin panel, open
invitations included. The administrator check now runs before the form is read."""

from __future__ import annotations

import pytest

from accounts import services
from accounts.models import Invitation

pytestmark = pytest.mark.django_db

INVALID_FORMS = [
    {},
    {"email": "not-an-email"},
    {"email": "x@example.org"},  # no roles
    {"email": "x@example.org", "roles": ["no-such-role"]},
]


@pytest.fixture
def open_invitation(org_admin_a, hospital_a):
    services.invitation_send(
        actor=org_admin_a,
        organisation=hospital_a,
        email="secret-candidate@example.org",
        roles=["data_steward"],
    )
    return Invitation.objects.get()


@pytest.mark.parametrize("data", INVALID_FORMS)
@pytest.mark.parametrize("member", ["steward_a", "dac_a", "site_admin_a"])
def test_it_hides_the_admin_panel_from_a_member_posting_an_invalid_form(
    request, client_as, hospital_a, open_invitation, member, data
):
    user = request.getfixturevalue(member)
    response = client_as(user).post(f"/organisations/{hospital_a.slug}/invite/", data)
    assert response.status_code == 404
    body = response.content.decode()
    assert "secret-candidate@example.org" not in body
    assert "Open invitations" not in body and "Send invitation" not in body
    assert Invitation.objects.count() == 1


def test_it_hides_the_panel_from_members_of_other_organisations(
    client_as, hospital_a, open_invitation, steward_b
):
    response = client_as(steward_b).post(f"/organisations/{hospital_a.slug}/invite/", {})
    assert response.status_code == 404
    assert "secret-candidate@example.org" not in response.content.decode()


def test_it_hides_the_role_editor_from_members(client_as, hospital_a, steward_a, dac_a):
    response = client_as(steward_a).post(
        f"/organisations/{hospital_a.slug}/members/{dac_a.pk}/", {"roles": ["bogus"]}
    )
    assert response.status_code == 404


def test_an_org_admin_still_gets_the_form_back_with_its_errors(
    client_as, hospital_a, org_admin_a, open_invitation
):
    response = client_as(org_admin_a).post(
        f"/organisations/{hospital_a.slug}/invite/", {"email": "not-an-email"}
    )
    assert response.status_code == 400
    assert "secret-candidate@example.org" in response.content.decode()
