import re

import pytest
from django.core.management import call_command

from accounts.demo import DEMO_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", "--quiet-logins")


def test_feedback_goes_from_the_widget_through_triage_to_resolution(page, demo):
    page.login("clinician.fr", DEMO_PASSWORD)
    page.goto("/catalogue/")
    page.locator("#feedback-button").click()
    page.locator("#feedback-panel form").wait_for()
    page.check()
    page.locator("#feedback_category").select_option("usability")
    page.locator("#feedback_persona").select_option("clinician")
    page.locator("#feedback_title").fill("Facet counts are hard to read on a tablet")
    page.locator("#feedback_description").fill(
        "On a 10-inch tablet the facet counts wrap under the labels."
    )
    page.get_by_role("button", name="Send feedback").click()
    confirmation = page.get_by_text("Your feedback was recorded as", exact=False)
    confirmation.wait_for()
    page.check()
    item_url = page.locator("#feedback-panel a[href^='/feedback/']").first.get_attribute("href")
    assert re.fullmatch(r"/feedback/\d+/", item_url)
    page.logout()

    page.login("admin", DEMO_PASSWORD)
    page.goto(item_url)
    page.locator("summary", has_text="Triage").click()
    page.locator("#id_triage-priority").select_option(index=1)
    page.get_by_role("button", name="Save triage").click()
    page.get_by_text("is now “Triaged”", exact=False).wait_for()
    page.check()
    page.get_by_role("button", name="Start work").click()
    page.wait_for_load_state("networkidle")
    page.check()
    page.locator("summary", has_text="Resolve").click()
    page.locator("#id_resolve-resolution_note").fill("Facet labels now wrap above their counts.")
    page.locator("#id_resolve-fixed_in_version").fill("0.2.0")
    page.get_by_role("button", name="Resolve").click()
    page.wait_for_load_state("networkidle")
    page.check()
    page.logout()

    page.login("clinician.fr", DEMO_PASSWORD)
    page.goto(item_url)
    assert (
        "Facet labels now wrap above their counts." in page.locator("#resolution-note").inner_text()
    )
    assert page.get_by_text("0.2.0", exact=False).first.is_visible()
