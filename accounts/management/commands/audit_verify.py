from django.core.management.base import BaseCommand

from accounts import checkpoints


class Command(BaseCommand):
    help = (
        "Walk the keyed audit hash chain and compare it with every checkpoint in "
        "AUDIT_CHECKPOINT_DIR; exit 1 naming each problem, 0 with the count otherwise."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--require-checkpoint",
            action="store_true",
            help="Fail when there is no checkpoint (production: the checkpoint store is mounted).",
        )

    def handle(self, *args, **options):
        report, found, problems = checkpoints.check()
        if not report.ok:
            where = f"event #{report.broken_seq}" + (
                f" (id {report.broken_id})" if report.broken_id else ""
            )
            self.stderr.write(
                self.style.ERROR(
                    f"Audit chain broken at {where}: {report.reason}. "
                    f"{report.count} events before it verified."
                )
            )
        for problem in problems:
            self.stderr.write(self.style.ERROR(f"Audit checkpoint mismatch: {problem}."))
        if not found and options["require_checkpoint"]:
            self.stderr.write(
                self.style.ERROR(f"No audit checkpoint in {checkpoints.directory()}.")
            )
            raise SystemExit(1)
        if not report.ok or problems:
            raise SystemExit(1)
        if found:
            note = f"; {len(found)} checkpoint(s) match (newest {found[-1]})"
        else:
            note = (
                f"; no checkpoint in {checkpoints.directory()} "
                "(only the key protects the chain: run manage.py audit_checkpoint)"
            )
        self.stdout.write(
            self.style.SUCCESS(f"Audit chain intact: {report.count} events verified{note}.")
        )
