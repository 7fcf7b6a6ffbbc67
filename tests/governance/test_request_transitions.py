"""Every access-request transition × role through the API: allowed ones succeed, illegal ones answer
400/403 with a message and change nothing; people who may not see the request get 404."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from governance import services
from governance.models import AccessRequest, Decision, Entitlement, RequestStatus
from tests.governance.factories import active_agreement, complete_draft

pytestmark = pytest.mark.django_db

ROLES = ("applicant", "teammate", "dac_a", "dac_b", "outsider", "stranger", "platform_admin")


@pytest.fixture
def people(researcher, teammate, dac_a, dac_b, outsider, stranger, platform_admin):
    return {
        "applicant": researcher,
        "teammate": teammate,
        "dac_a": dac_a,
        "dac_b": dac_b,
        "outsider": outsider,
        "stranger": stranger,
        "platform_admin": platform_admin,
    }


@pytest.fixture
def world(people, hospital_a, hospital_b, institute, dataset_a, dataset_b):
    active_agreement(hospital_a, institute)
    active_agreement(hospital_b, institute)
    return people


def _draft(world, dataset_a, dataset_b):
    return complete_draft(world["applicant"], [dataset_a, dataset_b], team=[world["teammate"]])


def _submitted(world, dataset_a, dataset_b):
    r = _draft(world, dataset_a, dataset_b)
    return services.access_request_submit(actor=world["applicant"], access_request=r)


def _decision(r, slug):
    return Decision.objects.get(request=r, custodian__slug=slug)


def _changes_requested(world, dataset_a, dataset_b):
    r = _submitted(world, dataset_a, dataset_b)
    services.decision_request_changes(
        actor=world["dac_a"], decision=_decision(r, "hospital-a"), reason="Clarify the cohort."
    )
    return AccessRequest.objects.get(pk=r.pk)


def _approved(world, dataset_a, dataset_b):
    r = _submitted(world, dataset_a, dataset_b)
    services.decision_approve(actor=world["dac_a"], decision=_decision(r, "hospital-a"))
    services.decision_approve(actor=world["dac_b"], decision=_decision(r, "hospital-b"))
    return AccessRequest.objects.get(pk=r.pk)


def _withdrawn(world, dataset_a, dataset_b):
    r = _submitted(world, dataset_a, dataset_b)
    return services.access_request_withdraw(actor=world["applicant"], access_request=r)


STATES = {
    "draft": _draft,
    "submitted": _submitted,
    "changes_requested": _changes_requested,
    "approved": _approved,
    "withdrawn": _withdrawn,
}


def _snapshot(r):
    r = AccessRequest.objects.get(pk=r.pk)
    return (
        r.status,
        tuple(r.decisions.order_by("pk").values_list("status", flat=True)),
        AuditEvent.objects.count(),
        Entitlement.objects.count(),
        r.updated_at,
    )


def _url(r, action):
    if action in ("submit", "withdraw", "resubmit"):
        return f"/api/access-requests/{r.pk}/{action}/"
    verb, slug = action.rsplit(":", 1)
    return f"/api/access-requests/{r.pk}/decisions/{slug}/{verb}/"


REASON = {"reason": "Because the protocol needs work."}

# (state, action, {role: expected status}); a role missing from the map expects 404.
MATRIX = [
    ("draft", "submit", {"applicant": 200, "teammate": 403, "platform_admin": 403}),
    (
        "submitted",
        "withdraw",
        {"applicant": 200, "teammate": 403, "dac_a": 403, "dac_b": 403, "platform_admin": 403},
    ),
    (
        "changes_requested",
        "resubmit",
        {"applicant": 200, "teammate": 403, "dac_a": 403, "dac_b": 403, "platform_admin": 403},
    ),
]
for verb in ("start-review", "approve", "reject", "request-changes"):
    MATRIX.append(
        (
            "submitted",
            f"{verb}:hospital-a",
            {"dac_a": 200, "dac_b": 403, "applicant": 403, "teammate": 403, "platform_admin": 403},
        )
    )


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("state", "action", "expected"), MATRIX, ids=lambda v: str(v)[:30])
def test_transition_by_role(api_as, world, dataset_a, dataset_b, state, action, expected, role):
    r = STATES[state](world, dataset_a, dataset_b)
    before = _snapshot(r)
    want = expected.get(role, 404)
    response = api_as(world[role]).post(_url(r, action), REASON, format="json")
    assert response.status_code == want, response.content
    if want == 200:
        assert _snapshot(r) != before
        assert response.json()["id"] == r.pk
    else:
        body = response.json()["error"]
        assert body["status"] == want and body["message"]
        assert _snapshot(r) == before


# Transitions that the right person tries in the wrong state: 400 with a message, nothing changed.
ILLEGAL = [
    ("submitted", "submit", "applicant"),
    ("approved", "withdraw", "applicant"),
    ("withdrawn", "withdraw", "applicant"),
    ("submitted", "resubmit", "applicant"),
    ("draft", "resubmit", "applicant"),
    ("approved", "approve:hospital-a", "dac_a"),
    ("approved", "reject:hospital-a", "dac_a"),
    ("withdrawn", "approve:hospital-a", "dac_a"),
    ("withdrawn", "start-review:hospital-a", "dac_a"),
    ("changes_requested", "approve:hospital-a", "dac_a"),
]


@pytest.mark.parametrize(("state", "action", "role"), ILLEGAL)
def test_illegal_transition_is_refused_and_changes_nothing(
    api_as, world, dataset_a, dataset_b, state, action, role
):
    r = STATES[state](world, dataset_a, dataset_b)
    before = _snapshot(r)
    response = api_as(world[role]).post(_url(r, action), REASON, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["message"]
    assert _snapshot(r) == before


def test_a_custodian_still_decides_while_another_asks_for_changes(world, dataset_a, dataset_b):
    r = _changes_requested(world, dataset_a, dataset_b)
    services.decision_approve(actor=world["dac_b"], decision=_decision(r, "hospital-b"))
    r.refresh_from_db()
    assert r.status == RequestStatus.CHANGES_REQUESTED
    assert Entitlement.objects.filter(request=r, dataset=dataset_b).count() == 2


def test_reject_and_request_changes_need_a_reason(api_as, world, dataset_a, dataset_b):
    r = _submitted(world, dataset_a, dataset_b)
    before = _snapshot(r)
    for verb in ("reject", "request-changes"):
        response = api_as(world["dac_a"]).post(_url(r, f"{verb}:hospital-a"), {}, format="json")
        assert response.status_code == 400
        assert "reason" in response.json()["error"]["fields"]
    assert _snapshot(r) == before


def test_approval_is_blocked_without_a_covering_agreement(
    api_as, researcher, dac_a, hospital_a, institute, dataset_a, teammate
):
    r = complete_draft(researcher, [dataset_a])
    services.access_request_submit(actor=researcher, access_request=r)
    before = _snapshot(r)
    response = api_as(dac_a).post(_url(r, "approve:hospital-a"), {}, format="json")
    assert response.status_code == 400
    message = " ".join(response.json()["error"]["fields"]["agreement"])
    assert "No active Data Access and Use Agreement or Collaboration Agreement" in message
    assert _snapshot(r) == before


def test_an_agreement_of_another_kind_or_for_other_datasets_does_not_cover(
    researcher, dac_a, hospital_a, institute, dataset_a
):
    from governance.models import AgreementKind
    from tests.governance.factories import published_dataset

    active_agreement(hospital_a, institute, kind=AgreementKind.DATA_PROCESSING)
    other = published_dataset(hospital_a, title="Other")
    active_agreement(hospital_a, institute, datasets=[other])
    r = complete_draft(researcher, [dataset_a])
    services.access_request_submit(actor=researcher, access_request=r)
    assert services.agreement_gaps(_decision(r, "hospital-a"))
    collab = active_agreement(hospital_a, institute, kind=AgreementKind.COLLABORATION)
    assert services.agreement_gaps(_decision(r, "hospital-a")) == []
    services.decision_approve(actor=dac_a, decision=_decision(r, "hospital-a"))
    assert Entitlement.objects.get(request=r).agreement == collab
