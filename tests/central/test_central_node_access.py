"""The central node's enrolment (page and command), its API and the provider's policy page: who
may do what (operators enrol; only the central node's credential lists datasets and gets tokens;
the provider's site admin sets the policy; everyone else gets 404 or 401)."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.hashing import hash_token
from accounts.models import ApiToken, AuditEvent, Membership, MembershipRole, Role
from central.models import CentralNode, CentralPolicy
from federation.models import Node, NodeDataset, NodeStatus
from optima_node.policy import Policy
from tests.federation.factories import make_node

pytestmark = pytest.mark.django_db

LIST = "/api/central/node/datasets/"


def _token_url(dataset) -> str:
    return f"/api/central/node/datasets/{dataset.pk}/token/"


def _enrol() -> str:
    out = io.StringIO()
    call_command("central_node", "enroll", stdout=out)
    return out.getvalue().strip().splitlines()[-1].split("=", 1)[1]


def _as_central(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Central {raw}")
    return client


@pytest.fixture
def served(send, api_as, steward_a, central_dataset, demo_zip):
    send(api_as(steward_a), demo_zip, dataset=central_dataset)
    return central_dataset


# --- enrolment ------------------------------------------------------------------------------


def test_it_enrols_the_central_node_once_and_stores_the_credential_hashed():
    raw = _enrol()
    node = CentralNode.objects.get()
    assert raw.startswith("central_")
    assert node.token_hash == hash_token(raw)
    assert raw not in str(CentralNode.objects.values_list())
    event = AuditEvent.objects.get(action="central.node_enrolled")
    assert event.payload["rotated"] is False

    rotated = _enrol()
    assert CentralNode.objects.count() == 1
    assert _as_central(raw).get(LIST).status_code == 401
    assert _as_central(rotated).get(LIST).status_code == 200
    assert AuditEvent.objects.filter(action="central.node_enrolled").count() == 2


def test_it_revokes_the_credential_through_the_command():
    raw = _enrol()
    call_command("central_node", "revoke", stdout=io.StringIO())
    assert _as_central(raw).get(LIST).status_code == 401
    assert AuditEvent.objects.filter(action="central.node_revoked").count() == 1
    with pytest.raises(CommandError, match="not enrolled"):
        call_command("central_node", "revoke", stdout=io.StringIO())


@pytest.mark.parametrize("who", ["steward_a", "site_admin_a", "outsider", "researcher"])
def test_it_hides_the_node_page_from_everyone_but_operators(request, client_as, who):
    client = client_as(request.getfixturevalue(who))
    assert client.get("/central/node/").status_code == 404
    assert client.post("/central/node/enrol/").status_code == 404
    assert client.post("/central/node/revoke/").status_code == 404
    assert not CentralNode.objects.exists()


def test_an_operator_enrols_rotates_and_revokes_on_the_page(client_as, platform_admin):
    client = client_as(platform_admin)
    assert b"Not enrolled yet" in client.get("/central/node/").content
    page = client.post("/central/node/enrol/")
    assert page.status_code == 200
    raw = page.context["new_token"]
    assert page["Cache-Control"] == "no-store"
    assert f"CENTRAL_NODE_TOKEN={raw}".encode() in page.content
    assert raw.encode() not in client.get("/central/node/").content  # shown once
    assert CentralNode.objects.get().enrolled_by == platform_admin
    assert client.post("/central/node/revoke/").status_code == 302
    assert _as_central(raw).get(LIST).status_code == 401
    event = AuditEvent.objects.get(action="central.node_revoked")
    assert event.actor == platform_admin


# --- the API: only the central node's credential ----------------------------------------------


def test_it_lists_the_served_datasets_with_location_and_policy(served, hospital_a, settings):
    raw = _enrol()
    response = _as_central(raw).get(LIST)
    assert response.status_code == 200
    (entry,) = response.json()["datasets"]
    assert entry["dataset"] == served.pk
    assert entry["provider"] == {"id": hospital_a.pk, "name": hospital_a.name}
    assert entry["version"] == 1
    assert entry["node"] is None
    assert entry["location"] == {
        "dialect": "sqlite",
        "path": str(settings.CENTRAL_DIR / "omop" / f"ds_{served.pk}.sqlite3"),
    }
    assert entry["policy"] == Policy().model_dump(mode="json")  # the node's default policy
    assert CentralNode.objects.get().last_seen_at is not None


def test_the_listing_gives_no_database_password(served, settings):
    settings.CENTRAL_OMOP_DATABASE_URL = "postgresql://central:s3cret@db.example:5433/omop"
    entry = _as_central(_enrol()).get(LIST).json()["datasets"][0]
    assert entry["location"] == {
        "dialect": "postgresql",
        "url": "postgresql://central@db.example:5433/omop",
        "schema": f"ds_{served.pk}",
    }


def test_it_issues_the_node_token_of_a_dataset_enrolling_its_node_once(served, hospital_a):
    client = _as_central(_enrol())
    first = client.post(_token_url(served))
    assert first.status_code == 200
    node = Node.objects.get(name=f"central-copy-{served.pk}")
    assert node.organisation == hospital_a
    assert node.status == NodeStatus.APPROVED
    assert NodeDataset.objects.filter(node=node, dataset=served).exists()
    assert first.json() == {
        "dataset": served.pk,
        "node": node.pk,
        "node_token": first.json()["node_token"],
    }
    assert Node.authenticate(first.json()["node_token"]) == node
    assert client.get(LIST).json()["datasets"][0]["node"] == node.pk

    again = client.post(_token_url(served))  # a fresh token; the old one stops working
    assert again.status_code == 200
    assert Node.objects.filter(name__startswith="central-copy-").count() == 1
    assert Node.authenticate(first.json()["node_token"]) is None
    assert AuditEvent.objects.filter(action="central.dataset_token_issued").count() == 2


def test_a_node_revoked_by_the_provider_stays_revoked(served):
    client = _as_central(_enrol())
    assert client.post(_token_url(served)).status_code == 200
    Node.objects.filter(name=f"central-copy-{served.pk}").update(status=NodeStatus.REVOKED)
    refused = client.post(_token_url(served))
    assert refused.status_code == 409
    assert "revoked" in refused.json()["error"]["message"]
    assert Node.objects.get(name=f"central-copy-{served.pk}").status == NodeStatus.REVOKED


def test_a_dataset_without_a_served_version_has_no_token(central_dataset):
    client = _as_central(_enrol())
    assert client.get(LIST).json() == {"datasets": []}
    assert client.post(_token_url(central_dataset)).status_code == 404
    assert not Node.objects.exists()


def test_a_node_token_of_another_node_cannot_list_or_get_tokens(served, hospital_b):
    _enrol()
    _, node_token = make_node(hospital_b, "omop")
    for header in (f"Node {node_token}", f"Central {node_token}"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        assert client.get(LIST).status_code == 401
        assert client.post(_token_url(served)).status_code == 401
    assert not Node.objects.filter(name__startswith="central-copy-").exists()


@pytest.mark.parametrize("who", ["platform_admin", "steward_a", "site_admin_a"])
def test_people_cannot_use_the_central_node_api(request, served, who):
    user = request.getfixturevalue(who)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {ApiToken.issue(user=user, name='t')[1]}")
    assert client.get(LIST).status_code == 401
    assert client.post(_token_url(served)).status_code == 401
    assert APIClient().get(LIST).status_code == 401


# --- the provider's policy ----------------------------------------------------------------------


def test_the_site_admin_sets_the_policy_delivered_to_the_central_node(
    served, client_as, site_admin_a
):
    client = client_as(site_admin_a)
    page = client.get(f"/central/datasets/{served.pk}/policy/")
    assert page.status_code == 200
    assert b"min_cell_count = 5" in page.content  # the node's default until one is saved
    saved = client.post(
        f"/central/datasets/{served.pk}/policy/",
        {"policy": "[policy]\nmin_cell_count = 11\nrequire_approval = true\n"},
    )
    assert saved.status_code == 302
    stored = CentralPolicy.objects.get(dataset=served)
    assert stored.policy["min_cell_count"] == 11
    assert stored.updated_by == site_admin_a
    event = AuditEvent.objects.get(action="central.policy_changed")
    assert event.payload["policy"]["require_approval"] is True
    assert event.payload["changed"] == ["min_cell_count", "require_approval"]
    policy = _as_central(_enrol()).get(LIST).json()["datasets"][0]["policy"]
    assert Policy.model_validate(policy) == Policy(min_cell_count=11, require_approval=True)


def test_a_bad_policy_is_refused_with_the_loaders_message(served, client_as, site_admin_a):
    response = client_as(site_admin_a).post(
        f"/central/datasets/{served.pk}/policy/", {"policy": "min_cell_count = 0\n"}
    )
    assert response.status_code == 400
    assert b"min_cell_count" in response.content
    assert not CentralPolicy.objects.exists()
    assert not AuditEvent.objects.filter(action="central.policy_changed").exists()


@pytest.mark.parametrize("who", ["steward_a", "platform_admin", "outsider", "researcher"])
def test_only_the_providers_site_admin_reaches_the_policy(request, served, client_as, who):
    client = client_as(request.getfixturevalue(who))
    url = f"/central/datasets/{served.pk}/policy/"
    assert client.get(url).status_code == 404
    assert client.post(url, {"policy": "min_cell_count = 1\n"}).status_code == 404
    assert not CentralPolicy.objects.exists()


def test_the_dataset_page_links_the_policy_for_a_steward_who_is_also_site_admin(
    served, client_as, steward_a, hospital_a
):
    url = f"/central/datasets/{served.pk}/".encode()
    page = client_as(steward_a).get(f"/central/datasets/{served.pk}/")
    assert url + b"policy/" not in page.content
    assert b"your organisation's site admin sets it" in page.content
    membership = Membership.objects.get(user=steward_a, organisation=hospital_a)
    MembershipRole.objects.create(membership=membership, name=Role.SITE_ADMIN)
    page = client_as(steward_a).get(f"/central/datasets/{served.pk}/")
    assert url + b"policy/" in page.content
