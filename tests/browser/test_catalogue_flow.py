import pytest
from django.core.management import call_command

from accounts.demo import DEMO_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TITLE = "Zeeland thoracic oncology registry"


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", "--quiet-logins")


def test_a_steward_registers_a_curator_publishes_and_a_visitor_finds_it(page, demo):
    page.login("steward.de", DEMO_PASSWORD)
    page.goto("/catalogue/new/")
    page.locator("#id_title").fill(TITLE)
    # Submitting too early: a summary at the top names each missing field and links to it.
    page.get_by_role("button", name="Save and submit for review").click()
    page.wait_for_url("**/edit/?checked=1")
    page.check()
    summary = page.get_by_role("alert").filter(has_text="Please fix these before submitting")
    assert summary.get_by_role("link").count() >= 8
    assert page.get_by_text("Distributions is required").count() == 0
    summary.get_by_role("link", name="Description", exact=False).click()
    assert page.evaluate("document.activeElement.id") == "id_description"
    page.locator("#id_description").fill(
        "Patients diagnosed with lung cancer at the hospital since 2015, mapped to OMOP CDM 5.4."
    )
    page.get_by_label("Keywords", exact=False).first.fill("thoracic, registry, lung")
    page.get_by_label("Contact e-mail", exact=False).fill("steward@example.org")
    page.get_by_label("Non-small cell lung cancer", exact=False).check()
    page.get_by_role("group", name="Data categories").get_by_label("Clinical").check()
    page.get_by_label("Non-public", exact=True).check()
    page.get_by_role("group", name="Access modes").get_by_label("Federated analytics").check()
    page.get_by_label("Legal basis", exact=False).select_option(index=1)
    page.get_by_label("Terms of use", exact=False).first.fill("Aggregates only; cite the registry.")
    # The node is one of the hospital's approved nodes (seeded by the federation demo).
    page.get_by_label("Node serving the federated OMOP database").select_option(index=1)
    page.check()
    page.get_by_role("button", name="Save and submit for review").click()
    page.get_by_text("Submitted for review", exact=False).first.wait_for()
    page.check()
    page.logout()

    page.login("curator", DEMO_PASSWORD)
    page.goto("/catalogue/review/")
    page.get_by_role("link", name=TITLE).click()
    page.wait_for_load_state("networkidle")
    page.check()
    page.get_by_role("button", name="Publish").click()
    page.get_by_text("Published.", exact=False).first.wait_for()
    page.check()
    page.logout()

    page.goto("/catalogue/")
    # A script that touched element.style leaves style="" behind; htmx must not copy it onto
    # the swapped results (the CSP refuses inline styles: ~25 errors per facet click).
    page.evaluate(
        "document.querySelectorAll('[id]').forEach(e => { e.style.color = 'red';"
        " e.style.removeProperty('color'); })"
    )
    # The header's "Log in" button: white on the brand colour's header, brand text on white.
    colour, background = page.get_by_role("link", name="Log in").evaluate(
        "e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]"
    )
    assert colour != background
    page.get_by_role("group", name="Cancer indication").get_by_label(
        "Lung cancer", exact=False
    ).first.check()
    page.wait_for_url("**indication=lung**")
    page.check()
    # Typing filters the results in place (htmx) and updates the bookmarkable URL.
    page.get_by_label("Search title, description and keywords").press_sequentially("thoracic")
    page.wait_for_url("**q=thoracic**")
    page.locator("#search-results").get_by_role("link", name=TITLE).wait_for()
    page.check()
    page.get_by_role("link", name=TITLE).click()
    page.wait_for_url("**/catalogue/datasets/*/")
    page.check()
    assert page.get_by_role("heading", name=TITLE).is_visible()
    # Back to the catalogue: the search and its filters are kept.
    page.get_by_role("link", name="← Catalogue").click()
    page.wait_for_url("**/catalogue/?*")
    assert "q=thoracic" in page.url and "indication=lung" in page.url
    page.check()
    page.at_width(390)
    page.check()
    page.get_by_role("link", name=TITLE).click()
    page.wait_for_url("**/catalogue/datasets/*/")
    page.check()
