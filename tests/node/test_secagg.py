"""Secure aggregation's protocol core: masks cancel in the sum, one masked vector looks uniform,
and every way the portal (or a stale round) could bend a round is refused."""

from __future__ import annotations

import base64
import os
import stat

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from optima_node import secagg
from optima_node.secagg import MODULUS, SecAggError

ANALYSIS, ROUND = 41, "41-1"


class Round:
    """One aggregation round among honest nodes: identities, round keys, the relayed set."""

    def __init__(self, node_ids, length, *, analysis_id=ANALYSIS, round_id=ROUND, identities=None):
        self.identity = identities or {i: Ed25519PrivateKey.generate() for i in node_ids}
        self.pinned = {i: secagg.public_identity(self.identity[i]) for i in node_ids}
        self.keys = {
            i: secagg.new_round_key(
                self.identity[i],
                analysis_id=analysis_id,
                round_id=round_id,
                node_id=i,
                vector_length=length,
            )
            for i in node_ids
        }
        self.analysis_id, self.round_id = analysis_id, round_id
        self.relayed = [k.announcement for k in self.keys.values()]

    def mask(self, node_id, values, peers=None, **overrides):
        kwargs = {
            "key": self.keys[node_id],
            "peers": self.relayed if peers is None else peers,
            "identities": self.pinned,
            "analysis_id": self.analysis_id,
            "round_id": self.round_id,
            **overrides,
        }
        return secagg.mask(values, **kwargs)


# --- correctness ------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    node_ids=st.sets(st.integers(1, 2**31), min_size=3, max_size=6),
    length=st.integers(1, 40),
)
def test_it_unmasks_exactly_the_plain_sum(data, node_ids, length):
    tables = {
        i: data.draw(st.lists(st.integers(0, 10**9), min_size=length, max_size=length))
        for i in node_ids
    }
    rnd = Round(sorted(node_ids), length)
    masked = [rnd.mask(i, tables[i]) for i in node_ids]
    plain = [sum(column) for column in zip(*tables.values(), strict=True)]
    assert secagg.unmask_sum(masked) == plain
    # Each node may or may not find its own announcement in the relayed set.
    some = min(node_ids)
    without_own = [a for a in rnd.relayed if a["node_id"] != some]
    assert (
        secagg.unmask_sum(
            [rnd.mask(some, tables[some], peers=without_own)]
            + [m for i, m in zip(node_ids, masked, strict=True) if i != some]
        )
        == plain
    )


# --- one masked vector is uniform -------------------------------------------------------------


def uniformity_p_values(samples: np.ndarray) -> dict[str, float]:
    """Chi-square of the top and bottom byte over 256 bins, and KS of x / 2**64 vs U(0, 1)."""
    values = [int(v) for v in samples]
    top = np.bincount([v >> 56 for v in values], minlength=256)
    bottom = np.bincount([v & 0xFF for v in values], minlength=256)
    unit = np.asarray([v / MODULUS for v in values])
    return {
        "top_byte": float(sps.chisquare(top).pvalue),
        "bottom_byte": float(sps.chisquare(bottom).pvalue),
        "ks": float(sps.kstest(unit, "uniform").pvalue),
    }


def test_one_masked_vector_is_indistinguishable_from_uniform():
    # A small, very non-uniform table; every draw a fresh round (fresh keys) of three nodes. The
    # middle node's vector is both added to and subtracted from, the other two only one of them.
    table = [0, 1, 3, 250]
    draws = {1: [], 2: [], 3: []}
    identities = {i: Ed25519PrivateKey.generate() for i in draws}
    for _ in range(2000):
        rnd = Round(list(draws), len(table), identities=identities)
        for i in draws:
            draws[i].extend(rnd.mask(i, table))
    # Nine tests in all: Bonferroni keeps the family-wise false-alarm rate at 1e-3.
    for i, samples in draws.items():
        p = uniformity_p_values(np.asarray(samples, dtype=object))
        assert min(p.values()) > 1e-3 / 9, (i, p)


def test_the_uniformity_check_would_notice_a_weak_mask():
    # The same statistics on masks of 56 bits (top byte constant) or on the plain table fail,
    # so the test above has power.
    rng = np.random.default_rng(7)
    table = np.tile([0, 1, 3, 250], 2000)
    weak = [
        (int(v) + int(m)) % MODULUS
        for v, m in zip(table, rng.integers(0, 2**56, len(table)), strict=True)
    ]
    assert uniformity_p_values(np.asarray(weak, dtype=object))["top_byte"] < 1e-10
    assert max(uniformity_p_values(table.astype(object)).values()) < 1e-10


# --- refusals ---------------------------------------------------------------------------------


def test_fewer_than_three_nodes_are_refused():
    rnd = Round([1, 2], 3)
    with pytest.raises(SecAggError, match="at least 3"):
        rnd.mask(1, [1, 2, 3])


def test_a_tampered_signature_is_refused():
    rnd = Round([1, 2, 3], 3)
    forged = dict(rnd.relayed[1])
    raw = bytearray(base64.b64decode(forged["signature"]))
    raw[0] ^= 1
    forged["signature"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(SecAggError, match="not signed"):
        rnd.mask(1, [1, 2, 3], peers=[rnd.relayed[0], forged, rnd.relayed[2]])


def test_an_announcement_of_another_round_is_refused():
    rnd = Round([1, 2, 3], 3)
    stale = Round([1, 2, 3], 3, round_id="41-0", identities=rnd.identity)
    # Properly signed by node 3, but for the earlier round: a replay.
    with pytest.raises(SecAggError, match="another analysis or round"):
        rnd.mask(1, [1, 2, 3], peers=[rnd.relayed[0], rnd.relayed[1], stale.relayed[2]])
    other = Round([1, 2, 3], 3, analysis_id=42, identities=rnd.identity)
    with pytest.raises(SecAggError, match="another analysis or round"):
        rnd.mask(1, [1, 2, 3], peers=[rnd.relayed[0], rnd.relayed[1], other.relayed[2]])


def test_a_round_key_is_refused_for_another_round():
    rnd = Round([1, 2, 3], 3)
    with pytest.raises(SecAggError, match="another analysis or round"):
        rnd.mask(1, [1, 2, 3], round_id="41-2")


def test_a_duplicate_node_id_is_refused():
    rnd = Round([1, 2, 3], 3)
    again = secagg.new_round_key(
        rnd.identity[2], analysis_id=ANALYSIS, round_id=ROUND, node_id=2, vector_length=3
    )
    # Node 2 appears twice (two valid keys): with only nodes 1 and 2 this would be a 2-party sum.
    with pytest.raises(SecAggError, match="twice"):
        rnd.mask(1, [1, 2, 3], peers=[*rnd.relayed[:2], again.announcement])


def test_length_mismatches_are_refused():
    rnd = Round([1, 2, 3], 3)
    with pytest.raises(SecAggError, match="elements"):
        rnd.mask(1, [1, 2])
    longer = Round([1, 2, 3], 4, identities=rnd.identity)
    with pytest.raises(SecAggError, match="vector length"):
        rnd.mask(1, [1, 2, 3], peers=[rnd.relayed[0], rnd.relayed[1], longer.relayed[2]])
    with pytest.raises(SecAggError, match="differ in length"):
        secagg.unmask_sum([[1, 2, 3], [1, 2]])


def test_values_outside_the_encodable_range_are_refused():
    rnd = Round([1, 2, 3], 2)
    for bad in ([-1, 0], [2**60, 0], [1.0, 0], [True, 0]):
        with pytest.raises(SecAggError):
            rnd.mask(1, bad)


def test_a_portal_cannot_substitute_its_own_key():
    """The attack: the portal swaps node 3's announced X25519 key for one it holds, so it could
    compute the pair mask of (1, 3) and strip it from node 1's vector. It cannot sign for node 3."""
    rnd = Round([1, 2, 3], 3)
    portal_identity = Ed25519PrivateKey.generate()
    evil = secagg.new_round_key(
        portal_identity, analysis_id=ANALYSIS, round_id=ROUND, node_id=3, vector_length=3
    )
    # 1) its own key, signed with its own identity
    with pytest.raises(SecAggError, match="not signed"):
        rnd.mask(1, [1, 2, 3], peers=[*rnd.relayed[:2], evil.announcement])
    # 2) its own key under node 3's genuine signature
    spliced = {**rnd.relayed[2], "public_key": evil.announcement["public_key"]}
    with pytest.raises(SecAggError, match="not signed"):
        rnd.mask(1, [1, 2, 3], peers=[*rnd.relayed[:2], spliced])
    # 3) a substitute for node 1's own key, relayed back to node 1
    swapped_own = {**rnd.relayed[0], "public_key": evil.announcement["public_key"]}
    with pytest.raises(SecAggError, match="not its own"):
        rnd.mask(1, [1, 2, 3], peers=[swapped_own, *rnd.relayed[1:]])
    # 4) a node the site never pinned
    evil_node = secagg.new_round_key(
        portal_identity, analysis_id=ANALYSIS, round_id=ROUND, node_id=99, vector_length=3
    )
    with pytest.raises(SecAggError, match="no pinned identity"):
        rnd.mask(1, [1, 2, 3], peers=[*rnd.relayed[:2], evil_node.announcement])


def test_a_low_order_public_key_is_refused():
    # Node 3 (or a portal able to sign as it) announcing the identity point would zero the secret.
    rnd = Round([1, 2, 3], 3)
    zero = base64.b64encode(bytes(32)).decode()
    fields = {**rnd.relayed[2], "public_key": zero}
    fields["signature"] = base64.b64encode(
        rnd.identity[3].sign(secagg.signed_bytes(fields))
    ).decode()
    with pytest.raises(SecAggError, match="not usable"):
        rnd.mask(1, [1, 2, 3], peers=[*rnd.relayed[:2], fields])


def test_masked_vectors_of_two_rounds_do_not_cancel():
    values = {1: [5] * 64, 2: [7] * 64, 3: [11] * 64}
    first = Round([1, 2, 3], 64)
    second = Round([1, 2, 3], 64, round_id="41-2", identities=first.identity)
    one = {i: first.mask(i, v) for i, v in values.items()}
    two = {i: second.mask(i, v) for i, v in values.items()}
    assert secagg.unmask_sum(one.values()) == [23] * 64
    with pytest.raises(SecAggError, match="did not cancel"):
        secagg.unmask_sum([one[1], one[2], two[3]])
    # A round restarted without node 3: the two remaining vectors of the old round do not sum.
    with pytest.raises(SecAggError, match="did not cancel"):
        secagg.unmask_sum([one[1], one[2]])


def test_unmask_refuses_elements_out_of_range():
    with pytest.raises(SecAggError):
        secagg.unmask_sum([[MODULUS], [0], [0]])
    with pytest.raises(SecAggError):
        secagg.unmask_sum([])


# --- identity ---------------------------------------------------------------------------------


def test_the_identity_is_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "keys" / "node.pem"
    first = secagg.load_or_create_identity(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = secagg.load_or_create_identity(path)
    assert secagg.public_identity(first) == secagg.public_identity(again)
    fp = secagg.fingerprint(secagg.public_identity(first))
    assert len(fp.replace(":", "")) == 20 and int(fp.replace(":", ""), 16) >= 0


def test_an_identity_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "node.pem"
    secagg.load_or_create_identity(path)
    os.chmod(path, 0o644)
    with pytest.raises(SecAggError, match="readable by others"):
        secagg.load_or_create_identity(path)


def test_the_round_key_does_not_print_its_private_key():
    rnd = Round([1, 2, 3], 1)
    assert "private" not in repr(rnd.keys[1]).lower()
