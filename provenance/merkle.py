"""RFC 9162 (Certificate Transparency v2) Merkle trees: roots, inclusion and consistency proofs.

leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right); a tree of n > 1 leaves splits
at the largest power of two below n, with no padding, so trees of different sizes never collide.
Pure functions; proofs are lists of 32-byte hashes. The proof builders take either the leaves or
a function returning the hash of a range of them (so that :mod:`provenance.tlog` builds the same
proofs from stored tiles).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from provenance.errors import VerificationError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

SubtreeHash = Callable[[int, int], bytes]
"""``subtree(lo, hi)`` returns the hash of the leaves ``lo..hi-1`` of a tree."""


class ProofError(VerificationError):
    """A Merkle proof does not verify, or is malformed."""


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 hash of a leaf holding ``data``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 hash of an inner node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


class TreeBuilder:
    """Computes a root from leaf hashes added in order, in O(log n) memory."""

    __slots__ = ("_stack", "size")

    def __init__(self) -> None:
        # Perfect subtrees as (height, hash), strictly decreasing in height from left to right.
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    def add(self, leaf: bytes) -> None:
        """Append a leaf hash (as returned by :func:`leaf_hash`)."""
        height, digest = 0, leaf
        stack = self._stack
        while stack and stack[-1][0] == height:
            _, left = stack.pop()
            digest = node_hash(left, digest)
            height += 1
        stack.append((height, digest))
        self.size += 1

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Append leaf hashes in order: the same tree as :meth:`add` on each, faster.

        Whenever the tree's size is a multiple of a power of two, the next that many leaves
        form a perfect subtree; its root is computed a level at a time (one list
        comprehension per level instead of a Python loop per leaf) and pushed as one node.
        """
        start, count = 0, len(leaves)
        while start < count:
            # The biggest perfect subtree that can be appended: bounded by the size's lowest set
            # bit (the stack holds only subtrees at least that high) and by the leaves left.
            span = 1 << (count - start).bit_length() - 1
            if self.size:
                span = min(span, self.size & -self.size)
            if span == 1:
                self.add(leaves[start])
                start += 1
                continue
            self._push(span.bit_length() - 1, perfect_root(leaves[start : start + span]))
            self.size += span
            start += span

    def append_subtree(self, height: int, digest: bytes) -> None:
        """Append the root of a perfect subtree of ``2**height`` leaves, as :meth:`extend` on
        those leaves would.

        Raises:
            ValueError: the tree's size is not a multiple of ``2**height`` (the subtree would
                not be aligned, so it is not a subtree of the whole tree).
        """
        if self.size & ((1 << height) - 1):
            raise ValueError(f"a subtree of 2**{height} leaves cannot follow {self.size} leaves")
        self._push(height, digest)
        self.size += 1 << height

    def _push(self, height: int, digest: bytes) -> None:
        stack = self._stack
        while stack and stack[-1][0] == height:
            _, left = stack.pop()
            digest = node_hash(left, digest)
            height += 1
        stack.append((height, digest))

    def root(self) -> bytes:
        """Return the root of the leaves added so far."""
        if not self._stack:
            return EMPTY_ROOT
        digest = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            digest = node_hash(left, digest)
        return digest


def perfect_root(leaves: Sequence[bytes]) -> bytes:
    """Return the root over a power-of-two number of leaf hashes, a level at a time.

    Raises:
        ValueError: the number of leaves is not a power of two.
    """
    count = len(leaves)
    if count < 1 or count & (count - 1):
        raise ValueError(f"{count} leaves do not form a perfect tree")
    sha256 = hashlib.sha256
    level = list(leaves)
    while len(level) > 1:
        # Pairs from one iterator: no copies of the level (as slicing [::2] and [1::2] made).
        pairs = iter(level)
        level = [sha256(b"\x01" + a + b).digest() for a, b in zip(pairs, pairs, strict=True)]
    return level[0]


def root(leaves: Sequence[bytes]) -> bytes:
    """Return the root over ``leaves`` (leaf hashes)."""
    builder = TreeBuilder()
    for leaf in leaves:
        builder.add(leaf)
    return builder.root()


def _split(n: int) -> int:
    """Largest power of two strictly below ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_path(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """Return the audit path for leaf ``index`` in a tree of ``size`` leaves (RFC 9162 PATH).

    ``subtree(lo, hi)`` must return the hash of the leaves ``lo..hi-1`` (MTH(D[lo:hi])); it is
    asked only for ranges that start at a multiple of the largest power of two not above their
    length, so a store of perfect subtrees (tiles) can answer it.

    Raises:
        IndexError: ``index`` is outside the tree.
    """
    if not 0 <= index < size:
        raise IndexError(f"leaf {index} is outside a tree of {size}")
    proof: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            proof.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(subtree(lo, lo + k))
            lo = lo + k
    proof.reverse()
    return proof


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """Return the audit path for leaf ``index`` in the tree over ``leaves`` (RFC 9162 PATH).

    Raises:
        IndexError: ``index`` is outside the tree.
    """
    return inclusion_path(index, len(leaves), lambda lo, hi: root(leaves[lo:hi]))


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Return the root that ``proof`` implies for ``leaf`` at ``index`` (RFC 9162 2.1.3.2).

    Raises:
        ProofError: the index is outside the tree, a hash has the wrong length, or the proof has
            the wrong number of components.
    """
    if size < 1 or not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    if len(leaf) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("a hash in the proof is not 32 bytes")
    fn, sn = index, size - 1
    digest = leaf
    for component in proof:
        if sn == 0:
            raise ProofError("the proof is longer than the tree allows")
        if fn & 1 or fn == sn:
            digest = node_hash(component, digest)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            digest = node_hash(digest, component)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the tree requires")
    return digest


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> None:
    """Check that ``leaf`` is at ``index`` in the tree of ``size`` with root ``expected_root``.

    Raises:
        ProofError: the proof is malformed or leads to another root.
    """
    if len(expected_root) != HASH_SIZE:
        raise ProofError("the root is not 32 bytes")
    if root_from_inclusion(index, size, leaf, proof) != expected_root:
        raise ProofError("the inclusion proof leads to another root")


def consistency_path(size1: int, size2: int, subtree: SubtreeHash) -> list[bytes]:
    """Return the RFC 9162 consistency proof from the first ``size1`` leaves to ``size2``.

    ``subtree`` is as for :func:`inclusion_path`.

    Raises:
        ValueError: ``size1`` is not in 1..size2.
    """
    if not 0 < size1 <= size2:
        raise ValueError("size1 must be between 1 and the tree size")

    def subproof(m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if complete else [subtree(lo, hi)]
        k = _split(n)
        if m <= k:
            return [*subproof(m, lo, lo + k, complete), subtree(lo + k, hi)]
        return [*subproof(m - k, lo + k, hi, False), subtree(lo, lo + k)]

    return subproof(size1, 0, size2, True)


def consistency_proof(size1: int, leaves: Sequence[bytes]) -> list[bytes]:
    """Return the RFC 9162 consistency proof from the first ``size1`` leaves to all of them.

    Raises:
        ValueError: ``size1`` is not in 1..len(leaves).
    """
    return consistency_path(size1, len(leaves), lambda lo, hi: root(leaves[lo:hi]))


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``size2`` with ``root2`` extends the one of ``size1`` with ``root1``.

    Raises:
        ProofError: the proof is malformed or does not link the two roots.
    """
    if size1 < 1 or size2 < size1:
        raise ProofError(f"no consistency proof exists from size {size1} to size {size2}")
    if size1 == size2:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if root1 != root2:
            raise ProofError("equal sizes with different roots")
        return
    if len(root1) != HASH_SIZE or len(root2) != HASH_SIZE:
        raise ProofError("a root is not 32 bytes")
    if any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("a hash in the proof is not 32 bytes")
    components = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: its root starts the path
        components.insert(0, root1)
    if not components:
        raise ProofError("empty consistency proof")
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = components[0]
    for component in components[1:]:
        if sn == 0:
            raise ProofError("the proof is longer than the trees allow")
        if fn & 1 or fn == sn:
            fr = node_hash(component, fr)
            sr = node_hash(component, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, component)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the trees require")
    if fr != root1 or sr != root2:
        raise ProofError("the consistency proof does not link the two roots")
