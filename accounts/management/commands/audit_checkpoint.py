from django.core.management.base import BaseCommand

from accounts.checkpoints import CheckpointRefused, directory, write


class Command(BaseCommand):
    help = (
        "Sign and store a checkpoint of the audit chain (head hash, count, time) in "
        "AUDIT_CHECKPOINT_DIR; exit 1 without writing when the chain does not verify."
    )

    def handle(self, *args, **options):
        try:
            checkpoint = write()
        except CheckpointRefused as exc:
            self.stderr.write(self.style.ERROR(f"No checkpoint written: {exc}."))
            raise SystemExit(1) from None
        if checkpoint is None:
            self.stdout.write("Nothing new since the newest checkpoint (or no events yet).")
            return
        self.stdout.write(self.style.SUCCESS(f"Checkpoint {checkpoint} written to {directory()}."))
