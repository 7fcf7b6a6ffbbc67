"""``manage.py central_node enroll|revoke``: the operator enrols the platform's one central node
(or rotates its credential) and gets the supervisor's configuration, the credential last (shown
once); ``revoke`` revokes the credential. The same as the operator's page ``/central/node/``.

Run ``optima-node central`` with that configuration: it serves every central copy, each through
the dataset's own node of the data provider, under the provider's policy.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from central import services, warehouse


class Command(BaseCommand):
    help = "Enrol the central node (or rotate its credential), or revoke it."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("enroll", help="enrol the central node, or rotate its credential")
        sub.add_parser("revoke", help="revoke the central node's credential")

    def handle(self, *args, action, **options):
        actor = "manage.py central_node"
        if action == "revoke":
            try:
                services.central_node_revoke(actor=actor)
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
            self.stdout.write("The central node's credential is revoked.")
            return
        _, token = services.central_node_enrol(actor=actor)
        self.stdout.write(
            "The central node is enrolled. Supervisor configuration (the credential is shown once):"
        )
        self.stdout.write(f"PORTAL_URL={settings.PORTAL_BASE_URL}")
        if warehouse.is_postgresql():
            self.stdout.write("CENTRAL_OMOP_DATABASE_URL=<the analysis database URL, password>")
        self.stdout.write(f"CENTRAL_NODE_TOKEN={token}")
