"""Proofs a creator can show others: a work is present in, or absent from, a card's manifest.

A proof is checked against the Merkle root that a *verified* dataset card commits to, without
the manifest:

- **present**: the manifest line of an entry whose ``sha256`` is the work's digest, its index
  and its RFC 9162 inclusion proof. The verifier recomputes the leaf hash from the line, so the
  line (and the digest in it) is what the publisher signed.
- **absent**: the manifest is ordered by ``(sha256, id)``, so a digest that no entry has falls
  between two *adjacent* leaves ``i`` and ``i + 1`` with ``left.sha256 < work < right.sha256``.
  The proof holds both lines with their inclusion proofs; adjacency is proven by the indexes.
  At the ends only one leaf is needed (index 0 with ``work < sha256``, or index ``size - 1`` with
  ``sha256 < work``), and an empty manifest (size 0, root = SHA-256 of nothing) needs none.

Absence is relative to the manifest the card commits to and rests on that manifest being in
``(sha256, id)`` order, which ``provenance verify --manifest`` checks for anyone holding it.

The proof file is the deterministic serialization of its document plus a ``checksum`` over the
rest, and both are checked: a proof altered in any byte fails. The checksum is not what makes a
proof trustworthy (anyone can compute one); it catches the edits that the Merkle checks cannot,
e.g. another digest that the same two leaves also bracket.

Building proofs for a batch of works reads the manifest once, checks it against the card, keeps
every complete subtree hash (2n hashes), and then answers each work in O(log n).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from provenance import _json, merkle, schema
from provenance._files import atomic_write, read_bytes
from provenance.card import LEAF_FORMAT, MAX_CARD_BYTES, VerifiedCard, unverified_card_document
from provenance.card import verify_card as _verify_card
from provenance.envelope import Envelope
from provenance.errors import (
    DigestMismatchError,
    FormatError,
    InputError,
    LocalIOError,
)
from provenance.manifest import ManifestEntry, ManifestSummary, decode_entry, entry_bytes
from provenance.manifest import iter_manifest as _iter_manifest
from provenance.merkle import ProofError
from provenance.trust import MAX_TRUST_STORE_BYTES, TrustStore

PROOF_TYPE = "https://provenance.dev/proof/v1"
PROOF_SCHEMA = "proof.v1.json"
MAX_PROOF_BYTES = 1024 * 1024
_HASH = merkle.HASH_SIZE

Claim = Literal["present", "absent"]

__all__ = [
    "CardCommitment",
    "CardRef",
    "Claim",
    "MerkleIndex",
    "Proof",
    "ProofBuilder",
    "ProofError",
    "ProofLeaf",
    "VerifiedProof",
    "load_card",
    "locate",
    "proof_file_names",
    "read_proof",
    "verify_leaf",
    "verify_proof",
    "write_proofs",
]


# ----------------------------------------------------------------------------------------------
# Pure core: the card commitment, the proof document, and verifying it


@dataclass(frozen=True, slots=True)
class CardCommitment:
    """What a proof is checked against, taken from a verified card."""

    statement_sha256: str
    """SHA-256 of the card's signed payload (the in-toto Statement bytes)."""
    manifest_sha256: str
    merkle_root: str
    tree_size: int

    @classmethod
    def of(cls, card: VerifiedCard, statement_sha256: str) -> CardCommitment:
        """Return the commitment of ``card`` (whose payload hashes to ``statement_sha256``)."""
        manifest = card.predicate["manifest"]
        return cls(
            statement_sha256, card.manifest_digest, manifest["merkleRoot"], manifest["entries"]
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (the proof's ``card`` member)."""
        return {
            "statementSha256": self.statement_sha256,
            "manifestSha256": self.manifest_sha256,
            "merkleRoot": self.merkle_root,
            "treeSize": self.tree_size,
        }


@dataclass(frozen=True, slots=True)
class ProofLeaf:
    """One manifest line, its leaf index and its audit path (leaf to root)."""

    index: int
    entry: bytes
    audit_path: tuple[bytes, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "index": self.index,
            "entry": self.entry.decode("utf-8"),
            "auditPath": [h.hex() for h in self.audit_path],
        }


@dataclass(frozen=True, slots=True)
class Proof:
    """A proof that the work with digest ``work`` is present in or absent from a manifest.

    ``Proof.from_json(p.to_json()) == p`` for every proof built here.
    """

    claim: Claim
    work: str
    card: CardCommitment
    leaves: tuple[ProofLeaf, ...]

    def _body(self) -> dict[str, Any]:
        return {
            "type": PROOF_TYPE,
            "hashAlgorithm": "sha256",
            "leafFormat": LEAF_FORMAT,
            "card": self.card.to_dict(),
            "work": {"sha256": self.work},
            "claim": self.claim,
            "leaves": [leaf.to_dict() for leaf in self.leaves],
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the proof document, with its checksum."""
        body = self._body()
        return {**body, "checksum": _checksum(body)}

    def to_json(self) -> bytes:
        """Return the proof file's bytes (the only serialization :meth:`from_json` accepts)."""
        return _json.pretty(self.to_dict())

    @classmethod
    def from_json(cls, unverified_data: bytes, *, what: str) -> Proof:
        """Parse a proof file, refusing any byte that is not exactly what :meth:`to_json` writes.

        Raises:
            ProofError: malformed JSON, schema violation, not the canonical serialization, or a
                checksum mismatch. (A damaged proof is a failed proof: exit 1, not 2.)
        """
        try:
            document = _json.loads_object(unverified_data, what=what)
            schema.validate(document, PROOF_SCHEMA, what=what)
        except FormatError as exc:
            raise ProofError(f"not a valid proof: {exc}") from None
        if _json.pretty(document) != unverified_data:
            raise ProofError(
                f"{what}: not a valid proof: the file is not byte for byte the form"
                " 'provenance lookup' writes (was it edited or re-formatted?)"
            )
        body = {k: v for k, v in document.items() if k != "checksum"}
        if _checksum(body) != document["checksum"]:
            raise ProofError(
                f"{what}: not a valid proof: checksum mismatch (the proof was altered)"
            )
        card = document["card"]
        return cls(
            claim=document["claim"],
            work=document["work"]["sha256"],
            card=CardCommitment(
                card["statementSha256"],
                card["manifestSha256"],
                card["merkleRoot"],
                card["treeSize"],
            ),
            leaves=tuple(
                ProofLeaf(
                    leaf["index"],
                    leaf["entry"].encode("utf-8"),
                    tuple(bytes.fromhex(h) for h in leaf["auditPath"]),
                )
                for leaf in document["leaves"]
            ),
        )


def _checksum(body: dict[str, Any]) -> str:
    return hashlib.sha256(_json.canonical(body)).hexdigest()


@dataclass(frozen=True, slots=True)
class VerifiedProof:
    """A proof that verified: the claim holds for the manifest the card commits to."""

    claim: Claim
    work: str
    card: CardCommitment
    leaves: tuple[tuple[int, ManifestEntry], ...]
    """(index, entry) of each leaf, in manifest order."""

    def describe(self) -> str:
        """Return one human-readable line stating what was proven."""
        size = self.card.tree_size
        if self.claim == "present":
            index, entry = self.leaves[0]
            return f"work {self.work} is PRESENT: entry {entry.id!r} (leaf {index} of {size})"
        if not self.leaves:
            where = "the manifest is empty"
        elif len(self.leaves) == 2:
            where = "it falls between adjacent leaves " + " and ".join(
                f"{i} (sha256 {e.sha256})" for i, e in self.leaves
            )
        else:
            index, entry = self.leaves[0]
            side = "before the first" if self.work < entry.sha256 else "after the last"
            where = f"it sorts {side} entry (leaf {index}, sha256 {entry.sha256})"
        return f"work {self.work} is ABSENT from the {size}-entry manifest: {where}"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form reported by ``proof verify``."""
        return {
            "ok": True,
            "claim": self.claim,
            "work": self.work,
            "card": self.card.to_dict(),
            "leaves": [{"index": i, "id": e.id, "sha256": e.sha256} for i, e in self.leaves],
            "detail": self.describe(),
        }


def verify_proof(proof: Proof, card: CardCommitment) -> VerifiedProof:
    """Check ``proof`` against the commitment of a verified card, without the manifest.

    Returns:
        The verified claim with the entries it rests on.

    Raises:
        ProofError: the proof is for another card or manifest, a line is not a canonical
            manifest entry, an inclusion proof fails, or the leaves do not support the claim.
    """
    mine, theirs = proof.card, card
    if mine.statement_sha256 != theirs.statement_sha256:
        raise ProofError(
            f"the proof is for another card (statement sha256 {mine.statement_sha256},"
            f" this card's is {theirs.statement_sha256})"
        )
    for label, claimed, actual in (
        ("manifest sha256", mine.manifest_sha256, theirs.manifest_sha256),
        ("Merkle root", mine.merkle_root, theirs.merkle_root),
        ("tree size", mine.tree_size, theirs.tree_size),
    ):
        if claimed != actual:
            raise ProofError(f"the proof's {label} is {claimed}, the card's is {actual}")
    size, root = card.tree_size, bytes.fromhex(card.merkle_root)
    leaves: list[tuple[int, ManifestEntry]] = []
    for number, leaf in enumerate(proof.leaves):
        try:
            entry = decode_entry(leaf.entry, what=f"leaf {leaf.index}")
        except FormatError as exc:
            raise ProofError(f"the proof's {exc}") from None
        try:
            verify_leaf(leaf.index, size, merkle.leaf_hash(leaf.entry), leaf.audit_path, root)
        except ProofError as exc:
            raise ProofError(
                f"inclusion proof {number + 1} (leaf {leaf.index} of {size}) is invalid: {exc}"
            ) from None
        leaves.append((leaf.index, entry))
    _check_claim(proof.claim, proof.work, size, root, leaves)
    return VerifiedProof(proof.claim, proof.work, card, tuple(leaves))


def verify_leaf(
    index: int, size: int, leaf: bytes, audit_path: Sequence[bytes], root: bytes
) -> None:
    """The Merkle step of :func:`verify_proof`: RFC 9162 inclusion of ``leaf`` (a leaf hash).

    Raises:
        ProofError: the index is outside the tree, a hash is not 32 bytes, the path has the
            wrong length, or it leads to another root.
    """
    merkle.verify_inclusion(index, size, leaf, audit_path, root)


def _check_claim(
    claim: Claim, work: str, size: int, root: bytes, leaves: list[tuple[int, ManifestEntry]]
) -> None:
    """Check that verified ``leaves`` support ``claim`` for ``work`` (lowercase hex compares as
    the bytes do, so string order is the manifest order)."""
    if claim == "present":
        if len(leaves) != 1:
            raise ProofError(f"a presence proof needs exactly one leaf, not {len(leaves)}")
        if leaves[0][1].sha256 != work:
            raise ProofError(
                f"leaf {leaves[0][0]} has sha256 {leaves[0][1].sha256}, not the work's {work}"
            )
        return
    if size == 0:
        # Any leaf of an empty tree has already failed its inclusion proof.
        if root != merkle.EMPTY_ROOT:
            raise ProofError("the card's tree size is 0 but its root is not the empty root")
        return
    if len(leaves) == 2:
        (i, left), (j, right) = leaves
        if j != i + 1:
            raise ProofError(f"leaves {i} and {j} are not adjacent")
        if not left.sha256 < work < right.sha256:
            raise ProofError(
                f"leaves {i} and {j} (sha256 {left.sha256} and {right.sha256}) do not bracket"
                f" the work's digest {work}"
            )
        return
    if len(leaves) == 1:
        index, entry = leaves[0]
        if index == 0 and work < entry.sha256:
            return  # before the first leaf
        if index == size - 1 and entry.sha256 < work:
            return  # after the last leaf
        raise ProofError(
            f"a single leaf proves absence only before leaf 0 or after leaf {size - 1};"
            f" leaf {index} (sha256 {entry.sha256}) does not, for work {work}"
        )
    raise ProofError(f"an absence proof in a {size}-entry manifest needs one or two leaves")


# ----------------------------------------------------------------------------------------------
# Pure core: finding a digest and building audit paths fast


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


# ----------------------------------------------------------------------------------------------
# I/O shell: verified cards, reading manifests, writing and reading proof files


@dataclass(frozen=True, slots=True)
class CardRef:
    """A verified card and the commitment proofs are checked against."""

    card: VerifiedCard
    commitment: CardCommitment


def load_card(signed_path: Path, trust_path: Path, *, at: dt.datetime) -> CardRef:
    """Read ``signed_path`` and verify it as a dataset card against the trust store.

    Returns:
        The verified card and its commitment (identity = SHA-256 of the verified payload).

    Raises:
        InputError: a file is missing or malformed, the card is unsigned, or no key is trusted
            as dataset-publisher.
        SignatureError: no trusted dataset-publisher key signed the card.
    """
    trust = TrustStore.from_json(
        read_bytes(trust_path, limit=MAX_TRUST_STORE_BYTES), what=str(trust_path)
    )
    document = unverified_card_document(
        read_bytes(signed_path, limit=MAX_CARD_BYTES), what=str(signed_path)
    )
    if not isinstance(document, Envelope):
        raise FormatError(f"{signed_path}: the card is not signed; run 'provenance card sign'")
    card = _verify_card(document, trust, at=at, what=str(signed_path))
    # verify_card succeeded, so document.payload is exactly the verified bytes.
    statement_sha256 = hashlib.sha256(document.payload).hexdigest()
    return CardRef(card, CardCommitment.of(card, statement_sha256))


class ProofBuilder:
    """Proofs for many works against one manifest, checked once against its card."""

    def __init__(
        self,
        manifest_path: Path,
        commitment: CardCommitment,
        digests: bytes,
        offsets: array[int],
        index: MerkleIndex,
    ) -> None:
        """Use :meth:`from_manifest`."""
        self._path = manifest_path
        self.commitment = commitment
        self._digests = digests
        self._offsets = offsets
        self._index = index

    @classmethod
    def from_manifest(cls, manifest_path: Path, card: CardRef) -> ProofBuilder:
        """Read the manifest, check it is the one ``card`` commits to, and index it.

        Raises:
            InputError, FormatError, LocalIOError: the manifest is missing, unreadable or
                invalid (every line is checked, as :func:`provenance.manifest.iter_manifest`).
            DigestMismatchError: the manifest's digest, size or Merkle root is not the card's.
        """
        summaries: list[ManifestSummary] = []
        digests = bytearray()
        leaves = bytearray()
        offsets = array("Q", [0])
        leaf_hash, from_hex = merkle.leaf_hash, bytes.fromhex
        position = 0
        for entry in _iter_manifest(manifest_path, on_summary=summaries.append):
            # iter_manifest checked that each line is exactly entry_bytes(entry).
            line = entry_bytes(entry)
            digests += from_hex(entry.sha256)
            leaves += leaf_hash(line)
            position += len(line) + 1
            offsets.append(position)
        summary = summaries[0]
        expected = card.commitment
        if summary.digest != expected.manifest_sha256:
            raise DigestMismatchError(
                f"{manifest_path}: sha256 {summary.digest} is not the manifest the card commits"
                f" to ({expected.manifest_sha256})"
            )
        index = MerkleIndex(bytes(leaves))
        if summary.entries != expected.tree_size or index.root().hex() != expected.merkle_root:
            raise DigestMismatchError(
                f"{manifest_path}: {summary.entries} entries with Merkle root {summary.root};"
                f" the card says {expected.tree_size} with root {expected.merkle_root}"
            )
        return cls(manifest_path, expected, bytes(digests), offsets, index)

    @property
    def size(self) -> int:
        """The number of entries."""
        return self._index.size

    def _lines(self, indexes: Sequence[int]) -> list[bytes]:
        try:
            with open(self._path, "rb") as handle:
                lines = []
                for i in indexes:
                    start, end = self._offsets[i], self._offsets[i + 1]
                    lines.append(os.pread(handle.fileno(), end - start - 1, start))
                return lines
        except OSError as exc:
            raise LocalIOError(f"{self._path}: cannot read: {exc.strerror}") from None

    def prove(self, work_sha256: str) -> Proof:
        """Return the proof of presence or absence of the work with digest ``work_sha256``.

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
        located: list[tuple[str, Claim, tuple[int, ...]]] = []
        for work in works:
            if len(work) != 64 or work.strip("0123456789abcdef"):
                raise InputError(f"work digest {work!r} is not 64 lowercase hex digits")
            claim, indexes = locate(self._digests, bytes.fromhex(work))
            located.append((work, claim, indexes))
        wanted = sorted({i for _, _, indexes in located for i in indexes})
        lines = dict(zip(wanted, self._lines(wanted), strict=True))
        proofs = []
        for work, claim, indexes in located:
            leaves = tuple(
                ProofLeaf(i, lines[i], tuple(self._index.audit_path(i))) for i in indexes
            )
            proof = Proof(claim, work, self.commitment, leaves)
            try:
                verify_proof(proof, self.commitment)
            except ProofError as exc:
                raise DigestMismatchError(
                    f"{self._path}: changed since it was read; the proof would not verify ({exc})"
                ) from None
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
    builder: ProofBuilder, works: Sequence[tuple[str, str]], out: Path, *, single: bool
) -> list[tuple[Path, Proof]]:
    """Write a proof for each ``(label, sha256)`` in ``works``.

    With ``single`` (exactly one work was asked about), ``out`` is the proof file; otherwise it
    is a directory (created if missing) holding one file per work, named by
    :func:`proof_file_names`. Each file is written atomically.

    Returns:
        The paths written, with their proofs, in the order of ``works``.

    Raises:
        InputError: ``single`` with more than one work, or ``out`` is a file where a directory
            is needed.
        DigestMismatchError, LocalIOError: see :meth:`ProofBuilder.prove_many`, or a write fails.
    """
    proofs = builder.prove_many([digest for _, digest in works])
    if single:
        if len(works) != 1:
            raise InputError(f"--proof-out {out}: one file holds one proof, not {len(works)}")
        atomic_write(out, proofs[0].to_json())
        return [(out, proofs[0])]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"--proof-out {out}: exists and is not a directory") from None
    except OSError as exc:
        raise LocalIOError(f"--proof-out {out}: cannot create directory: {exc.strerror}") from None
    written = []
    for name, proof in zip(proof_file_names(works), proofs, strict=True):
        atomic_write(out / name, proof.to_json())
        written.append((out / name, proof))
    return written


def read_proof(path: Path) -> bytes:
    """Return the unverified bytes of the proof file at ``path``.

    Raises:
        InputError: missing, unreadable, or larger than :data:`MAX_PROOF_BYTES`.
    """
    return read_bytes(path, limit=MAX_PROOF_BYTES, what=str(path))
