"""The node image's SBOM generator (optima_node.sbom), run here on the test machine's packages;
tests/node/test_node_image.py checks the SBOM built into the image."""

from __future__ import annotations

import json
import subprocess
from importlib import metadata

from optima_node import __version__, sbom


def test_it_lists_python_distributions_with_versions_and_purls():
    document = sbom.build_sbom()
    assert (document["bomFormat"], document["specVersion"]) == ("CycloneDX", "1.5")
    assert document["metadata"]["component"]["version"] == __version__
    pypi = {
        c["name"].lower(): c for c in document["components"] if c["purl"].startswith("pkg:pypi/")
    }
    assert pypi["pydantic"]["version"] == metadata.version("pydantic")
    assert pypi["pydantic"]["purl"] == f"pkg:pypi/pydantic@{metadata.version('pydantic')}"


def test_it_lists_installed_debian_packages_as_dpkg_reports_them():
    shown = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "libc6"], capture_output=True, text=True, check=True
    ).stdout
    debs = {c["name"]: c for c in sbom.debian_packages()}
    assert debs["libc6"]["version"] == shown
    assert debs["libc6"]["purl"].startswith("pkg:deb/debian/libc6@")


def test_it_is_deterministic(capsys):
    sbom.main()
    first = capsys.readouterr().out
    sbom.main()
    assert capsys.readouterr().out == first
    assert json.loads(first)["components"] == sorted(
        json.loads(first)["components"], key=lambda c: (c["purl"], c["name"])
    )
