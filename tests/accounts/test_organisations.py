from django.core import mail

from accounts.models import AuditEvent, Invitation, Membership, Role
from tests.factories import make_member


def test_it_lets_an_org_admin_invite_by_email(
    client_as, org_admin_a, hospital_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_as(org_admin_a).post(
            f"/organisations/{hospital_a.slug}/invite/",
            {"email": "New@Example.org", "roles": ["data_steward", "signatory"]},
        )
    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert invitation.email == "new@example.org"
    assert len(mail.outbox) == 1 and "/invitations/" in mail.outbox[0].body
    assert AuditEvent.objects.filter(action="invitation.sent", organisation=hospital_a).exists()


def test_it_refuses_an_invitation_without_roles(client_as, org_admin_a, hospital_a):
    response = client_as(org_admin_a).post(
        f"/organisations/{hospital_a.slug}/invite/", {"email": "x@example.org"}
    )
    assert response.status_code == 400
    assert Invitation.objects.count() == 0


def test_it_hides_invitations_from_members_who_are_not_admins(client_as, steward_a, hospital_a):
    response = client_as(steward_a).post(
        f"/organisations/{hospital_a.slug}/invite/",
        {"email": "x@example.org", "roles": ["researcher"]},
    )
    assert response.status_code == 404


def test_an_invited_person_signs_up_and_gets_the_roles(
    client, org_admin_a, hospital_a, django_capture_on_commit_callbacks
):
    from accounts import services

    with django_capture_on_commit_callbacks(execute=True):
        services.invitation_send(
            actor=org_admin_a,
            organisation=hospital_a,
            email="new@example.org",
            roles=["data_steward"],
        )
    link = next(line for line in mail.outbox[0].body.splitlines() if "/invitations/" in line)
    path = "/invitations/" + link.split("/invitations/")[1].split()[0]
    response = client.post(
        path,
        {
            "username": "newbie",
            "first_name": "N",
            "last_name": "B",
            "password1": "a-long-password-1",
            "password2": "a-long-password-1",
        },
    )
    assert response.status_code == 302
    membership = Membership.objects.get(user__username="newbie", organisation=hospital_a)
    assert membership.role_names == ["data_steward"]
    assert client.get(path).status_code == 404  # used once


def test_an_org_admin_edits_roles(client_as, org_admin_a, steward_a, hospital_a):
    response = client_as(org_admin_a).post(
        f"/organisations/{hospital_a.slug}/members/{steward_a.pk}/",
        {"roles": ["data_steward", "dac_member"]},
    )
    assert response.status_code == 302
    assert Membership.objects.get(user=steward_a).role_names == ["dac_member", "data_steward"]
    event = AuditEvent.objects.get(action="membership.roles_changed")
    assert event.payload["after"] == ["dac_member", "data_steward"]


def test_an_org_admin_cannot_drop_their_own_admin_role(client_as, org_admin_a, hospital_a):
    response = client_as(org_admin_a).post(
        f"/organisations/{hospital_a.slug}/members/{org_admin_a.pk}/", {"roles": ["researcher"]}
    )
    assert response.status_code == 400
    assert "org_admin" in Membership.objects.get(user=org_admin_a).role_names


def test_outsiders_get_404_for_an_organisation_page(client_as, outsider, hospital_a):
    assert client_as(outsider).get(f"/organisations/{hospital_a.slug}/").status_code == 404


def test_a_person_may_belong_to_several_organisations(hospital_a, hospital_b):
    from accounts import permissions

    user = make_member(hospital_a, Role.DATA_STEWARD, username="both")
    make_member(hospital_b, Role.DAC_MEMBER, username="both")
    assert permissions.has_role(user, hospital_a, Role.DATA_STEWARD)
    permissions.forget_roles(user)
    assert permissions.has_role(user, hospital_b, Role.DAC_MEMBER)
    assert not permissions.has_role(user, hospital_a, Role.DAC_MEMBER)


def test_an_invitation_names_its_roles_in_words(
    client, client_as, org_admin_a, hospital_a, django_capture_on_commit_callbacks
):
    from accounts import services

    with django_capture_on_commit_callbacks(execute=True):
        services.invitation_send(
            actor=org_admin_a,
            organisation=hospital_a,
            email="new@example.org",
            roles=["data_steward", "dac_member"],
        )
    link = next(line for line in mail.outbox[0].body.splitlines() if "/invitations/" in line)
    path = "/invitations/" + link.split("/invitations/")[1].split()[0]
    page = client.get(path).content.decode()
    assert "invited as: Data access committee member, Data steward." in page
    assert "data_steward" not in page
    admin_page = client_as(org_admin_a).get(f"/organisations/{hospital_a.slug}/").content.decode()
    assert "Data access committee member, Data steward" in admin_page
