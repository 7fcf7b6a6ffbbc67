"""Start the test OpenID Connect provider (this folder's Django project) as its own process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.processes import stop, wait_for

HERE = Path(__file__).resolve().parent
CLIENT_ID = "optima-portal"
CLIENT_SECRET = "test-client-secret-not-for-production"


@dataclass
class RunningProvider:
    issuer: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        stop(self.process)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(state_dir: Path, issuer: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(HERE),
        "OIDC_TEST_DIR": str(state_dir),
        "OIDC_TEST_ISSUER": issuer,
    }


def _manage(args: list[str], env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, str(HERE / "manage.py"), *args],
        cwd=HERE,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


def start(state_dir: Path, *, portal_url: str, users: list[dict]) -> RunningProvider:
    """Set up a fresh database with the portal as client and ``users``; serve on a free port."""
    state_dir.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (state_dir / "signing-key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    port = free_port()
    issuer = f"http://127.0.0.1:{port}/o"
    env = _env(state_dir, issuer)
    _manage(
        [
            "setup_provider",
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            CLIENT_SECRET,
            "--redirect-uri",
            f"{portal_url}/accounts/oidc/test/callback/",
            "--post-logout-redirect-uri",
            f"{portal_url}/accounts/login/",
            "--users",
            json.dumps(users),
        ],
        env,
    )
    log = state_dir / "provider.log"
    process = subprocess.Popen(
        [sys.executable, str(HERE / "manage.py"), "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=HERE,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def discovered() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the test provider exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(issuer + "/.well-known/openid-configuration", timeout=2):
                return True
        except OSError:
            return False

    wait_for(discovered, timeout=30, what="the test OpenID Connect provider")
    return RunningProvider(issuer=issuer, process=process, log=log)
