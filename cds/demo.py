"""Demo data for CDS: load and activate the pathways shipped in cds/pathways (like cds_sync)."""

from __future__ import annotations

from . import services


def seed(stdout=None) -> None:
    report = services.pathway_sync(actor="seed_demo")
    if stdout is not None:
        for line in report.lines:
            stdout.write(f"cds: {line.pathway or line.file} {line.version} {line.outcome}")
        for line in report.failed:
            stdout.write(f"cds: WARNING {line.file} not activated: {line.message}")
