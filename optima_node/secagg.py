"""Secure aggregation: pairwise-masked summation of integer vectors (Bonawitz et al. 2017).

Without the dropout-recovery shares: a node lost after the key exchange makes the round restart
without it (the portal's business, see docs/federation.md). Per round, every participating node

1. makes a fresh X25519 key pair and posts an *announcement* (its public key, the analysis, round
   and vector length), signed with its long-term Ed25519 identity, so the portal cannot substitute
   a key of its own;
2. receives the other nodes' announcements, verifies each against the identity the site pinned,
   and derives one seed per pair: HKDF-SHA256 over the X25519 shared secret, with the analysis,
   the round and both node ids bound into ``info``;
3. expands each seed with ChaCha20 into 8 bytes per element (a little-endian uint64), and adds the
   stream of every pair in which it has the smaller node id, subtracts the others, modulo 2**64
   (numpy's uint64 arithmetic, which wraps modulo 2**64 by definition, over the keystream itself).

Summed over all participants the streams cancel and the portal learns the sum only. One masked
vector alone is uniform on [0, 2**64)^n for anyone who lacks one of its pair seeds.

Only primitives of the ``cryptography`` library are used; beyond them and the standard library
this module imports only numpy (for the wrapping vector sums), so it can be audited on its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MODULUS = 2**64
PROTOCOL = "optima-secagg-v1"
# A value a node may contribute: non-negative and small enough that the sum of any realistic
# number of nodes stays below 2**63, where the signed reading of the sum begins.
MAX_VALUE = 2**56
MIN_PARTICIPANTS = 3
ANNOUNCEMENT_FIELDS = ("node_id", "analysis_id", "round_id", "vector_length", "public_key")
# Each pair seed keys ChaCha20 for exactly one stream, so a fixed nonce is never reused with a key.
_NONCE = bytes(16)


class SecAggError(Exception):
    """The protocol cannot go on safely; ``reason`` says why (short, no secrets, no data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- long-term identity -----------------------------------------------------------------------


def load_or_create_identity(path: Path) -> Ed25519PrivateKey:
    """The node's long-term signing key: read from ``path`` (PEM, PKCS#8, unencrypted), or made
    and written there with mode 0600 on first start. A file readable by group or others is
    refused, as ssh refuses such a private key."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: read theirs below
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
            return key
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise SecAggError(f"identity key file {path} is readable by others; chmod 600 it")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise SecAggError(f"identity key file {path} is not an unencrypted PEM key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SecAggError(f"identity key file {path} does not hold an Ed25519 key")
    return key


def public_identity(identity: Ed25519PrivateKey) -> str:
    """The identity's public key, raw 32 bytes in standard base64 (what the site pins)."""
    raw = identity.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(raw).decode("ascii")


def fingerprint(public_b64: str) -> str:
    """Short hex SHA-256 of the raw public key, grouped for reading aloud (display only: pin and
    compare the full key)."""
    digest = hashlib.sha256(_b64(public_b64, "identity", 32)).hexdigest()[:20]
    return ":".join(digest[i : i + 4] for i in range(0, 20, 4))


# --- one round --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundKey:
    """A node's key for one aggregation round: never reuse it for another round."""

    private: X25519PrivateKey
    announcement: dict[str, Any]

    def __repr__(self) -> str:  # the private key must never end up in a log line
        return f"RoundKey(announcement={self.announcement!r})"


def new_round_key(
    identity: Ed25519PrivateKey,
    *,
    analysis_id: int,
    round_id: str,
    node_id: int,
    vector_length: int,
) -> RoundKey:
    """A fresh X25519 key pair and its signed announcement for (analysis, round).

    ``announcement`` = {"node_id", "analysis_id", "round_id", "vector_length", "public_key" (base64
    raw X25519), "signature" (base64 Ed25519 over :func:`signed_bytes` of the other fields)}.
    """
    _check_int(node_id, "node_id")
    _check_int(analysis_id, "analysis_id")
    _check_int(vector_length, "vector_length", minimum=0)
    if not isinstance(round_id, str) or not round_id:
        raise SecAggError("round_id must be a non-empty string")
    private = X25519PrivateKey.generate()
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    fields = {
        "node_id": node_id,
        "analysis_id": analysis_id,
        "round_id": round_id,
        "vector_length": vector_length,
        "public_key": base64.b64encode(public).decode("ascii"),
    }
    signature = identity.sign(signed_bytes(fields))
    announcement = {**fields, "signature": base64.b64encode(signature).decode("ascii")}
    return RoundKey(private=private, announcement=announcement)


def signed_bytes(announcement: Mapping[str, Any]) -> bytes:
    """The canonical byte string a node signs: the protocol name, then the announcement's fields
    (without the signature) as JSON with sorted keys and no whitespace."""
    fields = {name: announcement[name] for name in ANNOUNCEMENT_FIELDS}
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return f"{PROTOCOL}/announcement\n{body}".encode("ascii")


def verify_announcement(announcement: dict, identity_public_b64: str) -> None:
    """Check an announcement's shape and its signature by the node identity ``identity_public_b64``
    (the key the site pinned for that node). Raises :class:`SecAggError`."""
    if not isinstance(announcement, Mapping):
        raise SecAggError("announcement is not an object")
    if set(announcement) != {*ANNOUNCEMENT_FIELDS, "signature"}:
        raise SecAggError("announcement fields are not the protocol's")
    _check_int(announcement["node_id"], "node_id")
    _check_int(announcement["analysis_id"], "analysis_id")
    _check_int(announcement["vector_length"], "vector_length", minimum=0)
    if not isinstance(announcement["round_id"], str) or not announcement["round_id"]:
        raise SecAggError("round_id must be a non-empty string")
    _b64(announcement["public_key"], "public_key", 32)
    signature = _b64(announcement["signature"], "signature", 64)
    identity = Ed25519PublicKey.from_public_bytes(_b64(identity_public_b64, "identity", 32))
    try:
        identity.verify(signature, signed_bytes(announcement))
    except InvalidSignature as exc:
        node = announcement["node_id"]
        raise SecAggError(f"announcement of node {node} is not signed by its identity") from exc


def mask(
    values: Sequence[int],
    *,
    key: RoundKey,
    peers: Sequence[dict],
    identities: Mapping[int, str],
    analysis_id: int,
    round_id: str,
) -> np.ndarray:
    """Mask this node's ``values`` for the round ``key`` was made for.

    ``peers`` are the announcements the portal relayed; this node's own may be among them or not
    (either is accepted; if present it must equal ``key.announcement`` exactly, otherwise the
    portal relayed a key that is not ours and the round is refused). ``identities`` maps every
    peer's node id to its pinned Ed25519 identity (base64). Every peer announcement must verify,
    name this analysis, round and vector length, and come from a distinct node; with fewer than
    three participants in all (this node included) nothing is masked: with two, each would learn
    the other's vector by subtraction. Raises :class:`SecAggError`; returns the masked vector as
    a numpy uint64 array (elements in [0, 2**64)).
    """
    own = key.announcement
    node_id = own["node_id"]
    if own["analysis_id"] != analysis_id or own["round_id"] != round_id:
        raise SecAggError("the round key was made for another analysis or round")
    length = own["vector_length"]
    if len(values) != length:
        raise SecAggError(f"vector has {len(values)} elements, the round announced {length}")
    encoded = _encoded(values)

    others: dict[int, bytes] = {}
    for peer in peers:
        if not isinstance(peer, Mapping) or "node_id" not in peer:
            raise SecAggError("announcement is not an object with a node_id")
        peer_id = peer["node_id"]
        if peer_id == node_id and not isinstance(peer_id, bool):
            if dict(peer) != own:
                raise SecAggError("the relayed announcement for this node is not its own")
            continue
        identity = _identity_for(identities, peer_id)
        verify_announcement(dict(peer), identity)
        if peer["analysis_id"] != analysis_id or peer["round_id"] != round_id:
            raise SecAggError(f"announcement of node {peer_id} is for another analysis or round")
        if peer["vector_length"] != length:
            raise SecAggError(f"announcement of node {peer_id} announces another vector length")
        if peer_id in others:
            raise SecAggError(f"node {peer_id} announced twice")
        others[peer_id] = base64.b64decode(peer["public_key"])
    if len(others) + 1 < MIN_PARTICIPANTS:
        raise SecAggError(
            f"secure aggregation needs at least {MIN_PARTICIPANTS} nodes, "
            f"the round has {len(others) + 1}"
        )

    # uint64 arithmetic wraps: every addition and subtraction is modulo 2**64.
    result = encoded.copy()
    for peer_id, public in sorted(others.items()):
        stream = _pair_stream(key.private, public, analysis_id, round_id, node_id, peer_id, length)
        if node_id < peer_id:
            result += stream
        else:
            result -= stream
    return result


def unmask_sum(masked: Iterable[Sequence[int]]) -> list[int]:
    """Sum the masked vectors of every participant of one round, modulo 2**64, and read the sum
    as signed. A negative element means the masks did not cancel (a vector missing, from another
    round, or altered): :class:`SecAggError`, as are differing lengths and elements out of range.
    """
    vectors = [_masked_array(v) for v in masked]
    if not vectors:
        raise SecAggError("no masked vectors to sum")
    length = len(vectors[0])
    if any(len(v) != length for v in vectors):
        raise SecAggError("masked vectors differ in length")
    total = np.zeros(length, dtype=np.uint64)
    for vector in vectors:
        total += vector  # wraps modulo 2**64
    signed = total.view(np.int64)
    if (signed < 0).any():
        raise SecAggError("the masks did not cancel: a vector is missing or from another round")
    return signed.tolist()


def _masked_array(vector: Sequence[int] | np.ndarray) -> np.ndarray:
    """A masked vector as uint64: an array of that dtype as it is, a sequence element-checked."""
    if isinstance(vector, np.ndarray) and vector.dtype == np.uint64 and vector.ndim == 1:
        return vector
    elements = list(vector)
    # type() rather than isinstance(): bool is an int subclass, and True must not pass as 1.
    if not set(map(type, elements)) <= {int}:
        raise SecAggError("a masked element is not an integer")
    try:
        return np.array(elements, dtype=np.uint64)
    except OverflowError as exc:
        raise SecAggError("a masked element is outside [0, 2**64)") from exc


# --- internals --------------------------------------------------------------------------------


def pair_info(analysis_id: int, round_id: str, node_a: int, node_b: int) -> bytes:
    """HKDF ``info`` for a pair: the protocol, analysis, round and both node ids, sorted."""
    low, high = sorted((node_a, node_b))
    body = json.dumps(
        {"analysis_id": analysis_id, "round_id": round_id, "nodes": [low, high]},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return f"{PROTOCOL}/pair-mask\n{body}".encode("ascii")


def _pair_stream(
    private: X25519PrivateKey,
    peer_public: bytes,
    analysis_id: int,
    round_id: str,
    node_id: int,
    peer_id: int,
    length: int,
) -> np.ndarray:
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError as exc:  # a low-order point gives an all-zero secret: refused
        raise SecAggError(f"the public key of node {peer_id} is not usable") from exc
    seed = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=pair_info(analysis_id, round_id, node_id, peer_id),
    ).derive(shared)
    encryptor = Cipher(algorithms.ChaCha20(seed, _NONCE), mode=None).encryptor()
    keystream = encryptor.update(bytes(8 * length))
    return np.frombuffer(keystream, dtype="<u8").astype(np.uint64, copy=False)


def _encoded(values: Sequence[int] | np.ndarray) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu" and values.ndim == 1:
        array = values.astype(np.int64)  # an unsigned value >= 2**63 turns negative: refused
    else:
        encoded = list(values)
        # type() rather than isinstance(): bool is an int subclass, and True must not pass as 1.
        if not set(map(type, encoded)) <= {int}:
            raise SecAggError("only integers can be aggregated")
        try:
            array = np.array(encoded, dtype=np.int64)
        except OverflowError as exc:
            raise SecAggError("a value to aggregate is negative or too large") from exc
    if array.size and not (array.min() >= 0 and array.max() < MAX_VALUE):
        raise SecAggError("a value to aggregate is negative or too large")
    return array.astype(np.uint64)


def _identity_for(identities: Mapping[Any, str], node_id: Any) -> str:
    _check_int(node_id, "node_id")
    identity = identities.get(node_id, identities.get(str(node_id)))
    if not identity:
        raise SecAggError(f"no pinned identity for node {node_id}")
    return identity


def _check_int(value: Any, name: str, *, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SecAggError(f"{name} must be an integer >= {minimum}")


def _b64(text: Any, name: str, size: int) -> bytes:
    if not isinstance(text, str):
        raise SecAggError(f"{name} is not base64 text")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise SecAggError(f"{name} is not base64 text") from exc
    if len(raw) != size:
        raise SecAggError(f"{name} is not {size} bytes")
    return raw
