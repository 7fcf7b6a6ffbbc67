"""Backup and restore (docs/operations.md): the database dump plus the media tarball, restored into
an empty database, show the same agreements, requests, entitlements and an intact audit chain."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import uuid

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from accounts.models import AuditEvent
from governance.models import AccessRequest, Agreement, Entitlement
from tests.processes import ROOT, database_url_for_subprocess, subprocess_env
from tests.security.matrix_world import _Null

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

COUNT = (
    "import json;from accounts.models import AuditEvent;"
    "from governance.models import AccessRequest, Agreement, Entitlement;"
    "print(json.dumps({"
    "'agreements': sorted(Agreement.objects.values_list('id', 'title', 'status', 'document_sha256')),"
    "'requests': sorted(AccessRequest.objects.values_list('pk', 'status')),"
    "'entitlements': Entitlement.objects.count(),"
    "'last_hash': AuditEvent.objects.order_by('-seq').values_list('hash', flat=True).first()}))"
)


def _manage(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = subprocess_env(DATABASE_URL=database_url, MEDIA_ROOT=str(settings.MEDIA_ROOT))
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _state() -> dict:
    return json.loads(
        json.dumps(
            {
                "agreements": sorted(
                    Agreement.objects.values_list("id", "title", "status", "document_sha256")
                ),
                "requests": sorted(AccessRequest.objects.values_list("pk", "status")),
                "entitlements": Entitlement.objects.count(),
                "last_hash": AuditEvent.objects.order_by("-seq")
                .values_list("hash", flat=True)
                .first(),
            }
        )
    )


def _backup_sqlite(tmp_path) -> str:
    source = connection.settings_dict["NAME"]
    target = tmp_path / "backup.sqlite3"
    # The documented command: sqlite3 var/optima.sqlite3 ".backup 'backup.sqlite3'" (online).
    subprocess.run(["sqlite3", str(source), f".backup '{target}'"], check=True, timeout=120)
    restored = tmp_path / "restored.sqlite3"
    subprocess.run(["sqlite3", str(restored), f".restore '{target}'"], check=True, timeout=120)
    return f"sqlite:///{restored}"


def _backup_postgres(tmp_path) -> str:
    source_url = database_url_for_subprocess()
    dump = tmp_path / "optima.dump"
    subprocess.run(
        ["pg_dump", "--format=custom", "--no-owner", f"--file={dump}", source_url],
        check=True,
        timeout=300,
    )
    name = f"restore_{uuid.uuid4().hex[:8]}"
    base = source_url.rsplit("/", 1)[0]
    subprocess.run(["createdb", f"--maintenance-db={source_url}", name], check=True)
    subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={base}/{name}", str(dump)],
        check=True,
        timeout=300,
    )
    return f"{base}/{name}"


def test_a_restored_backup_has_the_same_governance_records_and_an_intact_audit_chain(
    tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("seed_demo", "--quiet-logins", stdout=_Null())
    before = _state()
    assert before["agreements"] and before["requests"] and before["last_hash"]
    files = sorted(p.relative_to(settings.MEDIA_ROOT) for p in settings.MEDIA_ROOT.rglob("*.*"))
    assert files, "the demo stores signed agreements and attachments under MEDIA_ROOT"

    # Media: tar -C "$MEDIA_ROOT" -czf media.tar.gz .
    archive = tmp_path / "media.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(settings.MEDIA_ROOT, arcname=".")

    restored_url = (
        _backup_postgres(tmp_path)
        if connection.vendor == "postgresql"
        else _backup_sqlite(tmp_path)
    )
    restored_media = tmp_path / "restored-media"
    restored_media.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(restored_media, filter="data")
    assert sorted(p.relative_to(restored_media) for p in restored_media.rglob("*.*")) == files

    verify = _manage(restored_url, "audit_verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "Audit chain intact" in verify.stdout
    check = _manage(restored_url, "migrate", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    shell = _manage(restored_url, "shell", "-c", COUNT)
    assert shell.returncode == 0, shell.stderr
    after = json.loads(shell.stdout.strip().splitlines()[-1])
    assert after == before
