"""The dataset page with its database profile (seeded by seed_demo through the real services):
charts, freshness, the steward's update interval; axe and CSP on desktop and at 390 px."""

import pytest
from django.core.management import call_command

from accounts.demo import DEMO_PASSWORD
from catalogue.models import Dataset, DatasetProfile

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(transactional_db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", "--quiet-logins")


def _no_horizontal_scroll(page) -> bool:
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def test_the_profile_on_the_dataset_page_desktop_and_phone(page, demo):
    dataset = Dataset.objects.filter(
        publisher__slug="de-hospital", current_version__isnull=False
    ).first()
    assert DatasetProfile.objects.filter(dataset=dataset).exists()
    page.login("steward.de", DEMO_PASSWORD)
    page.goto(f"/catalogue/datasets/{dataset.identifier}/")
    section = page.get_by_role("region", name="Database profile")
    assert section.get_by_role("img", name="Age pyramid at first observation").is_visible()
    assert section.get_by_role("img", name="Records per table").is_visible()
    assert section.get_by_role("img", name="Freshness per table").is_visible()
    assert "days ago" in page.locator("#freshness").inner_text()

    page.get_by_label("Agreed update interval (days)").fill("30")
    page.get_by_role("button", name="Save interval").click()
    page.wait_for_load_state("networkidle")
    page.check()
    assert "update overdue" in page.locator("#freshness").inner_text()

    page.goto("/catalogue/?freshness=overdue")
    assert page.get_by_role("link", name=dataset.title).is_visible()

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/catalogue/datasets/{dataset.identifier}/")
    assert page.get_by_role("img", name="Age pyramid at first observation").is_visible()
    wide = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
        .slice(0, 8).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' +
          Math.round(e.getBoundingClientRect().right))"""
    )
    assert _no_horizontal_scroll(page), wide
