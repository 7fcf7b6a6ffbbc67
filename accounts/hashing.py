"""How a secret handed out once is stored: its SHA-256 (hex), never the secret itself.

One definition for every such secret: personal API tokens, invitation tokens, node tokens.
"""

from __future__ import annotations

import hashlib


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()
