"""Pages that answer a POST with a secret shown once (a personal API token here; node tokens,
recovery codes and the central node's credential do the same) name their own address: reloading
the page opens it again instead of posting again, which would have issued a second secret."""

from __future__ import annotations

import pytest
import requests

from accounts.models import ApiToken
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_reloading_the_page_that_shows_a_new_api_token_issues_no_second_token(
    page, live_server, researcher
):
    page.login(researcher.username, PASSWORD)
    page.goto("/accounts/tokens/")
    page.get_by_label("Name").fill("analysis notebook")
    page.get_by_role("button", name="Create token").click()
    page.wait_for_load_state("networkidle")
    page.check()
    token = page.locator("#new-token").inner_text().strip()
    assert ApiToken.objects.filter(user=researcher).count() == 1

    assert page.url.endswith("/accounts/tokens/")
    reloaded = page.reload()
    page.check()
    assert reloaded.request.method == "GET"
    assert page.locator("#new-token").count() == 0 and token not in page.content()
    assert ApiToken.objects.filter(user=researcher).count() == 1
    answer = requests.get(
        f"{live_server.url}/api/entitlements/",
        headers={"Authorization": f"Token {token}"},
        timeout=10,
    )
    assert answer.status_code == 200
