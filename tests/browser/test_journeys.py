"""Issue 16's journeys, each one test: what stopped or confused a new user must not come back.

Every page visited is checked by ``Page.check``: axe-core (no serious or critical violation), no
CSP error, nothing scrolling sideways and a feedback button that covers nothing."""

import pytest
from django.core.management import call_command

from accounts.demo import DEMO_PASSWORD
from governance.demo import PENDING_TITLE
from governance.models import AccessRequest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE, DESKTOP = 390, 1280


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", "--quiet-logins")


def test_the_request_page_reads_at_both_widths_and_a_refused_decision_stays_on_it(page, demo):
    request = AccessRequest.objects.get(project_title=PENDING_TITLE)
    url = f"/governance/requests/{request.pk}/"

    page.login("researcher", DEMO_PASSWORD)
    page.goto(url)
    # The project and its datasets take the main column, not a 16rem sidebar.
    width = page.locator("#project-h").evaluate("e => e.closest('section').offsetWidth")
    assert width > 700, width
    page.at_width(PHONE)
    page.goto(url)
    page.logout()

    page.at_width(DESKTOP)
    page.login("dac.de", DEMO_PASSWORD)
    page.goto(url)
    card = page.locator("section.card", has=page.locator("textarea[name=reason]")).first
    heading = card.get_by_role("heading").first
    # A decision card's heading is one or two lines, not a word per line.
    assert heading.evaluate("e => e.getBoundingClientRect().height") < 80
    reason = card.get_by_label("Reason or conditions", exact=False)
    reason.fill("   ")
    card.get_by_role("button", name="Request changes").click()
    page.wait_for_load_state("networkidle")
    page.check()
    assert page.get_by_text("That cannot be done now").count() == 0
    error = page.get_by_text("Give the reason; the researcher sees it.")
    assert error.is_visible()
    page.get_by_label("Reason or conditions", exact=False).first.fill(
        "Please name the statistician on the team."
    )
    page.get_by_role("button", name="Request changes").first.click()
    page.wait_for_url(f"**{url}")
    page.check()
    assert page.get_by_text("Changes requested; the researcher sees your reason.").is_visible()
    page.at_width(PHONE)
    page.goto(url)


def test_the_audit_export_follows_the_filters_and_a_bad_date_is_named(page, demo):
    from accounts import audit

    audit.record("demo.checked")
    page.login("admin", DEMO_PASSWORD)
    page.goto("/audit/")
    page.get_by_label("Action starts with").fill("demo.")
    page.get_by_label("Action starts with").press("Tab")  # htmx filters on change
    page.wait_for_url("**/audit/?*action=demo.*")
    page.check()
    export = page.get_by_role("link", name="Download these events as CSV")
    assert "action=demo." in export.get_attribute("href")
    assert page.get_by_role("cell", name="Demo checked", exact=False).first.is_visible()

    page.get_by_label("From (date or ISO time)").fill("yesterday")
    page.get_by_role("button", name="Filter").click()
    page.locator("#id_since_error").wait_for()
    page.check()
    assert "Enter a date such as" in page.locator("#id_since_error").inner_text()
    assert page.get_by_label("From (date or ISO time)").input_value() == "yesterday"
    assert page.get_by_role("link", name="Download", exact=False).count() == 0
    page.at_width(PHONE)
    page.goto("/audit/?action=demo.")


def test_signatories_sign_with_their_name_in_any_case_and_see_when_it_takes_effect(page, demo):
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from accounts.models import Organisation
    from governance import services
    from governance.models import AgreementTemplate

    starts = timezone.localdate() + timedelta(days=14)
    agreement = services.agreement_create(
        actor=get_user_model().objects.get(username="orgadmin.de"),
        template=AgreementTemplate.objects.filter(kind="data_access_use").first(),
        title="Access to the DE registry for 2027",
        effective_date=starts,
        expiry_date=starts + timedelta(days=365),
        parties=[
            (Organisation.objects.get(slug="de-hospital"), "controller"),
            (Organisation.objects.get(slug="eicor"), "data_user"),
        ],
    )
    services.agreement_send(
        actor=get_user_model().objects.get(username="orgadmin.de"), agreement=agreement
    )
    url = f"/governance/agreements/{agreement.pk}/"

    for username, expected, typed in (
        ("signatory.de", "Anna Signatory DE", "  anna   SIGNATORY de "),
        ("signatory.eicor", "Marc Signatory", "marc signatory"),
    ):
        page.login(username, DEMO_PASSWORD)
        page.goto(url)
        name = page.get_by_label("Your full name")
        assert expected in page.get_by_text("Type your name as registered").inner_text()
        name.fill("Somebody Else")
        page.get_by_label("I have read the document", exact=False).check()
        page.get_by_role("button", name="Sign").click()
        page.wait_for_load_state("networkidle")
        page.check()
        assert page.get_by_text("That cannot be done now").count() == 0
        assert f"type “{expected}”" in page.locator("[id$='_full_name_error']").inner_text()
        assert page.get_by_label("Your full name").input_value() == "Somebody Else"
        page.get_by_label("Your full name").fill(typed)
        page.get_by_label("I have read the document", exact=False).check()
        page.get_by_role("button", name="Sign").click()
        page.wait_for_url(f"**{url}")
        page.check()
        page.logout()

    page.login("signatory.de", DEMO_PASSWORD)
    page.goto(url)
    assert page.get_by_text(f"Signed — effective from {starts:%Y-%m-%d}").first.is_visible()
    page.at_width(PHONE)
    page.goto(url)
