"""Uploaded extracts at rest: AES-GCM records in one file per upload, the key never in the database.

The file is a sequence of records ``length (4 bytes) | nonce (12) | ciphertext and tag``, one per
accepted chunk. Each record is bound to its upload and its position (the associated data), so
records cannot be swapped between uploads or reordered. The key comes from ``CENTRAL_UPLOAD_KEY``
(or ``CENTRAL_UPLOAD_KEY_FILE``): 32 random bytes, base64. In development (``DEBUG=1``) and tests a key
file is made under ``CENTRAL_DIR`` on first use.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

NONCE_BYTES = 12
HEADER = struct.Struct(">I")
# Plain extracts are decrypted for the check and the load into a temporary file that exists only
# while it is open (memory up to this size, then an unlinked file in the temporary directory).
SPOOL_MAX_MEMORY = 64 * 1024 * 1024


class VaultError(RuntimeError):
    """The encrypted file is missing, truncated or was not made with this key."""


def _dev_key_file() -> Path:
    return Path(settings.CENTRAL_DIR) / "upload.key"


def key() -> bytes:
    text = settings.CENTRAL_UPLOAD_KEY
    if not text:
        if not (settings.DEBUG or settings.TESTING):
            raise ImproperlyConfigured(
                "CENTRAL_UPLOAD_KEY is not set: with DEBUG=0 set CENTRAL_UPLOAD_KEY (or "
                "CENTRAL_UPLOAD_KEY_FILE) to 32 random bytes, base64 (e.g. `openssl rand -base64 32`)."
            )
        path = _dev_key_file()
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(base64.b64encode(AESGCM.generate_key(bit_length=256)).decode())
        text = path.read_text().strip()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImproperlyConfigured("CENTRAL_UPLOAD_KEY must be base64") from exc
    if len(raw) != 32:
        raise ImproperlyConfigured("CENTRAL_UPLOAD_KEY must decode to 32 bytes (AES-256)")
    return raw


def path_for(token: object) -> Path:
    return Path(settings.CENTRAL_DIR) / "uploads" / f"{token}.enc"


def _aad(token: object, index: int) -> bytes:
    return f"{token}:{index}".encode()


def append(token: object, index: int, data: bytes, *, stored_bytes: int) -> int:
    """Encrypt chunk ``index`` and write it after the first ``stored_bytes`` bytes of the file
    (a record written by a request that then failed is overwritten). Returns the new length."""
    path = path_for(token)
    path.parent.mkdir(parents=True, exist_ok=True)
    nonce = os.urandom(NONCE_BYTES)
    sealed = nonce + AESGCM(key()).encrypt(nonce, data, _aad(token, index))
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+b") as handle:
        handle.truncate(stored_bytes)
        handle.seek(stored_bytes)
        handle.write(HEADER.pack(len(sealed)) + sealed)
        handle.flush()
        os.fsync(handle.fileno())
    return stored_bytes + HEADER.size + len(sealed)


def chunks(token: object, *, stored_bytes: int) -> Iterator[bytes]:
    """The plain chunks, in order, authenticated."""
    path = path_for(token)
    if not path.exists():
        raise VaultError("the uploaded file is no longer on the server")
    aes = AESGCM(key())
    with path.open("rb") as handle:
        index = 0
        while handle.tell() < stored_bytes:
            head = handle.read(HEADER.size)
            if len(head) < HEADER.size:
                raise VaultError("the uploaded file is truncated")
            (length,) = HEADER.unpack(head)
            sealed = handle.read(length)
            if len(sealed) < length:
                raise VaultError("the uploaded file is truncated")
            try:
                yield aes.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _aad(token, index))
            except Exception as exc:  # cryptography's InvalidTag: wrong key or altered file
                raise VaultError("the uploaded file cannot be decrypted with this key") from exc
            index += 1


def open_plain(
    token: object, *, stored_bytes: int, heartbeat: Callable[[], None] | None = None
) -> IO[bytes]:
    """The whole plain file, decrypted into a temporary file gone when closed (``heartbeat()`` is
    called after each chunk)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_MEMORY)  # noqa: SIM115
    for chunk in chunks(token, stored_bytes=stored_bytes):
        spool.write(chunk)
        if heartbeat:
            heartbeat()
    spool.seek(0)
    return spool


def delete(token: object) -> bool:
    path = path_for(token)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed
