"""The key of the uploads at rest: from the environment (or its file), a dev/test key file, and
refusals for a missing key in production or a malformed one; records are bound to their place."""

from __future__ import annotations

import base64

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from central import vault


def test_it_makes_a_private_key_file_in_development(_central_dir):
    first = vault.key()
    path = _central_dir / "upload.key"
    assert len(first) == 32 and vault.key() == first
    assert path.stat().st_mode & 0o777 == 0o600


def test_it_takes_the_configured_key(settings):
    settings.CENTRAL_UPLOAD_KEY = base64.b64encode(b"k" * 32).decode()
    assert vault.key() == b"k" * 32


@pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(b"short").decode()])
def test_it_refuses_a_malformed_key(settings, bad):
    settings.CENTRAL_UPLOAD_KEY = bad
    with pytest.raises(ImproperlyConfigured):
        vault.key()
    assert "central.W002" in [m.id for m in run_checks(include_deployment_checks=True)]


def test_production_needs_a_key(settings):
    settings.DEBUG = settings.TESTING = False
    with pytest.raises(ImproperlyConfigured, match="CENTRAL_UPLOAD_KEY is not set"):
        vault.key()
    assert "central.W001" in [m.id for m in run_checks(include_deployment_checks=True)]


def test_records_cannot_be_reordered(settings):
    stored = vault.append("u1", 0, b"first", stored_bytes=0)
    stored = vault.append("u1", 1, b"second", stored_bytes=stored)
    assert b"".join(vault.chunks("u1", stored_bytes=stored)) == b"firstsecond"
    data = vault.path_for("u1").read_bytes()
    one = vault.HEADER.size + vault.HEADER.unpack(data[: vault.HEADER.size])[0]
    vault.path_for("u1").write_bytes(data[one:] + data[:one])
    with pytest.raises(vault.VaultError, match="cannot be decrypted"):
        b"".join(vault.chunks("u1", stored_bytes=stored))
