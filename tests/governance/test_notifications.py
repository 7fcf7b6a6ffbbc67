"""The notification table is honoured for every transition: each transition is performed, and exactly
the people of the declared audiences (minus the person who acted) are told, in-app and by e-mail."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core import mail

from accounts.models import Notification, Role
from governance import jobs, services
from governance.default_templates import ensure_default_templates
from governance.models import AgreementKind, Decision, Entitlement
from governance.notifications import TABLE, Audience
from tests.factories import make_member
from tests.governance.factories import active_agreement, complete_draft, publish_version

pytestmark = pytest.mark.django_db

# Who each audience is in the world below (written out by hand, independent of the resolvers).
AUDIENCE_PEOPLE = {
    Audience.PARTY_SIGNATORIES: {"signatory_a", "signatory_i"},
    Audience.PARTY_ORG_ADMINS: {"orgadmin_a", "orgadmin_i"},
    Audience.AGREEMENT_CREATOR: {"platform_admin"},
    Audience.TEAM: {"researcher", "teammate"},
    Audience.CUSTODIAN_DAC: {"dac_a"},
    Audience.ALL_CUSTODIAN_DACS: {"dac_a", "dac_b"},
    Audience.HOLDER: {"researcher", "teammate"},
    Audience.ORG_SITE_ADMINS: {"siteadmin_a"},
    Audience.ORG_STEWARDS: {"steward_a"},
}


@pytest.fixture
def w(
    platform_admin,
    researcher,
    teammate,
    dac_a,
    dac_b,
    org_admin_a,
    signatory_a,
    signatory_i,
    hospital_a,
    hospital_b,
    institute,
    dataset_a,
    dataset_b,
    outsider,
    steward_a,
):
    ensure_default_templates(actor=platform_admin)
    orgadmin_i = make_member(institute, Role.ORG_ADMIN, username="orgadmin_i")
    siteadmin_a = make_member(hospital_a, Role.SITE_ADMIN, username="siteadmin_a")
    return {
        u.username: u
        for u in (
            platform_admin,
            researcher,
            teammate,
            dac_a,
            dac_b,
            org_admin_a,
            signatory_a,
            signatory_i,
            orgadmin_i,
            siteadmin_a,
            outsider,
            steward_a,
        )
    } | {"orgs": (hospital_a, hospital_b, institute), "datasets": (dataset_a, dataset_b)}


# --- scenario helpers: each returns (trigger, actor username or None) -------------------------
def _draft_agreement(w):
    from governance.models import AgreementTemplate

    hospital_a, _, institute = w["orgs"]
    return services.agreement_create(
        actor=w["platform_admin"],
        template=AgreementTemplate.objects.get(kind=AgreementKind.DATA_ACCESS_USE),
        title="DAUA",
        effective_date=date(2026, 1, 1),
        expiry_date=date(2030, 1, 1),
        parties=[(hospital_a, "controller"), (institute, "data_user")],
    )


def _sent(w):
    return services.agreement_send(actor=w["platform_admin"], agreement=_draft_agreement(w))


def _sign(w, agreement, username):
    party = agreement.parties.get(organisation__memberships__user=w[username])
    user = w[username]
    services.agreement_sign(
        actor=user, agreement=agreement, party=party, full_name=user.get_full_name(), confirm=True
    )


def _active(w):
    agreement = _sent(w)
    _sign(w, agreement, "signatory_a")
    _sign(w, agreement, "signatory_i")
    agreement.refresh_from_db()
    return agreement


def _covering(w):
    hospital_a, hospital_b, institute = w["orgs"]
    active_agreement(hospital_a, institute)
    active_agreement(hospital_b, institute)


def _submitted(w, datasets=None):
    _covering(w)
    r = complete_draft(w["researcher"], datasets or list(w["datasets"]), team=[w["teammate"]])
    return services.access_request_submit(actor=w["researcher"], access_request=r)


def _decision_a(r):
    return Decision.objects.get(request=r, custodian__slug="hospital-a")


def _granted(w):
    r = _submitted(w, [w["datasets"][0]])
    services.decision_approve(actor=w["dac_a"], decision=_decision_a(r))
    return r


def s_agreement_sent(w):
    agreement = _draft_agreement(w)
    return lambda: services.agreement_send(
        actor=w["platform_admin"], agreement=agreement
    ), "platform_admin"


def s_agreement_signed(w):
    agreement = _sent(w)
    return lambda: _sign(w, agreement, "signatory_a"), "signatory_a"


def s_agreement_activated(w):
    agreement = _sent(w)
    _sign(w, agreement, "signatory_a")
    return lambda: _sign(w, agreement, "signatory_i"), "signatory_i"


def s_agreement_terminated(w):
    agreement = _active(w)
    return (
        lambda: services.agreement_terminate(
            actor=w["orgadmin_a"], agreement=agreement, reason="End"
        ),
        "orgadmin_a",
    )


def s_agreement_superseded(w):
    agreement = _sent(w)
    v2 = services.agreement_new_version(actor=w["platform_admin"], agreement=agreement)
    return lambda: services.agreement_send(
        actor=w["platform_admin"], agreement=v2
    ), "platform_admin"


def s_agreement_expired(w):
    agreement = _active(w)
    return lambda: jobs.agreements_expire(today=agreement.expiry_date), None


def s_agreement_expiry_reminder(w):
    agreement = _active(w)
    return lambda: jobs.agreements_remind_expiry(
        today=agreement.expiry_date - timedelta(days=30)
    ), None


def s_request_submitted(w):
    _covering(w)
    r = complete_draft(w["researcher"], list(w["datasets"]), team=[w["teammate"]])
    return lambda: services.access_request_submit(
        actor=w["researcher"], access_request=r
    ), "researcher"


def s_request_resubmitted(w):
    r = _submitted(w)
    services.decision_request_changes(
        actor=w["dac_a"], decision=_decision_a(r), reason="More detail"
    )
    return lambda: services.access_request_resubmit(
        actor=w["researcher"], access_request=r
    ), "researcher"


def s_request_withdrawn(w):
    r = _submitted(w)
    return lambda: services.access_request_withdraw(
        actor=w["researcher"], access_request=r
    ), "researcher"


def s_request_reminder(w):
    r = _submitted(w, [w["datasets"][0]])
    now = _decision_a(r).waiting_since + timedelta(days=15)
    return lambda: jobs.requests_remind(now=now), None


def _decide(verb):
    def scenario(w):
        r = _submitted(w)
        fn = {
            "review_started": lambda: services.decision_start_review(
                actor=w["dac_a"], decision=_decision_a(r)
            ),
            "approved": lambda: services.decision_approve(
                actor=w["dac_a"], decision=_decision_a(r)
            ),
            "rejected": lambda: services.decision_reject(
                actor=w["dac_a"], decision=_decision_a(r), reason="No"
            ),
            "changes_requested": lambda: services.decision_request_changes(
                actor=w["dac_a"], decision=_decision_a(r), reason="Fix"
            ),
        }[verb]
        return fn, "dac_a"

    return scenario


def s_comment_posted(w):
    r = _submitted(w)
    hospital_a = w["orgs"][0]
    return (
        lambda: services.comment_post(
            actor=w["dac_a"], access_request=r, custodian=hospital_a, body="Hi"
        ),
        "dac_a",
    )


def s_entitlement_granted(w):
    r = _submitted(w, [w["datasets"][0]])
    return lambda: services.decision_approve(actor=w["dac_a"], decision=_decision_a(r)), "dac_a"


def s_entitlement_revoked(w):
    r = _granted(w)

    def trigger():
        for e in Entitlement.objects.filter(request=r):
            services.entitlement_revoke(actor=w["dac_a"], entitlement=e, reason="Stop")

    return trigger, "dac_a"


def s_entitlement_expired(w):
    r = _granted(w)
    end = Entitlement.objects.filter(request=r).first().ends_at
    return lambda: jobs.entitlements_expire(now=end + timedelta(seconds=1)), None


def s_entitlement_suspended(w):
    _granted(w)
    publish_version(w["datasets"][0], terms_text="Changed terms")
    return jobs.entitlements_check_terms, None


def s_entitlement_expiry_reminder(w):
    r = _granted(w)
    end = Entitlement.objects.filter(request=r).first().ends_at
    return lambda: jobs.entitlements_remind(now=end - timedelta(days=10)), None


def _node_a(w):
    from tests.federation.factories import make_node

    return make_node(w["orgs"][0], "omop-a")[0]


def s_node_dataset_proposed(w):
    from federation.services import node_dataset_propose

    node, dataset = _node_a(w), w["datasets"][0]
    return (
        lambda: node_dataset_propose(actor=w["steward_a"], dataset=dataset, node=node),
        "steward_a",
    )


def s_node_dataset_confirmed(w):
    from federation.services import node_dataset_confirm, node_dataset_propose

    node, dataset = _node_a(w), w["datasets"][0]
    link = node_dataset_propose(actor=w["steward_a"], dataset=dataset, node=node)
    return lambda: node_dataset_confirm(actor=w["siteadmin_a"], link=link), "siteadmin_a"


def s_node_agent_outdated(w):
    from federation import versions
    from federation.services import node_heartbeat
    from optima_node.policy import Policy
    from optima_node.schemas import Heartbeat

    node = _node_a(w)
    beat = Heartbeat(
        agent_version="0.1.0",
        capabilities=[],
        cdm_version="5.4",
        vocabulary_version="v5",
        dialect="sqlite",
        person_count=0,
        policy=Policy().summary(),
    )

    def trigger():
        previous, versions.AGENT_RELEASE = versions.AGENT_RELEASE, "0.3.0"
        try:
            node_heartbeat(node=node, heartbeat=beat)
        finally:
            versions.AGENT_RELEASE = previous

    return trigger, None


SCENARIOS = {
    "agreement.sent": s_agreement_sent,
    "agreement.signed": s_agreement_signed,
    "agreement.activated": s_agreement_activated,
    "agreement.terminated": s_agreement_terminated,
    "agreement.superseded": s_agreement_superseded,
    "agreement.expired": s_agreement_expired,
    "agreement.expiry_reminder": s_agreement_expiry_reminder,
    "request.submitted": s_request_submitted,
    "request.resubmitted": s_request_resubmitted,
    "request.withdrawn": s_request_withdrawn,
    "request.reminder": s_request_reminder,
    "decision.review_started": _decide("review_started"),
    "decision.approved": _decide("approved"),
    "decision.rejected": _decide("rejected"),
    "decision.changes_requested": _decide("changes_requested"),
    "comment.posted": s_comment_posted,
    "entitlement.granted": s_entitlement_granted,
    "entitlement.revoked": s_entitlement_revoked,
    "entitlement.expired": s_entitlement_expired,
    "entitlement.suspended": s_entitlement_suspended,
    "entitlement.expiry_reminder": s_entitlement_expiry_reminder,
    "node.dataset_proposed": s_node_dataset_proposed,
    "node.dataset_confirmed": s_node_dataset_confirmed,
    "node.agent_outdated": s_node_agent_outdated,
}


def test_every_transition_in_the_table_has_a_scenario():
    assert set(SCENARIOS) == set(TABLE)


@pytest.mark.parametrize("event", sorted(TABLE))
def test_the_table_is_honoured(w, event, django_capture_on_commit_callbacks):
    trigger, actor = SCENARIOS[event](w)
    last = Notification.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        trigger()
    told = set(
        Notification.objects.filter(pk__gt=last, verb=event).values_list(
            "recipient__username", flat=True
        )
    )
    expected = set().union(*(AUDIENCE_PEOPLE[a] for a in TABLE[event].audiences)) - {actor}
    assert told == expected
    everyone = {k for k, v in w.items() if hasattr(v, "username")}
    assert not (everyone - expected) & told  # nobody outside the declared audiences
    mailed = {m.to[0].split("@")[0] for m in mail.outbox if event_title_matches(m, event)}
    assert mailed == expected
    for m in mail.outbox:
        assert m.alternatives and m.alternatives[0][1] == "text/html"


def event_title_matches(message, event) -> bool:
    return Notification.objects.filter(
        verb=event, subject=message.subject.removeprefix("[OPTIMA] ")
    ).exists()


def test_a_transition_names_its_object_and_custodian(w, django_capture_on_commit_callbacks):
    trigger, _ = _decide("approved")(w)
    with django_capture_on_commit_callbacks(execute=True):
        trigger()
    told = Notification.objects.filter(verb="decision.approved").first()
    assert told.object_type == "governance.accessrequest"
    assert told.organisation.slug == "hospital-a"
    assert told.sent_at is not None and told.attempts == 1
