"""The harness itself: a researcher of the live network finds the lung datasets by id in the
catalogue listing, sees the same ids with titles in the entitlements, and the demo nodes are up."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow_check, pytest.mark.integration]


def test_it_lists_the_lung_datasets_with_their_ids_and_the_entitlements_name_them(live_network):
    status, listing = live_network.api("GET", "datasets/?indication=lung&per_page=100")
    assert status == 200
    listed = {d["id"]: d["title"] for d in listing["results"]}
    assert set(live_network.lung_dataset_ids) <= listed.keys()

    status, entitlements = live_network.api("GET", "entitlements/?status=active")
    assert status == 200
    held = {e["dataset"]["id"]: e["dataset"]["title"] for e in entitlements["results"]}
    for dataset_id in live_network.lung_dataset_ids:
        assert held[dataset_id] == listed[dataset_id]


def test_it_refuses_an_analysis_on_a_lung_dataset_the_researcher_is_not_entitled_to(live_network):
    assert live_network.unentitled_lung_dataset_ids
    status, body = live_network.api(
        "POST",
        "analyses/",
        {
            "type": "cohort_count",
            "datasets": live_network.unentitled_lung_dataset_ids[:1],
            "params": {"cohort": {"condition_concept_ids": [4115276]}},
        },
    )
    assert status == 403, body
    assert "no active entitlement" in body["error"]["message"]
