"""How a secret handed out once is stored: its SHA-256 (hex), never the secret itself.

One definition for every such secret: personal API tokens, invitation tokens, node tokens; TOTP
recovery codes (short, typed by people) get a per-code salt under HMAC-SHA256.
"""

from __future__ import annotations

import hashlib
import hmac


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def normalise_recovery_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def recovery_code_digest(salt: str, code: str) -> str:
    return hmac.new(bytes.fromhex(salt), code.encode(), hashlib.sha256).hexdigest()
