from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts import otp


class Command(BaseCommand):
    help = "Print the current two-factor code of a demo user (admin, dac.*): demo data only."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        device = otp.confirmed_devices(user).filter(name=otp.DEMO_DEVICE_NAME).first()
        if device is None or device.key != otp.DEMO_TOTP_KEY:
            raise CommandError(f"{username} has no demo authenticator (run manage.py seed_demo).")
        self.stdout.write(otp.current_code(device.key))
