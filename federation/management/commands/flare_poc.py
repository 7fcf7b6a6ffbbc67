"""``manage.py flare_poc start|stop|status``: FLARE's POC mode for the demo hospitals' nodes.

``start`` provisions (once) a FLARE server and one client per demo node (named after the node, as
the portal expects) under ``var/flare/poc`` on 127.0.0.1, writes each client's site configuration
(``var/flare/sites/<node>.toml``: the node's OMOP database and policy file) and starts everything.
The portal then finds the admin startup kit by itself (or set ``FLARE_ADMIN_STARTUP_KIT``).
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from federation.flare import FlareUnavailable, nvflare_available


class Command(BaseCommand):
    help = "Start, stop or show FLARE's POC system for the demo nodes (127.0.0.1 only)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["start", "stop", "status"])
        parser.add_argument("--timeout", type=float, default=90.0)

    def handle(self, *args, action: str, timeout: float, **options):
        if not nvflare_available():
            from federation.flare import INSTALL_HINT

            raise CommandError(INSTALL_HINT)
        from federation.flare.poc import Poc, free_port
        from federation.flare.services import work_dir

        workspace = work_dir() / "poc"
        system = Poc.load(workspace)
        try:
            if action == "stop":
                if system is None:
                    self.stdout.write("No POC system prepared.")
                    return
                system.stop()
                self.stdout.write("FLARE POC stopped.")
                return
            if action == "status":
                self.stdout.write(
                    "No POC system prepared."
                    if system is None
                    else f"POC at {workspace}: server 127.0.0.1:{system.port}, "
                    f"sites {', '.join(system.sites)}; admin kit {system.admin_kit}"
                )
                return
            sites = self._site_configs(work_dir() / "sites")
            if not sites:
                raise CommandError("No demo nodes with a configuration: run `make run` once first.")
            if system is None or sorted(system.sites) != sorted(sites):
                system = Poc(
                    workspace, sorted(sites), free_port(), str(work_dir() / "sites" / "{site}.toml")
                )
                system.prepare()
            system.start(timeout=timeout)
        except FlareUnavailable as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"FLARE POC running on 127.0.0.1:{system.port} with sites {', '.join(system.sites)}.\n"
            f"Admin startup kit: {system.admin_kit}\nStop it with: manage.py flare_poc stop"
        )

    def _site_configs(self, out: Path) -> list[str]:
        """One FLARE site per approved demo node, configured from the node agent's own file."""
        from federation import demo
        from federation.models import Node, NodeStatus
        from optima_node.config import read_toml

        out.mkdir(parents=True, exist_ok=True)
        names = []
        for node in Node.objects.filter(status=NodeStatus.APPROVED).select_related("organisation"):
            config = demo.nodes_dir() / f"{node.organisation.slug}.toml"
            if not config.exists():
                continue
            raw = read_toml(config)
            lines = [f'omop_database_url = "{raw["omop_database_url"]}"']
            if raw.get("policy_file"):
                lines.append(f'policy_file = "{raw["policy_file"]}"')
            (out / f"{node.name}.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
            names.append(node.name)
        return names
