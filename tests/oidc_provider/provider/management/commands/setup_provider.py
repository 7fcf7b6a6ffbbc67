"""Migrate, register the portal as a client and create the provider's users (idempotent).

One command, so the test pays for one Django start-up before the server's."""

from __future__ import annotations

import json

from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import BaseCommand
from oauth2_provider.models import Application


class Command(BaseCommand):
    help = "Register one OIDC client and users given as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--client-id", required=True)
        parser.add_argument("--client-secret", required=True)
        parser.add_argument("--redirect-uri", required=True)
        parser.add_argument("--post-logout-redirect-uri", required=True)
        parser.add_argument(
            "--users",
            required=True,
            help='[{"username", "password", "email", "first_name", "last_name", "mfa"}]',
        )

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        Application.objects.update_or_create(
            client_id=options["client_id"],
            defaults={
                "name": "OPTIMA Portal (test)",
                "client_secret": options["client_secret"],
                "client_type": Application.CLIENT_CONFIDENTIAL,
                "authorization_grant_type": Application.GRANT_AUTHORIZATION_CODE,
                "redirect_uris": options["redirect_uri"],
                "post_logout_redirect_uris": options["post_logout_redirect_uri"],
                "algorithm": Application.RS256_ALGORITHM,
                "skip_authorization": True,
            },
        )
        mfa_group, _ = Group.objects.get_or_create(name="mfa")
        for spec in json.loads(options["users"]):
            user, _ = User.objects.get_or_create(username=spec["username"])
            user.email = spec["email"]
            user.first_name = spec.get("first_name", "")
            user.last_name = spec.get("last_name", "")
            user.set_password(spec["password"])
            user.save()
            if spec.get("mfa"):
                user.groups.add(mfa_group)
        self.stdout.write("provider ready")
