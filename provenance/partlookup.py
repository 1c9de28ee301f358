"""Lookups and proofs on a partitioned manifest that read only the parts they need.

A work's sha256 names the one part that can hold it (its hash prefix). Against a verified card,
:class:`PartitionedLookup` reads the index (its digest, entry count and root must be the card's,
and the root is recomputed from the parts' subtree roots), then each part a lookup touches, whole
and checked against the index (digest, count, subtree roots). A proof's audit path is computed
from the leaves of the parts read and the subtree roots the index lists for the others, so a
lookup of one work reads one part; an absence proof whose neighbours sit at the edges of its
part reads the neighbouring part too. Every proof is verified against the card before it is
returned, as :class:`provenance.proofs.ProofBuilder` does.

Normalized, near-duplicate and contained matches use the parts' fingerprint sidecars
(``part-NNNNN.jsonl.fp``, listed in the index), as :func:`provenance.fpsidecar.open_part_sidecars`
decides given the card: a normalized or near-duplicate lookup searches every sidecar part (each
read once, when first needed, and checked against the digest the index lists), then reads only
the parts that hold a candidate. A manifest whose parts hold ``textSha256`` but whose sidecars
are not to be used is read whole instead (:func:`open_partitioned` returns None), since only
reading every entry finds its normalized copies.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from provenance import merkle, partitions
from provenance.errors import DigestMismatchError, InputError
from provenance.fpsidecar import PartSidecars, open_part_sidecars
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
    """A partitioned manifest opened against a card (or, without one, checked against nothing
    but its own index), as both the index a lookup searches and the builder of its proofs."""

    def __init__(self, path: Path, card: CardRef | None) -> None:
        self._path = path
        self.commitment = card.commitment if card is not None else None
        self.sidecars: PartSidecars = open_part_sidecars(
            path, card.card if card is not None else None
        )
        self.index, digest = self.sidecars.index, self.sidecars.index_sha256
        if self.commitment is not None:
            self.commitment.check_manifest(
                partitions.index_path(path), digest, self.index.entries, self.index.merkle_root
            )
        self._directory = partitions.index_path(path).parent
        self._offsets = self.index.offsets()
        self._parts: dict[int, _Part] = {}
        self._prints: dict[int, Any] = {}  # part -> FingerprintIndex of its sidecar

    @property
    def has_text_prints(self) -> bool:
        """True when the parts' fingerprint sidecars are used."""
        return self.sidecars.used

    @property
    def note(self) -> str | None:
        """Why the sidecar parts are not used (one sentence), if there is something to say."""
        return self.sidecars.note

    @property
    def sidecars_read(self) -> list[int]:
        """The parts whose sidecars were read so far, in order."""
        return sorted(self._prints)

    def _part_prints(self, k: int) -> Any:
        """Part ``k``'s sidecar, read once and checked against the index."""
        if k not in self._prints:
            from provenance.fpindex import FingerprintIndex

            info = self.index.parts[k]
            self._prints[k] = FingerprintIndex.for_part(
                self._directory / info.file,
                self.sidecars.open_part(k),
                manifest_sha256=info.sha256,
                manifest_bytes=info.bytes,
            )
        return self._prints[k]

    def _parts_with(self, attribute: str) -> list[int]:
        if not self.sidecars.used:
            return []
        return [
            k
            for k, part in enumerate(self.index.parts)
            if part.entries and (attribute != "text" or part.text_entries)
        ]

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
        """The entries whose textSha256 is ``text_sha256``, with their numbers: every sidecar
        part holding text entries is searched, and only the parts of candidates read."""
        found = []
        for k in self._parts_with("text"):
            for local in self._part_prints(k).text_sha_candidates(text_sha256):
                entry = self._part(k).entries[local]
                if entry.textSha256 == text_sha256:
                    found.append((self._offsets[k] + local, entry))
        return sorted(found, key=lambda item: item[0])

    def text_candidates(
        self, prints: npt.NDArray[np.uint64], *, max_postings: int = 100_000
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """As :meth:`provenance.fpindex.FingerprintIndex.text_candidates` on the single file:
        every sidecar part is searched, and a fingerprint is skipped as boilerplate when the
        parts together hold it more than ``max_postings`` times."""
        parts = self._parts_with("text")
        empty = np.zeros(0, dtype=np.intp)
        if not parts or not len(prints):
            return empty, empty, empty
        ranges = [self._part_prints(k).postings(prints) for k in parts]
        total = np.sum([lengths for _, lengths in ranges], axis=0)
        keep = (total > 0) & (total <= max_postings)
        found = []
        for k, (lo, lengths) in zip(parts, ranges, strict=True):
            entries, shared, counts = self._part_prints(k).candidates_in(lo, lengths, keep)
            found.append((entries + self._offsets[k], shared, counts))
        return (
            np.concatenate([f[0] for f in found]).astype(np.intp),
            np.concatenate([f[1] for f in found]).astype(np.intp),
            np.concatenate([f[2] for f in found]).astype(np.intp),
        )

    def image_candidates(
        self, phash: int, *, max_distance: int
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """As :meth:`provenance.fpindex.FingerprintIndex.image_candidates`, over every part."""
        empty = np.zeros(0, dtype=np.intp)
        entries, distances = [empty], [empty]
        for k in self._parts_with("image"):
            found, far = self._part_prints(k).image_candidates(phash, max_distance=max_distance)
            entries.append(found.astype(np.intp) + self._offsets[k])
            distances.append(far.astype(np.intp))
        return np.concatenate(entries), np.concatenate(distances)

    def close(self) -> None:
        """Forget the parts read, and release their sidecars."""
        self._parts = {}
        for opened in self._prints.values():
            opened.close()
        self._prints = {}

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
                aligned = all(
                    not i or not (p - lo) % (1 << h)
                    for (p, h, _), i in zip(blocks, inside, strict=True)
                )
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

        if self.commitment is None:
            raise ValueError(f"{self._path}: opened without a card, so nothing to prove against")
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


def open_partitioned(path: Path, card: CardRef | None) -> PartitionedLookup | None:
    """Open the partitioned manifest at ``path`` for lookups against ``card`` (or none),
    reading only the parts needed, or return None when a part holds a textSha256 and the
    sidecar parts are not to be used (then every part must be read).

    Raises:
        InputError, FormatError, SchemaError: a missing or malformed index; some sidecar parts
            missing while others are present.
        DigestMismatchError: the index is not the one the card commits to, or the card commits
            to other fingerprints.
    """
    opened = PartitionedLookup(path, card)
    if not opened.sidecars.used and any(p.text_entries for p in opened.index.parts):
        return None
    return opened
