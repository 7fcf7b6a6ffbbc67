"""Node liveness (never seen / online / stale / offline), its audited transitions and the metrics."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts.models import AuditEvent
from federation import selectors, services, versions
from federation.models import Liveness, Node, NodeHeartbeat
from tests.federation.factories import SimNode, make_node


def test_liveness_follows_missed_heartbeats(hospital_a, site_urls):
    node, token = make_node(hospital_a)
    assert node.liveness() == Liveness.NEVER_SEEN
    sim = SimNode(node, token, site_urls[0])
    sim.heartbeat()
    sim.close()
    node = Node.objects.get(pk=node.pk)
    interval = node.poll_interval_seconds
    seen = node.last_seen_at
    assert node.liveness(seen + timedelta(seconds=interval * 2.5)) == Liveness.ONLINE
    assert node.liveness(seen + timedelta(seconds=interval * 3.5)) == Liveness.STALE
    assert node.liveness(seen + timedelta(seconds=interval * 11.5)) == Liveness.OFFLINE


def test_beat_audits_each_transition_once(hospital_a, site_urls):
    node, token = make_node(hospital_a)
    sim = SimNode(node, token, site_urls[0])
    sim.heartbeat()
    later = timezone.now() + timedelta(hours=1)
    services.nodes_check_liveness(now=later)
    services.nodes_check_liveness(now=later)
    assert AuditEvent.objects.filter(action="node.offline", object_id=str(node.pk)).count() == 1
    sim.heartbeat()
    assert AuditEvent.objects.filter(action="node.online", object_id=str(node.pk)).count() == 2
    sim.close()


def test_availability_counts_minutes_with_a_heartbeat(hospital_a):
    node, _ = make_node(hospital_a)
    now = timezone.now().replace(second=0, microsecond=0)
    Node.objects.filter(pk=node.pk).update(
        approved_at=now - timedelta(minutes=100), first_seen_at=now - timedelta(minutes=100)
    )
    NodeHeartbeat.objects.bulk_create(
        [NodeHeartbeat(node=node, minute=now - timedelta(minutes=m)) for m in range(50)]
    )
    node = Node.objects.get(pk=node.pk)
    metrics = selectors.node_metrics([node], now=now)[node.pk]
    assert metrics["availability"] == 0.5
    assert metrics["median_turnaround_seconds"] is None


def test_old_agents_and_unsupported_cdm_are_warned_about(hospital_a, monkeypatch):
    monkeypatch.setattr(versions, "AGENT_RELEASE", "0.3.0")
    node, _ = make_node(hospital_a)
    node.agent_version, node.cdm_version = "0.1.9", "5.3"
    warnings = " ".join(node.warnings())
    assert "more than one minor version behind the current release 0.3.0" in warnings
    assert "CDM version 5.3 is not supported" in warnings
