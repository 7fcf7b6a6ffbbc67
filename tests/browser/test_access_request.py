import datetime

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts.demo import DEMO_PASSWORD
from catalogue.models import Dataset

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", "--quiet-logins")


def _published(slug: str) -> Dataset:
    return Dataset.objects.filter(publisher__slug=slug, status="published").order_by("pk").first()


def test_a_researcher_requests_two_datasets_and_both_committees_approve(page, demo, tmp_path):
    nl, se = _published("nl-hospital"), _published("se-hospital")
    ethics = tmp_path / "ethics-approval.pdf"
    ethics.write_bytes(PDF)

    page.login("researcher", DEMO_PASSWORD)
    for dataset in (nl, se):
        page.goto(reverse("catalogue:detail", args=[dataset.identifier]))
        page.get_by_role("link", name="Request access").first.click()
        page.wait_for_load_state("networkidle")
        page.check()
        page.get_by_role("button", name="Add to basket").click()
        page.wait_for_url("**/governance/basket/")
        page.check()

    page.get_by_label("Project title").fill(
        "Real-world outcomes of prostate and lung cancer in the North"
    )
    page.get_by_role("button", name="Start the request").click()
    page.wait_for_url("**/governance/requests/*/edit/")
    page.check()
    page.get_by_label("Research question").fill(
        "Does survival after diagnosis differ between the two regions?"
    )
    page.get_by_label("Lay summary").fill(
        "We compare how long people live after a cancer diagnosis in two regions."
    )
    page.get_by_label("Purpose").select_option(index=1)
    end = (datetime.date.today() + datetime.timedelta(days=365)).isoformat()
    page.get_by_label("Requested end date").fill(end)
    page.get_by_label("Ethics approval reference").fill("EC-2026-117")
    for dataset in (nl, se):
        page.locator(f"[name='mode_{dataset.pk}']").select_option("federated_analytics")
        page.locator(f"[name='terms_{dataset.pk}']").check()
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_load_state("networkidle")
    page.check()
    page.get_by_label("Kind").select_option(label="Ethics approval")
    page.locator("#id_file").set_input_files(str(ethics))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_load_state("networkidle")
    page.check()
    page.get_by_role("button", name="Save and submit").click()
    page.wait_for_url("**/governance/requests/*/")
    page.check()
    request_url = page.url
    assert page.get_by_text("Submitted").first.is_visible()
    page.logout()

    for dac in ("dac.nl", "dac.se"):
        page.login(dac, DEMO_PASSWORD)
        page.goto(request_url)
        page.get_by_role("button", name="Approve").first.click()
        page.wait_for_load_state("networkidle")
        page.check()
        page.logout()

    page.login("researcher", DEMO_PASSWORD)
    page.goto(request_url)
    assert page.get_by_text("Approved").first.is_visible()
    page.goto("/dashboard/")
    entitlements = page.get_by_role("region", name="My entitlements")
    for dataset in (nl, se):
        assert entitlements.get_by_text(dataset.title, exact=False).first.is_visible()
