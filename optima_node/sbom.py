"""The software bill of materials of the node image: every Debian package (dpkg) and Python
distribution installed, as CycloneDX 1.5 JSON on stdout (``python -m optima_node.sbom``).

node/build-image.sh runs it inside the built image and stores the result in the image at
/usr/share/optima-node/sbom.json. It carries no timestamp, so the same packages give the same
document and the same digest (the digest the agent reports as its image digest).
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from typing import Any
from urllib.parse import quote

from optima_node import __version__

DPKG_FORMAT = "${Package}\t${Version}\t${Architecture}\t${db:Status-Abbrev}\n"


def debian_packages() -> list[dict[str, Any]]:
    """Installed Debian packages (none where dpkg is missing, e.g. outside the image)."""
    try:
        listing = subprocess.run(
            ["dpkg-query", "-W", f"-f={DPKG_FORMAT}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    components = []
    for line in listing.splitlines():
        name, version, arch, status = line.split("\t")
        if not status.startswith("ii"):
            continue
        components.append(
            {
                "type": "library",
                "name": name,
                "version": version,
                "purl": f"pkg:deb/debian/{name}@{quote(version, safe='')}?arch={arch}",
                "properties": [{"name": "optima:source", "value": "dpkg"}],
            }
        )
    return components


def python_distributions() -> list[dict[str, Any]]:
    """Python distributions visible to this interpreter (the venv and Debian's python3-*)."""
    seen: dict[str, dict[str, Any]] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name or name.lower() in seen:
            continue  # the venv's copy shadows a system one of the same name
        location = str(dist.locate_file(""))
        seen[name.lower()] = {
            "type": "library",
            "name": name,
            "version": dist.version,
            "purl": f"pkg:pypi/{name.lower().replace('_', '-')}@{dist.version}",
            "properties": [{"name": "optima:location", "value": location}],
        }
    return list(seen.values())


def build_sbom() -> dict[str, Any]:
    components = sorted(
        debian_packages() + python_distributions(), key=lambda c: (c["purl"], c["name"])
    )
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "component": {
                "type": "container",
                "name": "optima-node",
                "version": __version__,
            },
            "tools": {"components": [{"type": "application", "name": "optima_node.sbom"}]},
        },
        "components": components,
    }


def main() -> int:
    json.dump(build_sbom(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
