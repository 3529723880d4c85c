"""Merkle hashing and proofs: the RFC 6962 definition, its reference vectors, and proofs that
verify when honest and fail on every change."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poisonguard.errors import InputError
from poisonguard.provenance import merkle
from poisonguard.provenance.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# The reference tree of the Certificate Transparency test suites (RFC 6962): leaf data, and the
# root of the first n leaves for n = 1..8.
DATA = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
        "606162636465666768696a6b6c6d6e6f"]
ROOTS = ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
         "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
         "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
         "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
         "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
         "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
         "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
         "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]
REF = [leaf_hash(bytes.fromhex(d)) for d in DATA]
LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(80)]


def mth(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, written as the definition reads (recursive split at the largest
    power of two smaller than n)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while 2 * k < n:
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def flipped(proof: list[bytes], at: int, byte: int) -> list[bytes]:
    bad = bytearray(proof[at])
    bad[byte % 32] ^= 0x01
    return [*proof[:at], bytes(bad), *proof[at + 1:]]


def test_hashes_are_domain_separated() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    assert EMPTY_ROOT == root([]) == hashlib.sha256(b"").digest()
    assert merkle.__all__ == sorted(merkle.__all__)


def test_reference_vectors() -> None:
    for n in range(1, 9):
        assert root(REF[:n]).hex() == ROOTS[n - 1]
    assert [p.hex() for p in inclusion_proof(REF, 5)] == [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]
    assert [p.hex() for p in consistency_proof(REF, 6)] == [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]
    assert [p.hex() for p in consistency_proof(REF[:5], 2)] == [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]


def test_level_by_level_root_is_the_rfc_definition() -> None:
    for n in range(71):
        assert root(LEAVES[:n]) == mth(LEAVES[:n]), n


def test_frontier_root_after_every_append() -> None:
    f = Frontier()
    assert f.root() == EMPTY_ROOT
    for n, leaf in enumerate(LEAVES, start=1):
        f = f.append(leaf)
        assert f.size == n and len(f.nodes) == n.bit_count()
        assert f.root() == root(LEAVES[:n])
        assert Frontier.from_bytes(f.to_bytes()) == f


def test_frontier_rejects_malformed() -> None:
    with pytest.raises(InputError, match="frontier of size 3 holds 2 nodes"):
        Frontier(3, (LEAVES[0],))
    with pytest.raises(InputError, match="not a serialised frontier"):
        Frontier.from_bytes(b"\x00" * 9)
    with pytest.raises(InputError, match="32 bytes"):
        Frontier().append(b"short")


def test_inclusion_proofs_brute_force() -> None:
    roots = [root(LEAVES[:n]) for n in range(len(LEAVES) + 1)]
    for n in range(1, 41):
        for i in range(n):
            proof = inclusion_proof(LEAVES[:n], i)
            assert verify_inclusion(LEAVES[i], i, n, proof, roots[n])
            for at in range(len(proof)):
                assert not verify_inclusion(LEAVES[i], i, n, flipped(proof, at, i + at), roots[n])
            assert not verify_inclusion(LEAVES[i], i, n, [*proof, LEAVES[0]], roots[n])
            if proof:
                assert not verify_inclusion(LEAVES[i], i, n, proof[:-1], roots[n])
            assert not verify_inclusion(LEAVES[i], i, n, proof, flipped([roots[n]], 0, i)[0])
            assert not verify_inclusion(LEAVES[n], i, n, proof, roots[n])  # another leaf
            for j in range(n):
                if j != i:
                    assert not verify_inclusion(LEAVES[i], j, n, proof, roots[n])
            # Another size: against that tree's own root the proof fails unless it is also the
            # honest proof there (the signed checkpoint binds size and root together).
            for m in range(i + 1, 48):
                if m != n and verify_inclusion(LEAVES[i], i, m, proof, roots[m]):
                    assert inclusion_proof(LEAVES[:m], i) == proof
            assert not verify_inclusion(LEAVES[i], i, i, proof, roots[n])


def test_consistency_proofs_brute_force() -> None:
    roots = [root(LEAVES[:n]) for n in range(len(LEAVES) + 1)]
    for n in range(1, 41):
        for m in range(n + 1):
            proof = consistency_proof(LEAVES[:n], m)
            assert verify_consistency(m, n, roots[m], roots[n], proof)
            for at in range(len(proof)):
                assert not verify_consistency(m, n, roots[m], roots[n], flipped(proof, at, m + at))
            if proof:
                assert not verify_consistency(m, n, roots[m], roots[n], proof[:-1])
            assert not verify_consistency(m, n, roots[m], roots[n], [*proof, LEAVES[0]])
            bad_old, bad_new = flipped([roots[m]], 0, n)[0], flipped([roots[n]], 0, m)[0]
            assert not verify_consistency(m, n, bad_old, roots[n], proof)
            if m:  # the empty tree is a prefix of every tree, whatever its root
                assert not verify_consistency(m, n, roots[m], bad_new, proof)
            assert not verify_consistency(n + 1, n, roots[m], roots[n], proof)
            for m2 in range(48):
                for n2 in range(m2, 48):
                    if (m2, n2) != (m, n) and verify_consistency(m2, n2, roots[m2], roots[n2], proof):
                        assert consistency_proof(LEAVES[:n2], m2) == proof


def test_bad_arguments_name_the_value() -> None:
    with pytest.raises(InputError, match="leaf index 5 out of range for a tree of 5 leaves"):
        inclusion_proof(LEAVES[:5], 5)
    with pytest.raises(InputError, match="old size 6 out of range for a tree of 5 leaves"):
        consistency_proof(LEAVES[:5], 6)
    assert not verify_inclusion(LEAVES[0], -1, 5, [], root(LEAVES[:5]))
    assert not verify_consistency(-1, 5, EMPTY_ROOT, root(LEAVES[:5]), [])
    assert not verify_consistency(0, 5, LEAVES[0], root(LEAVES[:5]), [])


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=70), st.data())
def test_random_trees(data: list[bytes], draw: st.DataObject) -> None:
    leaves = [leaf_hash(d) for d in data]
    n = len(leaves)
    top = root(leaves)
    assert top == mth(leaves)
    i = draw.draw(st.integers(0, n - 1), label="index")
    assert verify_inclusion(leaves[i], i, n, inclusion_proof(leaves, i), top)
    m = draw.draw(st.integers(0, n), label="old size")
    assert verify_consistency(m, n, root(leaves[:m]), top, consistency_proof(leaves, m))
    f = Frontier()
    for leaf in leaves:
        f = f.append(leaf)
    assert f.root() == top
