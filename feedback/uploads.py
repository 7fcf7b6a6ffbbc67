"""Attachment checks: size, type by magic bytes (never by the declared type) and a clean name."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.utils.text import get_valid_filename

MAX_ATTACHMENTS_PER_ITEM = 10

# content type → (extension, human name)
ALLOWED = {
    "image/png": (".png", "PNG"),
    "image/jpeg": (".jpg", "JPEG"),
    "image/gif": (".gif", "GIF"),
    "image/webp": (".webp", "WebP"),
    "application/pdf": (".pdf", "PDF"),
    "text/plain": (".txt", "plain text"),
}
EXTENSIONS = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".pdf": "application/pdf",
    ".txt": "text/plain",
    ".log": "text/plain",
}


def max_bytes() -> int:
    return int(
        getattr(settings, "FEEDBACK_ATTACHMENT_MAX_BYTES", None)
        or min(settings.UPLOAD_MAX_BYTES, 5 * 1024 * 1024)
    )


def sniff(head: bytes) -> str | None:
    """The content type the first bytes prove, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def _is_plain_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    # Refuse markup that a browser might render if the file were ever served inline.
    lowered = text[:1024].lstrip().lower()
    return not lowered.startswith(("<!doctype", "<html", "<svg", "<?xml", "<script"))


def clean_name(name: str, content_type: str) -> str:
    """A display name safe in headers and on disk: no path, no control characters, right suffix."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name
    base = unicodedata.normalize("NFKC", base)
    base = "".join(ch for ch in base if ch.isprintable())
    stem = PurePosixPath(base).stem if PurePosixPath(base).suffix else base
    try:
        stem = get_valid_filename(stem)
    except SuspiciousFileOperation:  # "" or ".." after cleaning
        stem = ""
    stem = stem.strip("._-")[:80] or "attachment"
    suffix = PurePosixPath(base).suffix.lower()
    if EXTENSIONS.get(suffix) != content_type:
        suffix = ALLOWED[content_type][0]
    return f"{stem}{suffix}"


@dataclass(frozen=True)
class CheckedUpload:
    data: bytes
    name: str
    content_type: str
    size: int
    sha256: str


def check_upload(upload) -> CheckedUpload:
    """Read and check an uploaded file; raises ValidationError({"file": [...]})."""
    limit = max_bytes()
    size = getattr(upload, "size", None)
    if size is not None and size > limit:
        raise ValidationError({"file": [f"The file is larger than {limit // 1024} KiB."]})
    upload.seek(0)
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise ValidationError({"file": [f"The file is larger than {limit // 1024} KiB."]})
    if not data:
        raise ValidationError({"file": ["The file is empty."]})
    content_type = sniff(data[:16])
    if content_type is None and _is_plain_text(data):
        content_type = "text/plain"
    if content_type is None:
        allowed = ", ".join(name for _, name in ALLOWED.values())
        raise ValidationError({"file": [f"Only these file types are accepted: {allowed}."]})
    return CheckedUpload(
        data=data,
        name=clean_name(getattr(upload, "name", ""), content_type),
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
