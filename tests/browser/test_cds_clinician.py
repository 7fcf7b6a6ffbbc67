import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.demo import DEMO_PASSWORD
from accounts.models import AuditEvent
from cds.models import Evaluation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", "--quiet-logins")


def test_a_clinician_gets_advice_downloads_the_pdf_and_disagrees(page, demo):
    evaluations_before = Evaluation.objects.count()
    audited_before = AuditEvent.objects.filter(action="cds.evaluated").count()
    page.login("clinician.fr", DEMO_PASSWORD)
    page.get_by_role("link", name="Decision support").first.click()
    page.wait_for_url("**/cds/")
    page.check()
    page.get_by_role("link", name="EAU risk groups", exact=False).first.click()
    page.wait_for_url("**/cds/pathways/prostate-eau/")
    page.check()

    page.get_by_label("PSA at diagnosis (ng/mL)").fill("20000")
    page.get_by_label("PSA at diagnosis (ng/mL)").press("Tab")
    page.get_by_text("Must be between 0 and 10000", exact=False).wait_for()
    page.check()

    page.get_by_label("PSA at diagnosis (ng/mL)").fill("12")
    page.get_by_label("PSA at diagnosis (ng/mL)").press("Tab")
    page.get_by_label("ISUP grade group", exact=False).fill("1")
    page.get_by_label("ISUP grade group", exact=False).press("Tab")
    page.get_by_label("Clinical T category", exact=False).select_option("cT1c")
    page.get_by_label("Clinical N category", exact=False).select_option("cN0")
    page.get_by_label("Clinical M category", exact=False).select_option("cM0")
    page.get_by_role("heading", name="Result: Intermediate risk").wait_for()
    page.check()
    # The live preview stored nothing; the clinician saves the case once.
    assert Evaluation.objects.count() == evaluations_before
    assert AuditEvent.objects.filter(action="cds.evaluated").count() == audited_before

    page.get_by_role("button", name="Save evaluation").click()
    page.wait_for_url("**/cds/evaluations/*/")
    page.check()
    assert Evaluation.objects.count() == evaluations_before + 1
    assert AuditEvent.objects.filter(action="cds.evaluated").count() == audited_before + 1
    evaluation = Evaluation.objects.latest("created_at")
    shown = timezone.localtime(evaluation.created_at).strftime("%Y-%m-%d %H:%M")
    assert page.get_by_text(shown, exact=False).first.is_visible()

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Tumour board PDF").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".pdf")
    with open(download.path(), "rb") as fh:
        assert fh.read(4) == b"%PDF"

    page.get_by_role("radio", name="Disagree").check()
    page.get_by_label("Reason").fill("Biopsy under-sampled; MRI suggests higher risk.")
    page.get_by_role("button", name="Record my opinion").click()
    page.wait_for_load_state("networkidle")
    page.check()
    assert page.get_by_text("sent as feedback", exact=False).first.is_visible()

    # The dashboard lists the clinician's own evaluation, in the same local time.
    page.goto("/dashboard/")
    assert page.get_by_text(shown, exact=False).first.is_visible()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(evaluation.get_absolute_url())
