"""A steward uploads the demo OMOP extract through the browser: the chunked upload with its
progress bar, the check report, the load's progress, the served version; then a broken extract
is refused with a report. The whole file's SHA-256 is computed in slices (static/central/
filehash.js) and equals Python's. axe and CSP on every page."""

from __future__ import annotations

import hashlib
import json

import pytest

from accounts.models import AuditEvent
from central.models import DatasetVersion, Upload, UploadStatus
from optima_node.synth import csv_zip, generate
from tests.catalogue.factories import DatasetFactory
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def central(settings, tmp_path, hospital_a):
    settings.CENTRAL_DIR = tmp_path / "central"
    settings.CENTRAL_UPLOAD_KEY = ""
    settings.CENTRAL_OMOP_DATABASE_URL = ""
    settings.CENTRAL_CHUNK_MAX_BYTES = 8 * 1024  # several chunks for a small extract
    return DatasetFactory(
        publisher=hospital_a, title="Prostate central copy", access_modes=["central_copy"]
    )


# Records every text the progress line shows (in sessionStorage, which outlives the navigation to
# the upload's page), so the test sees the "Checking file" phase and the sending phase.
WATCH_PROGRESS = """() => {
  const text = document.getElementById("central-progress-text");
  new MutationObserver(() => {
    const seen = JSON.parse(sessionStorage.getItem("seenProgress") || "[]");
    seen.push(text.textContent);
    sessionStorage.setItem("seenProgress", JSON.stringify(seen));
  }).observe(text, {childList: true, characterData: true, subtree: true});
}"""

HASH_IN_BROWSER = """async ([sizes, slice]) => {
  const { sha256OfFile } = await import("/static/central/filehash.js");
  const out = {};
  for (const size of sizes) {
    const bytes = new Uint8Array(size);
    for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) % 256;
    const seen = [];
    const file = new File([bytes], "x.bin");
    out[size] = { hash: await sha256OfFile(file, slice, (done) => seen.push(done)), seen };
  }
  return out;
}"""


def _pattern(size: int) -> bytes:
    return bytes((i * 31 + 7) % 256 for i in range(size))


def _upload(page, path) -> None:
    page.get_by_label("OMOP CDM extract").set_input_files(str(path))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/central/uploads/*/", timeout=60_000)
    page.wait_for_function(
        "() => !document.querySelector('#upload-status[hx-trigger]')", timeout=60_000
    )
    page.check()


def test_a_steward_uploads_the_demo_extract_and_then_a_broken_one(
    page, central, steward_a, tmp_path
):
    extract = tmp_path / "demo-omop.zip"
    extract.write_bytes(csv_zip(generate(200, 3, ["prostate"])))
    page.login(steward_a.username, PASSWORD)
    page.goto("/central/")
    page.get_by_role("link", name="Prostate central copy").click()
    page.wait_for_load_state("networkidle")
    page.check()

    _upload(page, extract)
    assert page.locator("#upload-state").inner_text() == "Loaded"
    assert page.locator("#load-progress").get_attribute("value") == "100"
    assert "Passed" in page.locator("#upload-status").inner_text()
    upload = Upload.objects.get()
    assert upload.chunks > 1 and upload.status == UploadStatus.LOADED
    assert DatasetVersion.objects.get().persons == 200
    assert not list((central_dir := tmp_path / "central" / "uploads").iterdir()), central_dir
    assert set(
        AuditEvent.objects.filter(object_type="central.upload").values_list("action", flat=True)
    ) >= {"central.upload_started", "central.check_passed", "central.load_completed"}

    page.get_by_role("link", name="Central copy of Prostate central copy").click()
    page.wait_for_load_state("networkidle")
    page.check()
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip at all")
    page.get_by_label("OMOP CDM extract").set_input_files(str(broken))
    page.get_by_role("button", name="Upload").click()
    alert = page.locator("#central-error")
    alert.wait_for(state="visible")
    assert "not a zip" in alert.inner_text()


def test_a_steward_uploads_the_synthea_sample(page, central, steward_a, settings):
    from tests.central.conftest import SYNTHEA_ZIP

    if not SYNTHEA_ZIP.exists():
        pytest.fail(f"the shared OMOP sample is missing: {SYNTHEA_ZIP} (CI has ../shared)")
    settings.CENTRAL_CHUNK_MAX_BYTES = 1024 * 1024
    page.login(steward_a.username, PASSWORD)
    page.goto(f"/central/datasets/{central.pk}/")
    page.get_by_label("OMOP CDM extract").set_input_files(str(SYNTHEA_ZIP))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/central/uploads/*/", timeout=120_000)
    page.wait_for_function(
        "() => !document.querySelector('#upload-status[hx-trigger]')", timeout=300_000
    )
    page.check()
    assert page.locator("#upload-state").inner_text() == "Loaded"
    # The report lists the warnings (the sample's vocabulary slice lacks its type concepts).
    assert "concept_in_vocabulary" in page.locator("#check-report").inner_text()
    assert DatasetVersion.objects.get().persons == 28


def test_the_page_hashes_a_file_in_slices_as_python_does(page, central, steward_a):
    page.login(steward_a.username, PASSWORD)
    page.goto(f"/central/datasets/{central.pk}/")
    slice_bytes = 1000
    sizes = [0, 1, 999, 1000, 1001, 3500, 64 * 1024 + 3]

    hashed = page.evaluate(HASH_IN_BROWSER, [sizes, slice_bytes])

    for size in sizes:
        got = hashed[str(size)]
        assert got["hash"] == hashlib.sha256(_pattern(size)).hexdigest(), size
        # One progress call per slice, each after the slice was hashed.
        assert got["seen"] == list(range(slice_bytes, size, slice_bytes)) + ([size] if size else [])


def test_a_file_of_many_chunks_is_checked_in_slices_then_sent_and_loaded(
    page, central, steward_a, tmp_path, settings
):
    settings.CENTRAL_CHUNK_MAX_BYTES = 8 * 1024
    extract = tmp_path / "bigger-omop.zip"
    data = csv_zip(generate(2000, 11, ["prostate", "breast"]))
    extract.write_bytes(data)
    assert len(data) > 8 * settings.CENTRAL_CHUNK_MAX_BYTES, len(data)
    page.login(steward_a.username, PASSWORD)
    page.goto(f"/central/datasets/{central.pk}/")
    page.evaluate(WATCH_PROGRESS)
    page.get_by_label("OMOP CDM extract").set_input_files(str(extract))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/central/uploads/*/", timeout=120_000)
    page.wait_for_function(
        "() => !document.querySelector('#upload-status[hx-trigger]')", timeout=300_000
    )
    page.check()

    assert page.locator("#upload-state").inner_text() == "Loaded"
    upload = Upload.objects.get()
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert upload.chunks == -(-len(data) // settings.CENTRAL_CHUNK_MAX_BYTES)
    assert DatasetVersion.objects.get().persons == 2000
    seen = json.loads(page.evaluate("() => sessionStorage.getItem('seenProgress')"))
    checking = [t for t in seen if t.startswith("Checking file")]
    assert checking[0] == "Checking file 0%" and checking[-1] == "Checking file 100%"
    assert len(checking) > 8  # one line per slice
    assert seen.index(checking[-1]) < seen.index(next(t for t in seen if "% sent" in t))
    assert seen[-1].startswith("100% sent")
