"""Probe finding: differencing two releases reveals a group below min_cell_count.

``cohort_count`` of a cohort (175) minus the same cohort restricted to women (172) gives 3 men,
although the male stratum alone is suppressed; Kaplan-Meier tables of "all" versus "women" reveal
the three men's follow-up. The node's release ledger (a local SQLite file) refuses a release whose
persons differ from a set released earlier to the same requester or project by 1 … k − 1.
"""

from __future__ import annotations

import pytest

from optima_node.agent import Agent
from optima_node.db import connect
from optima_node.ledger import ReleaseLedger
from optima_node.policy import Policy
from optima_node.schemas import ReasonCode, RunAssignment
from tests.security.omop_builders import BREAST, Person, women, write_cdm

COHORT = {"condition_concept_ids": [BREAST]}
WOMEN = {**COHORT, "sex": "female"}


def men(count: int) -> list[Person]:
    return [
        Person(male=True, year_of_birth=1950 + i, died_after_days=400 + i) for i in range(count)
    ]


@pytest.fixture
def site(tmp_path) -> str:
    """172 women and 3 men with breast cancer: 175 in all."""
    return write_cdm(tmp_path / "site.sqlite3", women(172, died=60) + men(3))


@pytest.fixture
def ledger_path(tmp_path):
    return tmp_path / "state" / "release-ledger.sqlite3"


class Node:
    """The agent as the site runs it: its own policy and its ledger file."""

    def __init__(self, url: str, ledger_path, policy: Policy | None = None) -> None:
        self.ledger = ReleaseLedger(ledger_path)
        self.agent = Agent(
            client=None, db=connect(url), policy=policy or Policy(), ledger=self.ledger
        )
        self.next_run = 1

    def run(self, analysis_type: str, params: dict, *, requester="17", projects=("REQ-3",), **kw):
        run_id, self.next_run = self.next_run, self.next_run + 1
        assignment = RunAssignment(
            run_id=run_id,
            attempt=1,
            analysis_id=kw.pop("analysis_id", run_id),
            type=analysis_type,
            version=1,
            params=params,
            requester_id=requester,
            project_ids=list(projects),
            **kw,
        )
        return self.agent.execute(assignment)

    def close(self) -> None:
        self.agent.db.close()
        self.ledger.close()


@pytest.fixture
def node(site, ledger_path):
    node = Node(site, ledger_path)
    yield node
    node.close()


def total(result) -> int:
    return sum(row["count"] for row in result.result["rows"])


def assert_refused(outcome) -> None:
    assert (outcome.status, outcome.reason_code, outcome.result) == (
        "refused",
        ReasonCode.DIFFERENCING_RISK,
        None,
    )


def test_the_probe_count_differencing_is_refused(node):
    first = node.run("cohort_count", {"cohort": COHORT})
    assert first.status == "completed" and total(first) == 175
    assert_refused(node.run("cohort_count", {"cohort": WOMEN}))


def test_it_is_refused_in_either_direction(node):
    assert total(node.run("cohort_count", {"cohort": WOMEN})) == 172
    assert_refused(node.run("cohort_count", {"cohort": COHORT}))


def test_kaplan_meier_all_versus_women_is_refused(node):
    km = {"time_unit_days": 30, "max_time_units": 120}
    assert node.run("kaplan_meier", {"cohort": COHORT, **km}).status == "completed"
    assert_refused(node.run("kaplan_meier", {"cohort": WOMEN, **km}))


def test_a_stratified_count_after_the_total_is_refused(node):
    # The male row is suppressed, but 175 − 172 would give it away.
    assert total(node.run("cohort_count", {"cohort": COHORT})) == 175
    assert_refused(node.run("cohort_count", {"cohort": COHORT, "stratify_by": ["sex"]}))


def test_across_analysis_types_too(node):
    assert node.run("characterisation", {"cohort": WOMEN}).status == "completed"
    assert_refused(node.run("kaplan_meier", {"cohort": COHORT}))


def test_the_same_cohort_again_and_every_glm_round_are_released(node):
    assert node.run("cohort_count", {"cohort": COHORT}).status == "completed"
    assert node.run("cohort_count", {"cohort": COHORT}).status == "completed"
    glm = {"cohort": WOMEN, "outcome": {"kind": "death_within_days", "days": 730}}
    # A regression for a second requester: the women's cohort is new to them; its rounds
    # release the same persons again and again.
    for round_, beta in ((1, [0.0]), (2, [-0.5]), (3, [-0.6])):
        outcome = node.run(
            "logistic_regression",
            glm,
            requester="23",
            projects=("REQ-9",),
            analysis_id=500,
            round=round_,
            state={"beta": beta},
        )
        assert outcome.status == "completed", round_


def test_a_repeated_release_whose_own_sets_differ_slightly_is_released_again():
    """Sets released together are not compared with one another (a characterisation's women and
    its follow-up band may differ by a few men); releasing the very same sets again reveals
    nothing new, so the repeat is released, while a new set near them is still refused."""
    import numpy as np

    from optima_node.ledger import Requester

    ledger = ReleaseLedger.in_memory()
    who = Requester("17", ("REQ-3",))
    women, band = np.arange(1, 173), np.arange(100, 176)  # the band holds 3 men (173..175)

    def release(analysis_id: str, sets: dict) -> bool:
        return ledger.check_and_record(
            who=who,
            analysis_type="characterisation",
            analysis_id=analysis_id,
            run_id=int(analysis_id),
            round_=1,
            digest_of_params="same",
            sets=sets,
            min_cell_count=5,
            scope="project",
        )

    assert release("1", {"sex=female": women, "follow_up=2-5y": band})
    assert release("2", {"sex=female": women, "follow_up=2-5y": band})
    assert not release("3", {"sex=female": women, "everyone": np.arange(1, 176)})
    ledger.close()


def test_a_difference_of_min_cell_count_is_allowed(tmp_path, ledger_path):
    url = write_cdm(tmp_path / "five.sqlite3", women(172, died=60) + men(5))
    node = Node(url, ledger_path)
    try:
        assert total(node.run("cohort_count", {"cohort": COHORT})) == 177
        assert total(node.run("cohort_count", {"cohort": WOMEN})) == 172
    finally:
        node.close()


def test_another_requester_in_another_project_is_not_blocked_by_default(node):
    assert node.run("cohort_count", {"cohort": COHORT}, requester="17").status == "completed"
    other = node.run("cohort_count", {"cohort": WOMEN}, requester="42", projects=("REQ-8",))
    assert other.status == "completed"


def test_a_team_member_of_the_same_project_is_blocked(node):
    assert node.run("cohort_count", {"cohort": COHORT}, requester="17").status == "completed"
    assert_refused(node.run("cohort_count", {"cohort": WOMEN}, requester="42"))


def test_the_same_requester_under_another_project_is_blocked(node):
    assert node.run("cohort_count", {"cohort": COHORT}).status == "completed"
    assert_refused(node.run("cohort_count", {"cohort": WOMEN}, projects=("REQ-99",)))


def test_scope_all_blocks_everyone(site, ledger_path):
    node = Node(site, ledger_path, Policy(differencing_scope="all"))
    try:
        assert node.run("cohort_count", {"cohort": COHORT}, requester="17").status == "completed"
        assert_refused(
            node.run("cohort_count", {"cohort": WOMEN}, requester="42", projects=("REQ-8",))
        )
    finally:
        node.close()


def test_a_run_without_a_requester_is_compared_with_every_release(node):
    # An older portal (or one that strips the field) does not get around the ledger.
    assert node.run("cohort_count", {"cohort": COHORT}, requester="17").status == "completed"
    assert_refused(node.run("cohort_count", {"cohort": WOMEN}, requester=None, projects=()))


def test_the_ledger_is_the_nodes_own_and_survives_a_restart(site, ledger_path):
    """Nothing the portal controls resets it: a new agent process, new run and analysis ids
    (a wiped or different portal) and the same requester are still refused."""
    first = Node(site, ledger_path)
    assert first.run("cohort_count", {"cohort": COHORT}).status == "completed"
    first.close()
    restarted = Node(site, ledger_path)
    restarted.next_run = 9000
    try:
        assert_refused(restarted.run("cohort_count", {"cohort": WOMEN}, analysis_id="fresh-1"))
        history = restarted.ledger.releases()
        assert [(r["requester_id"], r["project_ids"], r["type"]) for r in history] == [
            ("17", ["REQ-3"], "cohort_count")
        ]
    finally:
        restarted.close()


def test_a_refusal_is_not_recorded_so_it_cannot_poison_later_releases(node):
    assert node.run("cohort_count", {"cohort": COHORT}).status == "completed"
    assert_refused(node.run("cohort_count", {"cohort": WOMEN}))
    assert len(node.ledger.releases()) == 1


# --- through the portal: the run carries the requester; the portal keeps its own record ----------


@pytest.fixture
def portal_site(db, hospital_a, site):
    """Hospital A's dataset, served by its node running the site above (default policy, k = 5)."""
    from federation.models import NodeDataset
    from tests.federation.factories import SimNode, make_dataset, make_node

    dataset = make_dataset(hospital_a, "Breast cancer cohort")
    node, token = make_node(hospital_a, "hospital-a-omop")
    NodeDataset.objects.create(node=node, dataset=dataset)
    sim = SimNode(node, token, site)
    assert sim.heartbeat().status_code == 200
    yield dataset, sim
    sim.close()


@pytest.fixture
def count(portal_site, django_capture_on_commit_callbacks):
    """Start a cohort_count as ``researcher`` and let the node answer; returns the analysis."""
    from federation import services

    dataset, sim = portal_site

    def _count(researcher, cohort):
        with django_capture_on_commit_callbacks(execute=True):
            analysis = services.analysis_create(
                researcher=researcher,
                analysis_type="cohort_count",
                version=1,
                params={"cohort": cohort},
                datasets=[dataset],
            )
        for _ in range(3):
            with django_capture_on_commit_callbacks(execute=True):
                sim.cycle()
        analysis.refresh_from_db()
        return analysis

    return _count


def _teammate_of(researcher, dataset, username: str):
    """A team member of the researcher's project: an entitlement from the same access request."""
    from guardian.shortcuts import assign_perm

    from accounts.models import Membership
    from catalogue.models import PERMISSION_FOR_MODE
    from governance.models import Entitlement
    from tests.factories import make_member

    organisation = Membership.objects.filter(user=researcher).first().organisation
    member = make_member(organisation, username=username)
    mine = Entitlement.objects.get(holder=researcher, dataset=dataset)
    Entitlement.objects.create(
        holder=member,
        dataset=dataset,
        access_mode=mine.access_mode,
        ends_at=mine.ends_at,
        request=mine.request,
    )
    assign_perm(PERMISSION_FOR_MODE[mine.access_mode], member, dataset)  # as governance keeps it
    return member


def _run_of(analysis):
    analysis.refresh_from_db()
    (run,) = analysis.runs.all()
    return run


def test_the_portal_sends_the_requester_and_project_with_each_run(
    portal_site, researcher, django_capture_on_commit_callbacks
):
    from federation import services
    from governance.models import Entitlement
    from tests.federation.factories import grant_federated_analytics

    dataset, sim = portal_site
    grant_federated_analytics(researcher, dataset)
    with django_capture_on_commit_callbacks(execute=True):
        services.analysis_create(
            researcher=researcher,
            analysis_type="cohort_count",
            version=1,
            params={"cohort": COHORT},
            datasets=[dataset],
        )
    claimed = sim.claim().json()
    request = Entitlement.objects.get(holder=researcher).request
    assert claimed["requester_id"] == str(researcher.pk)
    assert claimed["project_ids"] == [request.reference]


def test_the_differencing_attack_through_the_portal_is_refused(portal_site, researcher, count):
    from accounts.models import AuditEvent
    from federation.models import AnalysisStatus, RunStatus
    from tests.federation.factories import grant_federated_analytics

    dataset, _ = portal_site
    grant_federated_analytics(researcher, dataset)
    everyone = count(researcher, COHORT)
    assert everyone.status == AnalysisStatus.COMPLETED and everyone.result["total"] == 175

    women_only = count(researcher, WOMEN)
    run = _run_of(women_only)
    assert (run.status, run.reason, run.result) == (
        RunStatus.REJECTED_BY_POLICY,
        "differencing_risk",
        None,
    )
    assert women_only.status == AnalysisStatus.FAILED and women_only.result is None
    assert "172" not in women_only.reason
    assert AuditEvent.objects.filter(
        action="run.rejected_by_policy", object_id=str(run.pk)
    ).exists()


def test_the_portal_refuses_too_when_the_node_ledger_is_new(portal_site, researcher, count):
    """Defence in depth: a node reinstalled with an empty ledger; the portal's record of what the
    researcher received still refuses the nested cohort 3 persons smaller."""
    from accounts.models import AuditEvent
    from federation.models import ReleaseRecord, RunStatus
    from federation.services import DIFFERENCING_REASON
    from optima_node.ledger import ReleaseLedger
    from tests.federation.factories import grant_federated_analytics

    dataset, sim = portal_site
    grant_federated_analytics(researcher, dataset)
    count(researcher, COHORT)
    assert ReleaseRecord.objects.get().populations[0]["total"] == 175
    sim.agent.ledger = ReleaseLedger.in_memory()

    run = _run_of(count(researcher, WOMEN))
    assert (run.status, run.reason, run.result) == (
        RunStatus.REJECTED_BY_POLICY,
        DIFFERENCING_REASON,
        None,
    )
    assert ReleaseRecord.objects.count() == 1
    assert AuditEvent.objects.filter(action="run.release_refused", object_id=str(run.pk)).exists()


def test_a_team_member_is_refused_a_researcher_of_another_project_is_not(
    portal_site, researcher, institute, count
):
    from federation.models import AnalysisStatus, RunStatus
    from tests.factories import make_member
    from tests.federation.factories import grant_federated_analytics

    dataset, _ = portal_site
    grant_federated_analytics(researcher, dataset)
    teammate = _teammate_of(researcher, dataset, "teammate")
    stranger = make_member(institute, username="stranger")
    grant_federated_analytics(stranger, dataset)  # their own access request: another project

    count(researcher, COHORT)
    assert _run_of(count(teammate, WOMEN)).status == RunStatus.REJECTED_BY_POLICY
    other = count(stranger, WOMEN)
    assert other.status == AnalysisStatus.COMPLETED and other.result["total"] == 172
