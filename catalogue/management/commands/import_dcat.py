from django.core.management.base import BaseCommand, CommandError

from catalogue import importer


class Command(BaseCommand):
    help = (
        "Import datasets from a DCAT-AP catalogue (file or http(s) URL). Idempotent by "
        "dct:identifier; all or nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", help="Path or URL of a Turtle, JSON-LD or RDF/XML catalogue.")
        parser.add_argument(
            "--format", choices=["turtle", "json-ld", "xml", "nt"], help="Override the guess."
        )

    def handle(self, *args, source: str, format: str | None = None, **options):
        try:
            graph = importer.load(source, format)
            report = importer.import_graph(graph, source=source)
        except importer.ImportFailed as exc:
            raise CommandError(f"{exc} Nothing was imported.") from exc
        for identifier in report.created:
            self.stdout.write(f"created  {identifier}")
        for identifier in report.updated:
            self.stdout.write(f"updated  {identifier}")
        for identifier, why in report.skipped:
            self.stdout.write(f"skipped  {identifier}: {why}")
        for note in report.notes:
            self.stdout.write(f"note     {note}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(report.created)} created, {len(report.updated)} updated, "
                f"{len(report.skipped)} skipped."
            )
        )
