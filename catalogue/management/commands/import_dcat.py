from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from catalogue import importer


class Command(BaseCommand):
    help = (
        "Import datasets from a DCAT-AP catalogue (file or http(s) URL) as a data steward: each "
        "dataset becomes a draft (or a new draft of a published one) of an organisation the user "
        "stewards, for the usual review. Idempotent by dct:identifier; all or nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", help="Path or URL of a Turtle, JSON-LD or RDF/XML catalogue.")
        parser.add_argument(
            "--as",
            dest="username",
            required=True,
            metavar="USERNAME",
            help="The acting user: a data steward of every publisher the source names.",
        )
        parser.add_argument(
            "--format", choices=["turtle", "json-ld", "xml", "nt"], help="Override the guess."
        )

    def handle(self, *args, source: str, username: str, format: str | None = None, **options):
        try:
            # The file is read and checked first: its problems need no database.
            graph = importer.load(source, format)
        except importer.ImportFailed as exc:
            raise CommandError(f"{exc} Nothing was imported.") from exc
        user_model = get_user_model()
        actor = user_model.objects.filter(
            **{user_model.USERNAME_FIELD: username}, is_active=True
        ).first()
        if actor is None:
            raise CommandError(f"No active user {username!r}. Nothing was imported.")
        try:
            report = importer.import_graph(graph, source=source, actor=actor)
        except importer.ImportRefused as exc:
            for refusal in exc.report.refused:
                self.stderr.write(f"refused  {refusal.identifier}: {refusal.reason}")
            raise CommandError(
                f"{len(exc.report.refused)} dataset(s) refused. Nothing was imported."
            ) from exc
        except importer.ImportFailed as exc:
            raise CommandError(f"{exc} Nothing was imported.") from exc
        for identifier in report.created:
            self.stdout.write(f"created  {identifier} (draft)")
        for identifier in report.updated:
            self.stdout.write(f"updated  {identifier} (draft)")
        for identifier, why in report.skipped:
            self.stdout.write(f"skipped  {identifier}: {why}")
        for note in report.notes:
            self.stdout.write(f"note     {note}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(report.created)} created, {len(report.updated)} updated, "
                f"{len(report.skipped)} skipped. Submit the drafts for review to publish them."
            )
        )
