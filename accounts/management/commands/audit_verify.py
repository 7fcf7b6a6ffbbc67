from django.core.management.base import BaseCommand

from accounts.audit import verify_chain


class Command(BaseCommand):
    help = "Walk the audit hash chain; exit 1 naming the first broken event, 0 with the count otherwise."

    def handle(self, *args, **options):
        report = verify_chain()
        if report.ok:
            self.stdout.write(
                self.style.SUCCESS(f"Audit chain intact: {report.count} events verified.")
            )
            return
        where = f"event #{report.broken_seq}" + (
            f" (id {report.broken_id})" if report.broken_id else ""
        )
        self.stderr.write(
            self.style.ERROR(
                f"Audit chain broken at {where}: {report.reason}. "
                f"{report.count} events before it verified."
            )
        )
        raise SystemExit(1)
