"""Probe finding: a data access committee member could approve their own access request.

A member of the deciding committee who is the applicant, on the request's team, or a member of the
applicant's organisation is refused (403 with the reason) in the HTML views and the API, and nothing
is written; an unconflicted member still decides.
"""

from __future__ import annotations

from html import unescape

import pytest

from accounts.models import AuditEvent, Role
from governance import services
from governance.models import Decision, DecisionStatus, Entitlement
from tests.factories import make_member
from tests.governance.factories import active_agreement, complete_draft, published_dataset

ACTIONS = ("approve", "reject", "request-changes", "start-review")


@pytest.fixture
def dataset_a(hospital_a):
    return published_dataset(hospital_a, title="NSCLC cohort A")


@pytest.fixture
def teammate(institute):
    return make_member(institute, Role.RESEARCHER, username="teammate")


@pytest.fixture
def submitted(researcher, teammate, hospital_a, institute, dataset_a):
    active_agreement(hospital_a, institute)
    access_request = complete_draft(researcher, [dataset_a], team=[teammate])
    services.access_request_submit(actor=researcher, access_request=access_request)
    return access_request


def _conflicted(kind, *, researcher, teammate, institute, hospital_a):
    """A member of hospital A's committee with the given conflict."""
    if kind == "applicant":
        return make_member(hospital_a, Role.DAC_MEMBER, username=researcher.username)
    if kind == "team":
        return make_member(hospital_a, Role.DAC_MEMBER, username=teammate.username)
    colleague = make_member(institute, Role.RESEARCHER, username="colleague")
    return make_member(hospital_a, Role.DAC_MEMBER, username=colleague.username)


CONFLICTS = {
    "applicant": "you are the applicant",
    "team": "member of this request's team",
    "organisation": "you belong to the applicant's organisation",
}


def _unchanged(access_request, events_before):
    decision = Decision.objects.get(request=access_request)
    assert decision.status == DecisionStatus.PENDING
    assert decision.decided_by is None
    assert not Entitlement.objects.filter(request=access_request).exists()
    assert AuditEvent.objects.count() == events_before


@pytest.mark.parametrize("kind", sorted(CONFLICTS))
@pytest.mark.parametrize("verb", ACTIONS)
def test_it_refuses_a_conflicted_member_in_the_api(
    api_as, submitted, researcher, teammate, institute, hospital_a, kind, verb
):
    member = _conflicted(
        kind, researcher=researcher, teammate=teammate, institute=institute, hospital_a=hospital_a
    )
    before = AuditEvent.objects.count()
    response = api_as(member).post(
        f"/api/access-requests/{submitted.pk}/decisions/hospital-a/{verb}/",
        {"reason": "Looks fine to me."},
        format="json",
    )
    assert response.status_code == 403, response.content
    error = response.json()["error"]
    assert error["code"] == "conflict_of_interest"
    assert CONFLICTS[kind] in error["message"]
    _unchanged(submitted, before)


@pytest.mark.parametrize("kind", sorted(CONFLICTS))
def test_it_refuses_a_conflicted_member_in_the_pages(
    client_as, submitted, researcher, teammate, institute, hospital_a, kind
):
    member = _conflicted(
        kind, researcher=researcher, teammate=teammate, institute=institute, hospital_a=hospital_a
    )
    client = client_as(member)
    page = client.get(f"/governance/requests/{submitted.pk}/")
    assert page.status_code == 200
    html = unescape(page.content.decode())
    assert CONFLICTS[kind] in html
    assert f"/decisions/{hospital_a.pk}/approve/" not in html  # no live decision form

    before = AuditEvent.objects.count()
    response = client.post(
        f"/governance/requests/{submitted.pk}/decisions/{hospital_a.pk}/approve/",
        {"reason": "Looks fine to me."},
    )
    assert response.status_code == 403
    assert CONFLICTS[kind] in unescape(response.content.decode())
    _unchanged(submitted, before)


def test_it_refuses_a_conflicted_member_in_the_service(submitted, researcher, hospital_a):
    member = make_member(hospital_a, Role.DAC_MEMBER, username=researcher.username)
    from governance.permissions import ConflictOfInterest

    with pytest.raises(ConflictOfInterest):
        services.decision_approve(actor=member, decision=Decision.objects.get(request=submitted))


def test_it_still_lets_an_unconflicted_member_decide(api_as, client_as, submitted, dac_a):
    page = client_as(dac_a).get(f"/governance/requests/{submitted.pk}/")
    assert "Conflict of interest" not in page.content.decode()
    response = api_as(dac_a).post(
        f"/api/access-requests/{submitted.pk}/decisions/hospital-a/approve/",
        {"reason": "Within scope."},
        format="json",
    )
    assert response.status_code == 200, response.content
    decision = Decision.objects.get(request=submitted)
    assert decision.status == DecisionStatus.APPROVED and decision.decided_by == dac_a


def test_the_committee_decides_on_its_own_organisations_researchers(api_as, hospital_a, dac_a):
    """Membership of the applicant's organisation is no conflict when that organisation is the
    custodian: its committee members all belong to it."""
    own_researcher = make_member(hospital_a, Role.RESEARCHER, username="own_researcher")
    dataset = published_dataset(hospital_a, title="In-house cohort")
    access_request = complete_draft(own_researcher, [dataset])
    services.access_request_submit(actor=own_researcher, access_request=access_request)
    response = api_as(dac_a).post(
        f"/api/access-requests/{access_request.pk}/decisions/hospital-a/reject/",
        {"reason": "Not in scope."},
        format="json",
    )
    assert response.status_code == 200, response.content
