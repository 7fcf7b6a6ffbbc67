import pytest
from django.core.management import call_command

from accounts.demo import DEMO_PASSWORD, PERSONA_LOGINS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", "--quiet-logins")


def test_the_home_page_is_accessible(page, demo):
    page.goto("/")
    assert page.get_by_role("heading", level=1).is_visible()


@pytest.mark.parametrize(
    ("persona", "username"), PERSONA_LOGINS, ids=[u for _, u in PERSONA_LOGINS]
)
def test_every_persona_logs_in_and_lands_on_the_dashboard(page, demo, persona, username):
    page.login(username, DEMO_PASSWORD)
    assert page.url.endswith("/dashboard/")
    assert page.get_by_role("heading", name="Your next actions").is_visible()
    page.logout()
    assert "/accounts/login/" in page.url


def test_a_wrong_password_shows_a_message(page, demo):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("researcher")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Log in").click()
    page.check()
    assert "/accounts/login/" in page.url
    assert page.get_by_role("alert").is_visible()


def test_an_admin_filters_the_audit_trail(page, demo):
    from accounts import audit

    audit.record("demo.checked")
    page.login("admin", DEMO_PASSWORD)
    page.goto("/audit/")
    page.get_by_label("Action starts with").fill("demo.")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/audit/?*action=demo.*")
    page.check()
    assert page.get_by_text("demo.checked").is_visible()
