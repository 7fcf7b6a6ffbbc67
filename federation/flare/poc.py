"""FLARE's POC mode on this machine: a real FLARE server and clients, on 127.0.0.1 only.

``nvflare poc prepare`` provisions the startup kits from a project file we write (server port of
our choosing), then we pin every kit to 127.0.0.1 (the server listens on the loopback only when its
target is a loopback address). ``HOME`` and ``NVFLARE_POC_WORKSPACE`` point into the workspace so
nothing is written to the user's ``~/.nvflare``. Each FLARE client finds its site's OMOP database
through ``OPTIMA_NODE_CONFIG`` (``{site}`` is replaced by the site name). Every step has a timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import FlareUnavailable, require_nvflare

PROJECT = "optima_poc"
ADMIN_USER = "admin@optima.example"
REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Poc:
    workspace: Path
    sites: list[str]
    port: int
    site_config: str = ""  # OPTIMA_NODE_CONFIG for the clients, may contain {site}

    STATE_FILE = "optima_poc.json"

    def save(self) -> None:
        state = {"sites": self.sites, "port": self.port, "site_config": self.site_config}
        (self.workspace / self.STATE_FILE).write_text(json.dumps(state), encoding="utf-8")

    @classmethod
    def load(cls, workspace: str | Path) -> Poc | None:
        """The POC system prepared in ``workspace``, if any."""
        workspace = Path(workspace)
        try:
            state = json.loads((workspace / cls.STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return cls(
            workspace, list(state["sites"]), int(state["port"]), state.get("site_config", "")
        )

    @property
    def prod_dir(self) -> Path:
        return self.workspace / "poc" / PROJECT / "prod_00"

    @property
    def admin_kit(self) -> Path:
        return self.prod_dir / ADMIN_USER

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        home = self.workspace / "home"
        home.mkdir(parents=True, exist_ok=True)
        bin_dir = str(Path(sys.executable).parent)
        env.update(
            HOME=str(home),
            NVFLARE_POC_WORKSPACE=str(self.workspace / "poc"),
            PATH=bin_dir + os.pathsep + env.get("PATH", ""),
            PYTHONPATH=str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        )
        if self.site_config:
            env["OPTIMA_NODE_CONFIG"] = self.site_config
        env.pop("DJANGO_SETTINGS_MODULE", None)
        return env

    def _nvflare(self, *args: str, timeout: float) -> subprocess.CompletedProcess:
        require_nvflare()
        cli = shutil.which("nvflare", path=str(Path(sys.executable).parent)) or "nvflare"
        try:
            return subprocess.run(
                [cli, *args],
                env=self.env(),
                cwd=self.workspace,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise FlareUnavailable(
                f"nvflare {' '.join(args)} did not finish in {timeout:.0f} s"
            ) from exc

    def prepare(self) -> None:
        self.workspace.mkdir(parents=True, exist_ok=True)
        project = {
            "api_version": 3,
            "name": PROJECT,
            "description": "OPTIMA federated learning POC",
            "participants": [
                {
                    "name": "server",
                    "type": "server",
                    "org": "optima",
                    "fed_learn_port": self.port,
                    "default_host": "127.0.0.1",
                },
                {"name": ADMIN_USER, "type": "admin", "org": "optima", "role": "project_admin"},
                *({"name": s, "type": "client", "org": "optima"} for s in self.sites),
            ],
            "builders": [
                {
                    "path": "nvflare.lighter.impl.workspace.WorkspaceBuilder",
                    "args": {"template_file": ["master_template.yml"]},
                },
                {
                    "path": "nvflare.lighter.impl.static_file.StaticFileBuilder",
                    "args": {"config_folder": "config"},
                },
                {"path": "nvflare.lighter.impl.cert.CertBuilder"},
                {"path": "nvflare.lighter.impl.signature.SignatureBuilder"},
            ],
        }
        project_file = self.workspace / "project.yml"
        project_file.write_text(yaml.safe_dump(project, sort_keys=False), encoding="utf-8")
        done = self._nvflare("poc", "prepare", "-i", str(project_file), "--force", timeout=120)
        if done.returncode != 0 or not self.prod_dir.exists():
            raise FlareUnavailable(
                f"nvflare poc prepare failed: {done.stdout[-800:]}{done.stderr[-800:]}"
            )
        self._pin_loopback()
        self.save()

    def _pin_loopback(self) -> None:
        target = f"127.0.0.1:{self.port}"
        server = self.prod_dir / "server" / "startup" / "fed_server.json"
        data = json.loads(server.read_text())
        for entry in data["servers"]:
            entry["service"]["target"] = target
            entry["admin_host"] = "127.0.0.1"
            entry["admin_port"] = self.port
        server.write_text(json.dumps(data, indent=2))
        for site in self.sites:
            path = self.prod_dir / site / "startup" / "fed_client.json"
            data = json.loads(path.read_text())
            for entry in data["servers"]:
                entry["service"]["target"] = target
            path.write_text(json.dumps(data, indent=2))
        admin = self.admin_kit / "startup" / "fed_admin.json"
        data = json.loads(admin.read_text())
        data["admin"].update(host="127.0.0.1", port=self.port)
        admin.write_text(json.dumps(data, indent=2))

    def start(self, timeout: float = 90) -> None:
        done = self._nvflare("poc", "start", "--timeout", str(int(timeout)), timeout=timeout + 30)
        if done.returncode != 0:
            self.stop()
            raise FlareUnavailable(
                f"nvflare poc start failed: {done.stdout[-1500:]}{done.stderr[-800:]}"
            )

    def stop(self, timeout: float = 60) -> None:
        try:
            self._nvflare("poc", "stop", timeout=timeout)
        except FlareUnavailable:
            pass
        finally:
            self.kill_leftovers()

    def stop_site(self, site: str, timeout: float = 60) -> None:
        """Stop one FLARE client (a site going away mid-job)."""
        self._nvflare("poc", "stop", "-p", site, timeout=timeout)

    def kill_leftovers(self) -> None:
        """Kill, by pid, FLARE processes still running from this workspace (never by name)."""
        marker = str(self.prod_dir)
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (
                    (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:
                continue
            if marker in cmdline and "nvflare" in cmdline:
                with contextlib.suppress(OSError):
                    os.kill(int(proc.name), 9)
