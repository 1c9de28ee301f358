"""Building proofs for many works against one manifest, checked once against its card."""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from provenance import merkle
from provenance._files import atomic_write
from provenance._hex import is_sha256_hex
from provenance.errors import DigestMismatchError, InputError, LocalIOError
from provenance.manifest import ManifestEntry, entry_bytes
from provenance.merkle import ProofError
from provenance.proofs.inputs import CardRef
from provenance.proofs.model import (
    CardCommitment,
    Proof,
    ProofLeaf,
    Status,
    WorkDigests,
    claim_of,
)
from provenance.proofs.reading import read_against_card
from provenance.proofs.tree import MerkleIndex, locate
from provenance.proofs.verifying import verify_proof

if TYPE_CHECKING:
    from provenance.partlookup import PartitionedLookup


class ScannedManifest(Protocol):
    """A manifest as read once, with its leaf hashes (see
    :func:`provenance.fpindex.scan_entries`)."""

    @property
    def digest(self) -> str:
        """SHA-256 of the manifest file."""
        ...

    @property
    def digests(self) -> bytes:
        """Every entry's sha256, 32 bytes each, in order."""
        ...

    @property
    def leaves(self) -> bytes:
        """Every line's leaf hash, 32 bytes each, in order."""
        ...

    @property
    def offsets(self) -> Any:
        """Byte offset of every line and the file size (integers, indexable)."""
        ...


@dataclass(frozen=True, slots=True)
class ProofRequest:
    """What to prove about one work: its lookup status and, when it was found, the entry.

    ``leaf`` is the manifest line (0-based) of the matched entry and ``entry_id`` its id;
    both are None for an ``absent`` work, whose proof is of absence.
    """

    status: Status
    work: WorkDigests
    leaf: int | None = None
    entry_id: str | None = None

    @classmethod
    def by_digest(cls, sha256: str) -> ProofRequest:
        """A request for the work with this sha256, ``exact`` or ``absent`` as the manifest
        says (the entry is found by the builder)."""
        return cls("absent", WorkDigests(sha256))


def _leaf_table(entries: Iterable[ManifestEntry]) -> tuple[bytes, bytes, array[int]]:
    """Every entry's sha256 and leaf hash (32 bytes each) and every line's offset (and the
    file's size), from entries checked to be exactly their lines."""
    digests = bytearray()
    leaves = bytearray()
    offsets = array("Q", [0])
    leaf_hash, from_hex = merkle.leaf_hash, bytes.fromhex
    position = 0
    for entry in entries:
        line = entry_bytes(entry)
        digests += from_hex(entry.sha256)
        leaves += leaf_hash(line)
        position += len(line) + 1
        offsets.append(position)
    return bytes(digests), bytes(leaves), offsets


class ProofBuilder:
    """Proofs for many works against one manifest, checked once against its card."""

    def __init__(
        self,
        manifest_path: Path,
        commitment: CardCommitment,
        digests: bytes,
        offsets: Any,
        index: MerkleIndex,
    ) -> None:
        """Use :meth:`from_manifest` or :meth:`from_scan`."""
        self._path = manifest_path
        self.commitment = commitment
        self._digests = digests
        self._offsets = offsets
        self._index = index

    @classmethod
    def from_manifest(cls, manifest_path: Path, card: CardRef) -> ProofBuilder:
        """Read the manifest once, check it is the one ``card`` commits to, and index it.

        Raises:
            InputError, FormatError, LocalIOError: the manifest is missing, unreadable or
                invalid (every line is checked, as :func:`provenance.manifest.iter_manifest`).
            DigestMismatchError: the manifest's digest, size or Merkle root is not the card's.
        """
        digests, leaves, offsets = read_against_card(manifest_path, card, _leaf_table)
        return cls._checked(
            manifest_path, card, card.commitment.manifest_sha256, digests, leaves, offsets
        )

    @classmethod
    def from_scan(cls, manifest_path: Path, scan: ScannedManifest, card: CardRef) -> ProofBuilder:
        """Like :meth:`from_manifest`, from a manifest already read (with its leaf hashes).

        Raises:
            DigestMismatchError: the manifest's digest, size or Merkle root is not the card's.
        """
        return cls._checked(
            manifest_path, card, scan.digest, scan.digests, scan.leaves, scan.offsets
        )

    @classmethod
    def _checked(
        cls,
        manifest_path: Path,
        card: CardRef,
        digest: str,
        digests: bytes,
        leaves: bytes,
        offsets: Any,
    ) -> ProofBuilder:
        # The proofs come from this tree, so it must be the card's whoever read the manifest.
        index = MerkleIndex(leaves)
        card.commitment.check_manifest(manifest_path, digest, index.size, index.root().hex())
        return cls(manifest_path, card.commitment, digests, offsets, index)

    @property
    def size(self) -> int:
        """The number of entries."""
        return self._index.size

    def check_line(self, number: int, line: bytes) -> None:
        """Check that ``line`` (without newline) is manifest line ``number`` as the card
        commits to it (its leaf hash), for readers of the manifest file after this check.

        Raises:
            DigestMismatchError: it is not (the manifest changed on disk).
        """
        if not 0 <= number < self._index.size or merkle.leaf_hash(line) != self._index.leaf(number):
            raise DigestMismatchError(
                f"{self._path}: line {number + 1} is not the one checked against the card"
                " (the manifest changed on disk)"
            )

    def _lines(self, indexes: Sequence[int]) -> list[bytes]:
        from provenance.partitions import open_lines

        try:
            with open_lines(self._path) as reader:  # a file, or the parts of a partitioned one
                lines = []
                for i in indexes:
                    start, end = int(self._offsets[i]), int(self._offsets[i + 1])
                    lines.append(reader.pread(end - start - 1, start))
                return lines
        except OSError as exc:
            raise LocalIOError(f"{self._path}: cannot read: {exc.strerror}") from None

    def prove(self, work_sha256: str) -> Proof:
        """Return the proof of presence (``exact``) or absence of the work with digest
        ``work_sha256``.

        The proof is verified against the card before it is returned, so a manifest changed on
        disk since it was indexed cannot yield a wrong proof.

        Raises:
            InputError: ``work_sha256`` is not 64 lowercase hex digits.
            DigestMismatchError: the manifest changed on disk after it was indexed.
        """
        return self.prove_many([work_sha256])[0]

    def prove_many(self, works: Iterable[str]) -> list[Proof]:
        """Like :meth:`prove`, for many works, reading the manifest file once.

        Raises:
            InputError, DigestMismatchError: as :meth:`prove`.
        """
        return self.prove_requests([ProofRequest.by_digest(work) for work in works])

    def prove_requests(self, requests: Sequence[ProofRequest]) -> list[Proof]:
        """Return a proof for each request, reading the manifest file once.

        A request for a found work (any status but ``absent``) gets a presence proof of its
        matched entry, labelled with its status; an ``absent`` one a proof of absence, or of
        presence (``exact``) if an entry has the work's bytes after all. No absence proof is
        ever made for a work the manifest holds. Each proof is verified before it is returned.

        Raises:
            InputError: a digest is not 64 lowercase hex digits, a found work names no entry,
                or a normalized one has no textSha256.
            DigestMismatchError: the manifest changed on disk after it was indexed, or the
                matched entry is not the one the request names.
        """
        planned: list[tuple[ProofRequest, Status, tuple[int, ...]]] = []
        for request in requests:
            work = request.work.sha256
            if not is_sha256_hex(work):
                raise InputError(f"work digest {work!r} is not 64 lowercase hex digits")
            if request.status == "absent":
                claim, indexes = locate(self._digests, bytes.fromhex(work))
                status: Status = "exact" if claim == "present" else "absent"
                planned.append((request, status, indexes))
                continue
            if request.leaf is None or not 0 <= request.leaf < self.size:
                raise InputError(
                    f"a proof for a {request.status} work needs the matched entry's leaf"
                    f" (got {request.leaf})"
                )
            if request.status == "normalized" and request.work.text_sha256 is None:
                raise InputError("a proof of a normalized copy needs the work's textSha256")
            planned.append((request, request.status, (request.leaf,)))
        wanted = sorted({i for _, _, indexes in planned for i in indexes})
        lines = dict(zip(wanted, self._lines(wanted), strict=True))
        proofs = []
        for request, status, indexes in planned:
            leaves = tuple(
                ProofLeaf(i, lines[i], tuple(self._index.audit_path(i))) for i in indexes
            )
            proof = Proof(
                claim_of(status),
                request.work.sha256,
                self.commitment,
                leaves,
                status=status,
                work_text_sha256=request.work.text_sha256,
            )
            try:
                verified = verify_proof(proof, self.commitment)
            except ProofError as exc:
                raise DigestMismatchError(
                    f"{self._path}: changed since it was read; the proof would not verify ({exc})"
                ) from None
            if request.entry_id is not None and verified.leaves[0][1].id != request.entry_id:
                raise DigestMismatchError(
                    f"{self._path}: leaf {indexes[0]} is {verified.leaves[0][1].id!r}, not the"
                    f" matched entry {request.entry_id!r}"
                )
            proofs.append(proof)
        return proofs


def proof_file_names(works: Sequence[tuple[str, str]]) -> list[str]:
    """Return a file name per ``(label, sha256)``: ``<basename>.<sha256[:12]>.proof.json``."""
    names = []
    for label, digest in works:
        base = os.path.basename(label.rstrip("/\\")) or "work"
        base = "".join(c if c.isprintable() and c not in "/\\" else "_" for c in base)
        names.append(f"{base}.{digest[:12]}.proof.json")
    return names


def write_proofs(
    builder: ProofBuilder | PartitionedLookup,
    works: Sequence[tuple[str, str | ProofRequest]],
    out: Path,
    *,
    single: bool,
) -> list[tuple[Path, Proof]]:
    """Write a proof for each ``(label, request)`` in ``works``.

    A request is a :class:`ProofRequest` or a bare sha256 (:meth:`ProofRequest.by_digest`).
    With ``single`` (exactly one work was asked about), ``out`` is the proof file; otherwise it
    is a directory (created if missing) holding one file per work, named by
    :func:`proof_file_names`. Each file is written atomically.

    Returns:
        The paths written, with their proofs, in the order of ``works``.

    Raises:
        InputError: ``single`` with more than one work, or ``out`` is a file where a directory
            is needed.
        DigestMismatchError, LocalIOError: see :meth:`ProofBuilder.prove_requests`, or a
            write fails.
    """
    requests = [
        ProofRequest.by_digest(item) if isinstance(item, str) else item for _, item in works
    ]
    proofs = builder.prove_requests(requests)
    if single:
        if len(works) != 1:
            raise InputError(f"{out}: one file holds one proof, not {len(works)}")
        atomic_write(out, proofs[0].to_json())
        return [(out, proofs[0])]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"{out}: exists and is not a directory") from None
    except OSError as exc:
        raise LocalIOError(f"{out}: cannot create directory: {exc.strerror}") from None
    written = []
    names = proof_file_names(
        [(label, r.work.sha256) for (label, _), r in zip(works, requests, strict=True)]
    )
    for name, proof in zip(names, proofs, strict=True):
        atomic_write(out / name, proof.to_json())
        written.append((out / name, proof))
    return written
