"""Issue 16, items 1 and 2: a newly published, entitled dataset becomes analysable once its steward
chooses the hospital's node and the node's site admin confirms; until then the researcher is told
why. Every page is checked with axe-core at desktop width and at 390 px."""

from __future__ import annotations

import pytest

from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def check_both_widths(page) -> None:
    page.check()
    page.set_viewport_size(PHONE)
    page.check()
    page.set_viewport_size(DESKTOP)


@pytest.fixture
def psma(hospital_a, researcher):
    from tests.federation.factories import grant_federated_analytics, make_dataset, make_node

    node, _ = make_node(hospital_a, "omop-a")
    dataset = make_dataset(hospital_a, "PSMA PET cohort")
    grant_federated_analytics(researcher, dataset)  # both committees approved
    return dataset, node


def test_steward_links_site_admin_confirms_researcher_analyses(
    page, psma, steward_a, site_admin_a, researcher
):
    dataset, node = psma
    detail = f"/catalogue/datasets/{dataset.identifier}/"

    # The researcher, entitled, cannot choose it yet and is told why.
    page.login(researcher.username, PASSWORD)
    page.goto("/federation/analyses/new/")
    check_both_widths(page)
    note = page.locator("#other-datasets")
    assert "PSMA PET cohort" in note.inner_text()
    assert "not served by any node yet" in note.inner_text()
    assert page.get_by_role("checkbox", name="PSMA PET cohort").count() == 0
    page.logout()

    # The steward chooses the hospital's node on the dataset page.
    page.login(steward_a.username, PASSWORD)
    page.goto(detail)
    check_both_widths(page)
    page.get_by_label("Serve from node").select_option(label=str(node))
    page.get_by_role("button", name="Propose node").click()
    page.get_by_text("its site admin was asked to confirm", exact=False).first.wait_for()
    check_both_widths(page)
    page.logout()

    # The site admin finds the task on the dashboard and confirms on the node page.
    page.login(site_admin_a.username, PASSWORD)
    page.goto("/dashboard/")
    check_both_widths(page)
    page.get_by_role("link", name="PSMA PET cohort at omop-a").click()
    page.wait_for_url(f"**/federation/nodes/{node.pk}/")
    check_both_widths(page)
    page.get_by_role("button", name="Confirm PSMA PET cohort").click()
    page.get_by_text("now serves PSMA PET cohort", exact=False).first.wait_for()
    check_both_widths(page)
    page.logout()

    # The researcher can now choose it.
    page.login(researcher.username, PASSWORD)
    page.goto(detail)
    check_both_widths(page)
    assert page.get_by_text("You can analyse this dataset", exact=False).first.is_visible()
    page.goto("/federation/analyses/new/")
    check_both_widths(page)
    assert page.get_by_role("checkbox", name="PSMA PET cohort").count() == 1
