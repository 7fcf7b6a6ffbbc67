"""``manage.py central_node enroll --dataset ID``: the operator enrols the node agent that serves a
dataset's central copy, and gets the agent's configuration (the token last, shown once).

Run the agent (``optima-node run``) with that configuration and the data provider's policy file;
it reads the served version under a stable name, so a refresh needs no new configuration.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from catalogue.models import Dataset
from central import services


class Command(BaseCommand):
    help = "Enrol the node agent serving a dataset's central copy; prints its configuration."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        enroll = sub.add_parser("enroll", help="enrol (or re-enrol) the central node of a dataset")
        enroll.add_argument("--dataset", required=True, type=int, help="dataset id")

    def handle(self, *args, action, dataset, **options):
        found = Dataset.objects.filter(pk=dataset).select_related("publisher").first()
        if found is None:
            raise CommandError(f"No dataset with id {dataset}.")
        try:
            node, token, url, schema = services.central_node_enrol(
                actor="manage.py central_node", dataset=found
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(
            f"Node {node.pk} '{node.name}' of {found.publisher.name} is approved and serves the "
            f"central copy of {found.title}. Agent configuration (the token is shown once):"
        )
        self.stdout.write(f"PORTAL_URL={settings.PORTAL_BASE_URL}")
        self.stdout.write(f"OMOP_DATABASE_URL={url}")
        if schema:
            self.stdout.write(f"CDM_SCHEMA={schema}")
        self.stdout.write(f"NODE_TOKEN={token}")
