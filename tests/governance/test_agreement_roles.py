"""Agreement transitions × roles through the API: managers of a party act, members who are not
managers get 403, everyone else 404; refused calls change nothing."""

from __future__ import annotations

from datetime import date

import pytest

from accounts.models import AuditEvent
from governance import services
from governance.default_templates import ensure_default_templates
from governance.models import Agreement, AgreementTemplate

pytestmark = pytest.mark.django_db

ROLES = (
    "org_admin_a",
    "signatory_a",
    "signatory_i",
    "dac_a",
    "researcher",
    "outsider",
    "platform_admin",
)


@pytest.fixture
def people(org_admin_a, signatory_a, signatory_i, dac_a, researcher, outsider, platform_admin):
    ensure_default_templates(actor=platform_admin)
    return {
        "org_admin_a": org_admin_a,
        "signatory_a": signatory_a,
        "signatory_i": signatory_i,
        "dac_a": dac_a,
        "researcher": researcher,
        "outsider": outsider,
        "platform_admin": platform_admin,
    }


def _draft(people, hospital_a, institute):
    return services.agreement_create(
        actor=people["org_admin_a"],
        template=AgreementTemplate.objects.get(kind="data_access_use"),
        title="Roles",
        effective_date=date(2026, 1, 1),
        expiry_date=date(2029, 1, 1),
        parties=[(hospital_a, "controller"), (institute, "data_user")],
    )


def _sent(people, hospital_a, institute):
    return services.agreement_send(
        actor=people["org_admin_a"], agreement=_draft(people, hospital_a, institute)
    )


def _active(people, hospital_a, institute):
    agreement = _sent(people, hospital_a, institute)
    for username, org in (("signatory_a", hospital_a), ("signatory_i", institute)):
        user = people[username]
        services.agreement_sign(
            actor=user,
            agreement=agreement,
            party=agreement.parties.get(organisation=org),
            full_name=user.get_full_name(),
            confirm=True,
        )
    return agreement


MANAGERS = {
    "org_admin_a": 200,
    "signatory_a": 200,
    "signatory_i": 200,
    "dac_a": 200,
    "platform_admin": 200,
    "researcher": 403,
}
MATRIX = [
    ("draft", "send", {}, MANAGERS),
    ("sent", "new-version", {}, {k: (201 if v == 200 else v) for k, v in MANAGERS.items()}),
    ("active", "terminate", {"reason": "Ended"}, MANAGERS),
    (
        "sent",
        "sign",
        {"organisation": "hospital-a", "full_name": "Sina Signer", "confirm": True},
        {
            "signatory_a": 200,
            "org_admin_a": 403,
            "signatory_i": 403,
            "dac_a": 403,
            "researcher": 403,
            "platform_admin": 403,
        },
    ),
]
STATES = {"draft": _draft, "sent": _sent, "active": _active}


def _snapshot(agreement):
    a = Agreement.objects.get(pk=agreement.pk)
    return (a.status, a.signatures.count(), Agreement.objects.count(), AuditEvent.objects.count())


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("state", "action", "payload", "expected"), MATRIX, ids=lambda v: str(v)[:20]
)
def test_agreement_transition_by_role(
    api_as, people, hospital_a, institute, state, action, payload, expected, role
):
    agreement = STATES[state](people, hospital_a, institute)
    before = _snapshot(agreement)
    want = expected.get(role, 404)
    response = api_as(people[role]).post(
        f"/api/agreements/{agreement.pk}/{action}/", payload, format="json"
    )
    assert response.status_code == want, response.content
    if want >= 400:
        assert response.json()["error"]["message"]
        assert _snapshot(agreement) == before
    else:
        assert _snapshot(agreement) != before


@pytest.mark.parametrize(
    ("state", "action", "payload"),
    [
        ("draft", "terminate", {"reason": "x"}),
        ("draft", "new-version", {}),
        ("sent", "send", {}),
        ("active", "send", {}),
        (
            "draft",
            "sign",
            {"organisation": "hospital-a", "full_name": "Sina Signer", "confirm": True},
        ),
    ],
)
def test_agreement_transition_in_the_wrong_state(
    api_as, people, hospital_a, institute, state, action, payload
):
    agreement = STATES[state](people, hospital_a, institute)
    before = _snapshot(agreement)
    user = people["signatory_a"]
    response = api_as(user).post(
        f"/api/agreements/{agreement.pk}/{action}/", payload, format="json"
    )
    assert response.status_code == 400, response.content
    assert _snapshot(agreement) == before
