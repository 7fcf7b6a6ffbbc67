"""The central node's two pages in the browser (docs/central.md "Analysis through the central
node", "The provider's policy"): the operator enrols the central node, sees its credential once,
rotates and revokes it; the provider's site admin sets the disclosure policy of its central copy,
a bad value named at the field. Stewards and researchers get 404 on both. axe and CSP on every
page state."""

from __future__ import annotations

import re

import pytest
import requests

from accounts.models import AuditEvent, Role
from central.models import CentralNode, CentralPolicy
from tests.catalogue.factories import DatasetFactory
from tests.factories import PASSWORD, make_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIST = "/api/central/node/datasets/"
PHONE = 390


@pytest.fixture
def central(settings, tmp_path, hospital_a):
    settings.CENTRAL_DIR = tmp_path / "central"
    settings.CENTRAL_UPLOAD_KEY = ""
    settings.CENTRAL_OMOP_DATABASE_URL = ""
    return DatasetFactory(
        publisher=hospital_a,
        title="Breast central copy",
        access_modes=["federated_analytics", "central_copy"],
    )


def _lists_datasets(live_server, credential: str) -> int:
    """The status the central node's listing answers with this credential (a request of its own:
    no browser cookie goes with it)."""
    response = requests.get(
        live_server.url + LIST, headers={"Authorization": f"Central {credential}"}, timeout=10
    )
    return response.status_code


def _shown_credential(page) -> str:
    config = page.locator("#central-node-config").inner_text()
    match = re.search(r"^CENTRAL_NODE_TOKEN=(\S+)$", config, re.MULTILINE)
    assert match, config
    return match.group(1)


def _submit(page, button: str) -> None:
    page.get_by_role("button", name=button).click()
    page.wait_for_load_state("networkidle")
    page.check()


def test_the_operator_enrols_rotates_and_revokes_the_central_node(
    page, live_server, settings, platform_admin, central
):
    page.login(platform_admin.username, PASSWORD)
    page.goto("/central/")
    page.get_by_role("link", name="The central node").click()
    page.wait_for_url("**/central/node/")
    page.check()
    assert page.get_by_text("Not enrolled yet.").is_visible()
    assert page.locator("#central-node-config").count() == 0

    _submit(page, "Enrol the central node")
    first = _shown_credential(page)
    assert first.startswith("central_")
    assert (
        f"PORTAL_URL={settings.PORTAL_BASE_URL}"
        in page.locator("#central-node-config").inner_text()
    )
    assert _lists_datasets(live_server, first) == 200

    # Reloaded, the page is opened again, not posted again (which would rotate the credential
    # just shown): it shows the credential's prefix only.
    assert page.url.endswith("/central/node/")
    reloaded = page.reload()
    page.check()
    assert reloaded.request.method == "GET"
    assert _lists_datasets(live_server, first) == 200  # still the credential in force
    assert page.locator("#central-node-config").count() == 0
    assert first not in page.content()
    prefix = CentralNode.objects.get().token_prefix
    assert first.startswith(prefix) and len(prefix) < len(first)
    assert page.get_by_text(f"credential {prefix}…").is_visible()

    _submit(page, "Rotate the credential")
    second = _shown_credential(page)
    assert second != first
    assert _lists_datasets(live_server, first) == 401
    assert _lists_datasets(live_server, second) == 200

    page.goto("/central/node/")
    _submit(page, "Revoke the credential")
    assert page.get_by_text("The central node's credential was revoked.").is_visible()
    assert page.get_by_role("button", name="Enrol the central node").is_visible()
    assert _lists_datasets(live_server, second) == 401

    events = list(AuditEvent.objects.filter(action__startswith="central.node_").order_by("pk"))
    assert [(e.action, e.payload.get("rotated"), e.actor_id) for e in events] == [
        ("central.node_enrolled", False, platform_admin.pk),
        ("central.node_enrolled", True, platform_admin.pk),
        ("central.node_revoked", None, platform_admin.pk),
    ]


@pytest.mark.parametrize("who", ["steward_a", "researcher"])
def test_stewards_and_researchers_find_neither_page(request, page, central, who):
    user = request.getfixturevalue(who)
    page.login(user.username, PASSWORD)
    for path in ("/central/node/", f"/central/datasets/{central.pk}/policy/"):
        response = page.goto(path)
        assert response.status == 404, path
    if who == "steward_a":
        page.goto(f"/central/datasets/{central.pk}/")
        assert page.get_by_role("link", name="Disclosure policy").count() == 0
        assert page.get_by_text("your organisation's site admin sets it").is_visible()


def test_the_providers_site_admin_sets_the_policy_from_the_dataset_page(page, central, hospital_a):
    # A hospital's site admin who also stewards its datasets reaches the policy from the
    # dataset's central page.
    admin = make_member(hospital_a, Role.SITE_ADMIN, Role.DATA_STEWARD, username="siteadmin_a")
    page.login(admin.username, PASSWORD)
    page.goto("/central/")
    page.get_by_role("link", name="Breast central copy").first.click()
    page.wait_for_url(f"**/central/datasets/{central.pk}/")
    page.check()
    page.get_by_role("link", name="Disclosure policy").click()
    page.wait_for_url(f"**/central/datasets/{central.pk}/policy/")
    page.check()
    field = page.get_by_label("Policy (TOML)")
    assert "min_cell_count = 5" in field.input_value()  # the node's default until one is saved
    assert field.get_attribute("aria-invalid") is None
    assert page.get_by_text("the copy is pooled per site", exact=False).is_visible()

    field.fill("min_cell_count = 0")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Save the policy").click()
    assert answer.value.status == 400
    page.wait_for_load_state("networkidle")
    page.check()
    field = page.get_by_label("Policy (TOML)")
    assert field.get_attribute("aria-invalid") == "true"
    assert field.input_value() == "min_cell_count = 0"  # what was typed stays to be corrected
    error = page.locator("#" + field.get_attribute("aria-describedby"))
    assert "min_cell_count" in error.inner_text()
    assert "greater than or equal to 1" in error.inner_text()
    assert not CentralPolicy.objects.filter(dataset=central).exists()

    field.fill("min_cell_count = 10\nreview_before_release = true")
    page.get_by_role("button", name="Save the policy").click()
    page.wait_for_url(f"**/central/datasets/{central.pk}/policy/")
    page.wait_for_load_state("networkidle")
    page.check()
    assert page.get_by_text("The policy was saved", exact=False).is_visible()
    field = page.get_by_label("Policy (TOML)")
    assert field.get_attribute("aria-invalid") is None
    saved = field.input_value()
    assert "min_cell_count = 10" in saved and "review_before_release = true" in saved
    assert page.get_by_text("the copy is pooled per site", exact=False).is_visible()
    page.at_width(PHONE)
    page.goto(f"/central/datasets/{central.pk}/policy/")

    stored = CentralPolicy.objects.get(dataset=central)
    assert stored.policy["min_cell_count"] == 10 and stored.policy["review_before_release"]
    event = AuditEvent.objects.get(action="central.policy_changed")
    assert event.actor_id == admin.pk
    assert event.payload["changed"] == ["min_cell_count", "review_before_release"]
