"""The R client (clients/r) against a live portal with node agents: its testthat suite, run by
Rscript with the portal's URL and a demo researcher's token (docs/clients/r.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "r"
# testthat's summary reporter; a failing expectation makes Rscript exit non-zero.
TEST_R = 'testthat::test_local("{}", reporter = "summary", stop_on_failure = TRUE)'


def rscript() -> str:
    """Rscript, or a skip on a developer machine without R; CI must have it (.ci/run)."""
    found = shutil.which("Rscript")
    if found:
        return found
    message = "Rscript is missing: apt-get install r-base-core r-cran-httr2 r-cran-jsonlite "
    message += "r-cran-testthat r-cran-survival r-cran-roxygen2 (.ci/run does)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.slow_check
@pytest.mark.integration
def test_it_passes_the_r_client_tests_against_a_live_portal(live_network):
    completed = subprocess.run(
        [rscript(), "-e", TEST_R.format(PACKAGE)],
        cwd=PACKAGE,
        env={**live_network.env, "NOT_CRAN": "true"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, f"the R client's tests failed:\n{output}"
    # The suite skips only without OPTIMA_URL/OPTIMA_TOKEN: a skip here means it tested nothing.
    assert "Skipped" not in output, output
    assert "══ DONE" in output, output


def test_it_fails_without_rscript_in_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="Rscript is missing"):
        rscript()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="Rscript is missing"):
        rscript()
