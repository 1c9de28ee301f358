"""Lookups and proofs on a partitioned manifest that read only the parts they need.

A work's sha256 names the one part that can hold it (its hash prefix). Against a verified card,
:class:`PartitionedLookup` reads the index (its digest, entry count and root must be the card's,
and the root is recomputed from the parts' subtree roots), then each part a lookup touches, whole
and checked against the index (digest, count, subtree roots). A proof's audit path is computed
from the leaves of the parts read and the subtree roots the index lists for the others, so a
lookup of one work reads one part; an absence proof whose neighbours sit at the edges of its
part reads the neighbouring part too. Every proof is verified against the card before it is
returned, as :class:`provenance.proofs.ProofBuilder` does.

This path serves exact matches (and absences). Normalized matches need every entry's
``textSha256``: when any part holds one (the index counts them per part), lookups read the whole
manifest instead (:func:`open_partitioned` returns None), and near-duplicate fingerprints are
not partitioned yet.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from provenance import merkle, partitions
from provenance.errors import DigestMismatchError, InputError
from provenance.manifest import ManifestEntry, entry_bytes
from provenance.merkle import ProofError
from provenance.proofs.inputs import CardRef
from provenance.proofs.model import Proof, ProofLeaf, Status, claim_of
from provenance.proofs.verifying import verify_proof

__all__ = ["PartitionedLookup", "open_partitioned"]


class _Part:
    __slots__ = ("digests", "entries", "leaves")

    def __init__(self, entries: list[ManifestEntry]) -> None:
        self.entries = entries
        self.digests = [e.sha256 for e in entries]
        self.leaves = [merkle.leaf_hash(entry_bytes(e)) for e in entries]


class PartitionedLookup:
    """A partitioned manifest opened against a card, as both the index a lookup searches and
    the builder of its proofs."""

    has_text_prints = False

    def __init__(self, path: Path, card: CardRef) -> None:
        self._path = path
        self.commitment = card.commitment
        self.index, digest = partitions.read_index(path)
        self.commitment.check_manifest(
            partitions.index_path(path), digest, self.index.entries, self.index.merkle_root
        )
        self._directory = partitions.index_path(path).parent
        self._offsets = self.index.offsets()
        self._parts: dict[int, _Part] = {}

    @property
    def size(self) -> int:
        """The number of entries."""
        return self.index.entries

    @property
    def parts_read(self) -> list[int]:
        """The parts read so far, in order."""
        return sorted(self._parts)

    def _part(self, k: int) -> _Part:
        if k not in self._parts:
            entries: list[ManifestEntry] = []
            for block, _ in partitions.read_part(
                self._directory,
                self.index.parts[k],
                offset=self._offsets[k],
                k=k,
                partitions=self.index.partitions,
                what=str(self._path),
            ):
                entries.extend(block)
            self._parts[k] = _Part(entries)
        return self._parts[k]

    def _part_of_leaf(self, number: int) -> int:
        return bisect.bisect_right(self._offsets, number) - 1 if self.index.entries else 0

    def _leaf_entry(self, number: int) -> tuple[ManifestEntry, bytes]:
        k = self._part_of_leaf(number)
        while not self.index.parts[k].entries:  # the offsets of empty parts repeat
            k += 1
        part = self._part(k)
        return part.entries[number - self._offsets[k]], part.leaves[number - self._offsets[k]]

    # -- what a lookup asks of an index --------------------------------------------------------

    def entry(self, number: int) -> ManifestEntry:
        """Entry ``number`` (its line in the whole manifest, from 0)."""
        return self._leaf_entry(number)[0]

    def exact_numbered(self, sha256: str) -> list[tuple[int, ManifestEntry]]:
        """The entries whose sha256 is ``sha256``, with their numbers (one part read)."""
        k = partitions.partition_of(sha256, self.index.partitions)
        part = self._part(k)
        lo = bisect.bisect_left(part.digests, sha256)
        hi = bisect.bisect_right(part.digests, sha256)
        return [(self._offsets[k] + i, part.entries[i]) for i in range(lo, hi)]

    def normalized_numbered(self, text_sha256: str) -> list[tuple[int, ManifestEntry]]:
        """None: no part holds a textSha256 (see :func:`open_partitioned`)."""
        return []

    def text_candidates(
        self, prints: npt.NDArray[np.uint64], *, max_postings: int = 100_000
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """None: a partitioned manifest has no fingerprint sidecar yet."""
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty, empty

    def image_candidates(
        self, phash: int, *, max_distance: int
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """None: a partitioned manifest has no fingerprint sidecar yet."""
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty

    def close(self) -> None:
        """Forget the parts read."""
        self._parts = {}

    # -- proofs --------------------------------------------------------------------------------

    def _subtree(self, lo: int, hi: int) -> bytes:
        """The RFC 9162 hash of leaves ``lo .. hi-1``: from the leaves of parts read, and from
        the index's subtree roots of the others (a part whose roots straddle the range is read)."""
        tree = merkle.TreeBuilder()
        first = self._part_of_leaf(lo)
        for k in range(first, len(self.index.parts)):
            start = self._offsets[k]
            info = self.index.parts[k]
            end = start + info.entries
            if start >= hi:
                break
            if end <= lo or not info.entries:
                continue
            if k not in self._parts:
                heights = partitions.block_heights(start, info.entries)
                blocks, position = [], start
                for height, digest in zip(heights, info.subtrees, strict=True):
                    blocks.append((position, height, digest))
                    position += 1 << height
                inside = [lo <= p and p + (1 << h) <= hi for p, h, _ in blocks]
                outside = [p + (1 << h) <= lo or p >= hi for p, h, _ in blocks]
                aligned = all(not i or not (p - lo) % (1 << h) for (p, h, _), i in zip(
                    blocks, inside, strict=True
                ))
                if aligned and all(i or o for i, o in zip(inside, outside, strict=True)):
                    for (_, height, digest), take in zip(blocks, inside, strict=True):
                        if take:
                            tree.append_subtree(height, bytes.fromhex(digest))
                    continue
            part = self._part(k)
            tree.extend(part.leaves[max(lo, start) - start : min(hi, end) - start])
        return tree.root()

    def _locate(self, work: str) -> tuple[bool, tuple[int, ...]]:
        """Present (with the first leaf), or absent with the bracketing leaves."""
        k = partitions.partition_of(work, self.index.partitions)
        part = self._part(k)
        lo = bisect.bisect_left(part.digests, work)
        if lo < len(part.digests) and part.digests[lo] == work:
            return True, (self._offsets[k] + lo,)
        number = self._offsets[k] + lo
        return False, tuple(i for i in (number - 1, number) if 0 <= i < self.index.entries)

    def prove_requests(self, requests: Sequence[object]) -> list[Proof]:
        """Return a verified proof for each :class:`provenance.proofs.ProofRequest`, as
        :meth:`provenance.proofs.ProofBuilder.prove_requests` does.

        Raises:
            InputError: a digest is not 64 lowercase hex digits, or a found work names no entry.
            DigestMismatchError: a part read does not give a proof that verifies.
        """
        from provenance.proofs import ProofRequest

        proofs = []
        for request in requests:
            assert isinstance(request, ProofRequest)
            work = request.work.sha256
            if len(work) != 64 or work.strip("0123456789abcdef"):
                raise InputError(f"work digest {work!r} is not 64 lowercase hex digits")
            status: Status
            if request.status == "absent":
                present, indexes = self._locate(work)
                status = "exact" if present else "absent"
            else:
                if request.leaf is None or not 0 <= request.leaf < self.size:
                    raise InputError(f"a {request.status} work needs its entry's leaf")
                status, indexes = request.status, (request.leaf,)
            leaves = tuple(
                ProofLeaf(
                    i,
                    entry_bytes(self._leaf_entry(i)[0]),
                    tuple(merkle.inclusion_path(i, self.size, self._subtree)),
                )
                for i in indexes
            )
            proof = Proof(
                claim_of(status),
                work,
                self.commitment,
                leaves,
                status=status,
                work_text_sha256=request.work.text_sha256,
            )
            try:
                verify_proof(proof, self.commitment)
            except ProofError as exc:
                raise DigestMismatchError(
                    f"{self._path}: the proof would not verify ({exc})"
                ) from None
            proofs.append(proof)
        return proofs


def open_partitioned(path: Path, card: CardRef) -> PartitionedLookup | None:
    """Open the partitioned manifest at ``path`` for lookups against ``card`` reading only the
    parts needed, or return None when a part holds a textSha256 (then every part must be read).

    Raises:
        InputError, FormatError, SchemaError: a missing or malformed index.
        DigestMismatchError: the index is not the one the card commits to.
    """
    opened = PartitionedLookup(path, card)
    if any(p.text_entries for p in opened.index.parts):
        return None
    return opened
