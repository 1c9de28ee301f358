"""Finding a digest among a manifest's leaves, and every subtree hash for fast audit paths."""

from __future__ import annotations

import hashlib

from provenance import merkle
from provenance.proofs.model import Claim

_HASH = merkle.HASH_SIZE


def locate(digests: bytes, work: bytes) -> tuple[Claim, tuple[int, ...]]:
    """Find ``work`` (32 bytes) in ``digests`` (the manifest's sha256s, 32 bytes each, in order).

    Returns:
        ``("present", (i,))`` for the first entry with that digest, or ``("absent", indexes)``
        with the indexes of the bracketing leaves (none, one at an end, or two adjacent).
    """
    n = len(digests) // _HASH
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if digests[mid * _HASH : (mid + 1) * _HASH] < work:
            lo = mid + 1
        else:
            hi = mid
    if lo < n and digests[lo * _HASH : (lo + 1) * _HASH] == work:
        return "present", (lo,)
    return "absent", tuple(i for i in (lo - 1, lo) if 0 <= i < n)


class MerkleIndex:
    """Every complete, aligned subtree hash of an RFC 9162 tree, for O(log n) audit paths.

    Level ``h`` holds the hashes of the subtrees covering leaves ``[j * 2**h, (j + 1) * 2**h)``
    that lie wholly inside the tree (about 2n hashes in all). A subtree cut by the right edge of
    the tree is folded from O(log n) complete ones when a path needs it.
    """

    __slots__ = ("_levels", "size")

    def __init__(self, leaves: bytes) -> None:
        """Build the levels from concatenated 32-byte leaf hashes (O(n) hashing, once)."""
        if len(leaves) % _HASH:
            raise ValueError("leaf hashes must be 32 bytes each")
        self.size = len(leaves) // _HASH
        self._levels: list[bytes] = [bytes(leaves)]
        sha256, prefix = hashlib.sha256, b"\x01"
        below = self._levels[0]
        while len(below) >= 2 * _HASH:
            count = len(below) // (2 * _HASH)
            view = memoryview(below)
            level = b"".join(
                sha256(prefix + view[k : k + 2 * _HASH]).digest()
                for k in range(0, count * 2 * _HASH, 2 * _HASH)
            )
            self._levels.append(level)
            below = level

    def _node(self, height: int, position: int) -> bytes:
        level = self._levels[height]
        return level[position * _HASH : (position + 1) * _HASH]

    def _range_root(self, start: int, end: int, height: int) -> bytes:
        """Root of leaves [start, end), where start is aligned to 2**height and end - start
        <= 2**height: complete subtrees from left to right, folded from the right (RFC MTH)."""
        if end - start == 1 << height:
            return self._node(height, start >> height)
        pieces: list[bytes] = []
        position = start
        for bit in range(height - 1, -1, -1):
            if (end - start) >> bit & 1:
                pieces.append(self._node(bit, position >> bit))
                position += 1 << bit
        digest = pieces[-1]
        for piece in reversed(pieces[:-1]):
            digest = merkle.node_hash(piece, digest)
        return digest

    def leaf(self, index: int) -> bytes:
        """Return the leaf hash at ``index``."""
        return self._node(0, index)

    def root(self) -> bytes:
        """Return the tree's root (SHA-256 of nothing when empty)."""
        if self.size == 0:
            return merkle.EMPTY_ROOT
        height = (self.size - 1).bit_length()
        return self._range_root(0, self.size, height)

    def audit_path(self, index: int) -> list[bytes]:
        """Return the RFC 9162 inclusion proof of leaf ``index`` (leaf to root).

        Raises:
            IndexError: ``index`` is outside the tree.
        """
        n = self.size
        if not 0 <= index < n:
            raise IndexError(f"leaf {index} is outside a tree of {n}")
        path: list[bytes] = []
        node, height = index, 0
        while 1 << height < n:
            start = (node ^ 1) << height
            if start < n:  # the sibling exists (at the right edge it may be cut short)
                path.append(self._range_root(start, min(start + (1 << height), n), height))
            node >>= 1
            height += 1
        return path
