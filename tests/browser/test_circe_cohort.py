"""A researcher pastes an ATLAS cohort into the analysis form and reads it back in words."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from accounts.demo import DEMO_PASSWORD
from federation.models import Analysis, NodeDataset
from tests.federation.factories import grant_federated_analytics
from tests.federation.test_circe_end_to_end import DEFINITION

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", "--quiet-logins")


def test_a_researcher_starts_an_analysis_from_an_atlas_definition(page, demo):
    researcher = get_user_model().objects.get(username="researcher")
    served = NodeDataset.objects.select_related("dataset").first().dataset
    grant_federated_analytics(researcher, served)
    page.login("researcher", DEMO_PASSWORD)
    page.goto("/federation/analyses/new/")
    page.locator("select[name=analysis]").select_option("cohort_count:1")
    page.locator(f"input[name=datasets][value='{served.pk}']").check()
    page.get_by_label("Cohort from ATLAS (JSON)").fill(json.dumps(DEFINITION))
    page.get_by_role("button", name="Start analysis").click()
    page.wait_for_load_state("networkidle")
    page.check()
    assert (
        Analysis.objects.filter(researcher=researcher)
        .latest("pk")
        .params["cohort"]["circe"]["ConceptSets"][0]["name"]
        == "Lung cancer"
    )
    section = page.get_by_role("region", name="Cohort definition (ATLAS/Circe)")
    assert section.is_visible()
    assert "Malignant tumor of lung (4115276) [with descendants]" in section.inner_text()
    assert "age at index ≥ 50" in section.inner_text()
