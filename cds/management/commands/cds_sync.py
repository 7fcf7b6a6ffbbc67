"""Load the pathway files into versioned rows; refuse to activate a pathway whose own tests fail."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from cds import services


class Command(BaseCommand):
    help = (
        "Load cds/pathways/*.yaml: a changed file becomes a new version; a file marked active "
        "whose embedded test cases pass becomes the active version. Exits non-zero when any "
        "file is invalid or fails its own test cases. Audited."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--directory", help="Directory of pathway files (default: cds/pathways)."
        )

    def handle(self, *args, directory=None, **options):
        report = services.pathway_sync(actor="cds_sync", directory=directory)
        if not report.lines:
            raise CommandError(f"No pathway files found in {directory or 'cds/pathways'}.")
        for line in report.lines:
            name = f"{line.pathway or line.file} {line.version}".strip()
            text = (
                f"{name} [{line.checksum[:10]}]: {line.outcome}"
                if line.checksum
                else f"{name}: {line.outcome}"
            )
            if line.message:
                text += f": {line.message}"
            style = self.style.ERROR if line.failed else self.style.SUCCESS
            self.stdout.write(style(text))
            for failure in line.failures:
                self.stdout.write(f"    - {failure}")
        if report.failed:
            names = ", ".join(line.pathway or line.file for line in report.failed)
            raise CommandError(
                f"{len(report.failed)} pathway file(s) not activated: {names}. "
                "Fix the file (or its test cases) and run cds_sync again."
            )
