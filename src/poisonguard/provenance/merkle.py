"""Merkle tree hashes, inclusion proofs and consistency proofs of RFC 6962 / RFC 9162.

Leaves are hashed as ``SHA-256(0x00 || data)`` and inner nodes as
``SHA-256(0x01 || left || right)``; the root of the empty tree is ``SHA-256(b"")``. Functions
that take ``leaves`` take the *leaf hashes* (32-byte ``bytes`` each, as made by
:func:`leaf_hash`), in order. Indices are 0-based, sizes count leaves.

Examples
--------
>>> leaves = [leaf_hash(bytes([i])) for i in range(5)]
>>> top = root(leaves)
>>> verify_inclusion(leaves[3], 3, 5, inclusion_proof(leaves, 3), top)
True
>>> verify_consistency(2, 5, root(leaves[:2]), top, consistency_proof(leaves, 2))
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from poisonguard.errors import InputError

__all__ = ["EMPTY_ROOT", "Frontier", "consistency_proof", "inclusion_proof", "leaf_hash",
           "node_hash", "root", "verify_consistency", "verify_inclusion"]

EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one leaf."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an inner node."""
    return _sha256(b"\x01" + left + right).digest()


def root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash (MTH) of a list of leaf hashes.

    Computed level by level: adjacent nodes are paired and an odd last node moves up unchanged.
    This is RFC 6962's split at the largest power of two ``k < n``: the first ``k`` nodes pair
    among themselves at every level until they are one node, the rest start at an even index
    so they pair as they would on their own, and being no more than ``k`` they are down to one
    node (moved up unchanged if need be) by the time the left side is.
    """
    level = list(leaves)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        odd = level[-1] if len(level) % 2 else None
        level = [_sha256(b"\x01" + level[i] + level[i + 1]).digest()
                 for i in range(0, len(level) - 1, 2)]
        if odd is not None:
            level.append(odd)
    return level[0]


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` (RFC 9162 §2.1.3.1 PATH), nearest sibling first."""
    n = len(leaves)
    if not 0 <= index < n:
        raise InputError(f"leaf index {index} out of range for a tree of {n} leaves")
    path: list[bytes] = []
    lo, hi = 0, n  # the subtree D[lo:hi] that holds the leaf
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            path.append(root(leaves[lo + k:hi]))
            hi = lo + k
        else:
            path.append(root(leaves[lo:lo + k]))
            lo += k
    return path[::-1]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes],
                     root_hash: bytes) -> bool:
    """True when ``proof`` shows ``leaf`` at ``index`` in the tree of ``size`` leaves with
    root ``root_hash`` (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size or any(len(p) != 32 for p in proof):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root_hash


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """The proof that the first ``old_size`` leaves are a prefix of ``leaves`` (RFC 9162
    §2.1.4.1 PROOF); empty when ``old_size`` is 0 or ``len(leaves)``."""
    n = len(leaves)
    if not 0 <= old_size <= n:
        raise InputError(f"old size {old_size} out of range for a tree of {n} leaves")
    if old_size in (0, n):
        return []
    proof: list[bytes] = []
    m, lo, hi, whole = old_size, 0, n, True  # SUBPROOF(m, D[lo:hi], whole)
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append(root(leaves[lo + k:hi]))
            hi = lo + k
        else:
            proof.append(root(leaves[lo:lo + k]))
            m, lo, whole = m - k, lo + k, False
    if not whole:
        proof.append(root(leaves[lo:hi]))
    return proof[::-1]


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """True when ``proof`` shows the tree of ``old_size`` leaves with root ``old_root`` is a
    prefix of the tree of ``new_size`` leaves with root ``new_root`` (RFC 9162 §2.1.4.2).

    The trivial cases take an empty proof: ``old_size == new_size`` (the roots must be equal)
    and ``old_size == 0`` (``old_root`` must be the empty root).
    """
    if not 0 <= old_size <= new_size or any(len(p) != 32 for p in proof):
        return False
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old tree is a node of the new one
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == new_root and sn == 0


@dataclass(frozen=True)
class Frontier:
    """The roots of the perfect subtrees of an append-only tree (a binary counter), largest
    first: enough to append a leaf and compute the root in O(log size).

    Examples
    --------
    >>> f = Frontier()
    >>> for i in range(5):
    ...     f = f.append(leaf_hash(bytes([i])))
    >>> f.size, len(f.nodes), f.root() == root([leaf_hash(bytes([i])) for i in range(5)])
    (5, 2, True)
    >>> Frontier.from_bytes(f.to_bytes()) == f
    True
    """

    size: int = 0
    nodes: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.size < 0 or len(self.nodes) != self.size.bit_count():
            raise InputError(f"a frontier of size {self.size} holds {self.size.bit_count()} "
                             f"nodes (got {len(self.nodes)})")
        if any(len(node) != 32 for node in self.nodes):
            raise InputError("frontier nodes must be 32-byte hashes")

    def append(self, leaf: bytes) -> Frontier:
        """The frontier with one more leaf hash."""
        if len(leaf) != 32:
            raise InputError(f"a leaf hash is 32 bytes (got {len(leaf)})")
        nodes, h, s = list(self.nodes), leaf, self.size
        while s & 1:  # carry: merge equal-sized subtrees
            h, s = node_hash(nodes.pop(), h), s >> 1
        nodes.append(h)
        return Frontier(self.size + 1, tuple(nodes))

    def root(self) -> bytes:
        """The Merkle tree hash of all leaves appended so far."""
        if not self.nodes:
            return EMPTY_ROOT
        r = self.nodes[-1]
        for node in reversed(self.nodes[:-1]):
            r = node_hash(node, r)
        return r

    def to_bytes(self) -> bytes:
        """The size as 8 bytes big-endian, then the nodes, largest subtree first."""
        return self.size.to_bytes(8, "big") + b"".join(self.nodes)

    @classmethod
    def from_bytes(cls, data: bytes) -> Frontier:
        """The frontier written by :meth:`to_bytes`."""
        if len(data) < 8 or (len(data) - 8) % 32:
            raise InputError(f"not a serialised frontier ({len(data)} bytes)")
        body = data[8:]
        return cls(int.from_bytes(data[:8], "big"),
                   tuple(body[i:i + 32] for i in range(0, len(body), 32)))
