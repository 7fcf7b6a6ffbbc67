import importlib

from django.core.management.base import BaseCommand

from accounts import demo, otp

# Order follows the layers: each app's demo data may use the data of the ones before it.
APPS = ("catalogue", "cds", "feedback", "governance", "federation", "central")


class Command(BaseCommand):
    help = (
        "Create (or refresh) the demo organisations, people and each app's demo data. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--quiet-logins", action="store_true", help="Do not print the demo logins."
        )

    def handle(self, *args, quiet_logins=False, **options):
        with demo.seed_mail_discarded():
            demo.seed(stdout=self.stdout)
            otp.seed_demo_devices(stdout=self.stdout)
            for label in APPS:
                try:
                    module = importlib.import_module(f"{label}.demo")
                except ModuleNotFoundError:
                    continue
                module.seed(stdout=self.stdout)
        if not quiet_logins:
            self.stdout.write(f"\nDemo logins (password for all: {demo.DEMO_PASSWORD}):")
            for persona, username in demo.PERSONA_LOGINS:
                self.stdout.write(f"  {persona:<36} {username}")
            self.stdout.write(
                f"Two-factor code for admin and dac.* (demo secret {otp.DEMO_TOTP_BASE32}): "
                "manage.py demo_totp USERNAME"
            )
