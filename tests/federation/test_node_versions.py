"""The agent version against the current release, the site admin's warning and notification, and
the node image digest reported in heartbeats (issue 20)."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent, Notification
from federation import versions
from federation.models import Node
from tests.federation.factories import SimNode, make_node

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.fixture
def release_030(monkeypatch):
    monkeypatch.setattr(versions, "AGENT_RELEASE", "0.3.0")


@pytest.fixture
def sim(hospital_a, site_admin_a, site_urls):
    node, token = make_node(hospital_a)
    sim = SimNode(node, token, site_urls[0])
    yield sim
    sim.close()


def _beat(sim: SimNode, **changes):
    body = sim.agent.build_heartbeat().model_dump(mode="json") | changes
    return sim.client.post("/api/node/heartbeat/", body, format="json")


@pytest.mark.parametrize(
    ("reported", "outdated"),
    [("0.3.0", False), ("0.2.9", False), ("0.2.0", False), ("0.1.9", True), ("0.4.0", False)],
)
def test_it_tolerates_one_minor_version_behind(release_030, reported, outdated):
    assert versions.agent_is_outdated(reported) is outdated


def test_it_counts_an_older_major_version_as_outdated(monkeypatch):
    monkeypatch.setattr(versions, "AGENT_RELEASE", "1.0.0")
    assert versions.agent_is_outdated("0.9.0")
    assert not versions.agent_is_outdated("1.0.0")
    assert not versions.agent_is_outdated("unknown")


def test_it_notifies_site_admins_once_per_outdated_version(
    release_030, sim, site_admin_a, steward_a, outsider
):
    for _ in range(3):
        assert _beat(sim, agent_version="0.1.0").status_code == 200
    notes = Notification.objects.filter(verb="node.agent_outdated")
    (first,) = notes.all()
    assert first.recipient == site_admin_a
    assert first.subject == "Node omop runs agent 0.1.0: please upgrade to 0.3.0"
    warned = AuditEvent.objects.filter(action="node.agent_outdated", object_id=str(sim.node.pk))
    assert [e.payload for e in warned] == [{"agent_version": "0.1.0", "release": "0.3.0"}]
    assert _beat(sim, agent_version="0.1.5").status_code == 200
    assert notes.all().count() == 2
    assert _beat(sim, agent_version="0.2.0").status_code == 200  # within tolerance: no notice
    assert notes.all().count() == 2
    node = Node.objects.get(pk=sim.node.pk)
    assert node.warnings() == []


def test_it_warns_on_the_node_page_and_in_the_api(
    release_030, sim, site_admin_a, client_as, api_as, outsider
):
    _beat(sim, agent_version="0.1.0", image_digest=DIGEST)
    page = client_as(site_admin_a).get(f"/federation/nodes/{sim.node.pk}/")
    text = page.content.decode()
    assert "more than one minor version behind the current release 0.3.0" in text
    assert DIGEST in text
    data = api_as(site_admin_a).get(f"/api/nodes/{sim.node.pk}/").json()
    assert data["agent_version"] == "0.1.0"
    assert data["agent_release"] == "0.3.0"
    assert data["agent_outdated"] is True
    assert data["image_digest"] == DIGEST
    assert api_as(outsider).get(f"/api/nodes/{sim.node.pk}/").status_code == 404
    assert client_as(outsider).get(f"/federation/nodes/{sim.node.pk}/").status_code == 404


def test_it_stores_and_audits_the_image_digest_the_agent_reports(sim):
    sim.agent.image_digest = DIGEST
    assert sim.heartbeat().status_code == 200
    node = Node.objects.get(pk=sim.node.pk)
    assert node.image_digest == DIGEST
    event = AuditEvent.objects.filter(action="node.reported", object_id=str(node.pk)).last()
    assert event.payload["image_digest"] == DIGEST


def test_it_refuses_a_malformed_image_digest(sim):
    response = _beat(sim, image_digest="sha256:not-hex")
    assert response.status_code == 400
    assert "image_digest" in str(response.json())
    assert Node.objects.get(pk=sim.node.pk).image_digest == ""
