"""``manage.py node_enrol --org ORG --name NAME [--datasets ID,…]``: an approved node for scripts.

Prints the node token as its last line (shown once; stored hashed). Running it again for the same
node issues a new token, so the previous one stops working.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organisation
from catalogue.selectors import datasets_of_publisher
from federation import services


class Command(BaseCommand):
    help = (
        "Create (or re-enrol) an approved node serving the given datasets; prints its token last."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organisation slug (or id)")
        parser.add_argument("--name", required=True, help="node name, unique in the organisation")
        parser.add_argument("--datasets", default="", help="comma-separated dataset ids")

    def handle(self, *args, org, name, datasets, **options):
        organisation = Organisation.objects.filter(slug=org).first()
        if organisation is None and org.isdigit():
            organisation = Organisation.objects.filter(pk=int(org)).first()
        if organisation is None:
            raise CommandError(f"No organisation {org!r}.")
        try:
            ids = [int(part) for part in datasets.split(",") if part.strip()]
        except ValueError as exc:
            raise CommandError("--datasets takes comma-separated numeric ids.") from exc
        found = {d.pk: d for d in datasets_of_publisher(organisation=organisation, ids=ids)}
        missing = [i for i in ids if i not in found]
        if missing:
            raise CommandError(
                f"No dataset of {organisation.slug} with id {', '.join(map(str, missing))}."
            )
        node, token = services.node_enrol(
            actor="manage.py node_enrol",
            organisation=organisation,
            name=name.strip(),
            datasets=[found[i] for i in ids],
        )
        self.stdout.write(
            f"Node {node.pk} '{node.name}' of {organisation.name} is approved and serves "
            f"{len(ids)} dataset(s). Its token (shown once):"
        )
        self.stdout.write(token)
