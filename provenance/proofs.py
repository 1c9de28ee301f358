"""Proofs a creator can show others: a work is present in, or absent from, a card's manifest.

A proof is checked against the Merkle root that a *verified* dataset card commits to, without
the manifest. Each proof carries the lookup's status for the work and says which of the work's
digests its claim is about:

- ``exact`` (about ``sha256``): the manifest line of an entry whose ``sha256`` is the work's,
  its index and its RFC 9162 inclusion proof. The verifier recomputes the leaf hash from the
  line, so the line (and the digest in it) is what the publisher signed.
- ``normalized`` (about ``textSha256``): the same for an entry whose ``textSha256`` (the
  ``norm-text-v1`` digest) is the work's: a re-encoded or re-wrapped copy of its text.
- ``near-duplicate`` and ``contained`` (about ``sha256``, which names the work): the best
  matching entry, proven present as above. That the entry is an edited copy of the work, or
  holds part of it, is the lookup's finding from the fingerprint index; the proof establishes
  only that this entry is in the signed manifest.
- ``absent`` (about ``sha256``): the manifest is ordered by ``(sha256, id)``, so a digest that
  no entry has falls between two *adjacent* leaves ``i`` and ``i + 1`` with
  ``left.sha256 < work < right.sha256``. The proof holds both lines with their inclusion
  proofs; adjacency is proven by the indexes. At the ends only one leaf is needed (index 0
  with ``work < sha256``, or index ``size - 1`` with ``sha256 < work``), and an empty manifest
  (size 0, root = SHA-256 of nothing) needs none. Absence covers exact bytes only.

An absence proof rests on the manifest really being in ``(sha256, id)`` order, which the
Merkle root does not show: the card's signer could sign a mis-ordered manifest and so "prove"
the absence of a work it holds. Someone other than the publisher must have checked the order:
an absence claim is accepted only when a trusted auditor (a key other than the publisher
signers') co-signed the card, which auditors do after ``verify --manifest`` has checked the
order, or when a registry receipt for the card is given (:class:`RegistryReceipt`; the
registry checks the order when it takes a card in). Otherwise it is refused
(:class:`UnattestedOrderError`) unless the caller accepts the publisher's word knowingly.

The proof file is the deterministic serialization of its document plus a ``checksum`` over the
rest, and both are checked: a proof altered in any byte fails. The checksum is not what makes a
proof trustworthy (anyone can compute one); it catches the edits that the Merkle checks cannot,
e.g. another digest that the same two leaves also bracket. Proofs of format v1 (``exact`` and
``absent`` only, before statuses were recorded) are still read and verified.

Building proofs for a batch of works reads the manifest once, checks it against the card, keeps
every complete subtree hash (2n hashes), and then answers each work in O(log n).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from provenance import _files, _json, merkle, schema
from provenance._files import atomic_write, read_bytes
from provenance.card import LEAF_FORMAT, MAX_CARD_BYTES, VerifiedCard, unverified_card_document
from provenance.card import verify_card as _verify_card
from provenance.envelope import Envelope
from provenance.errors import (
    DigestMismatchError,
    FormatError,
    InputError,
    LocalIOError,
    VerificationError,
)
from provenance.manifest import ManifestEntry, ManifestSummary, decode_entry, entry_bytes
from provenance.manifest import iter_manifest as _iter_manifest
from provenance.merkle import ProofError
from provenance.trust import MAX_TRUST_STORE_BYTES, TrustStore

PROOF_TYPE = "https://provenance.dev/proof/v2"
PROOF_SCHEMA = "proof.v2.json"
PROOF_TYPE_V1 = "https://provenance.dev/proof/v1"
PROOF_SCHEMA_V1 = "proof.v1.json"
MAX_PROOF_BYTES = 1024 * 1024
_HASH = merkle.HASH_SIZE

Claim = Literal["present", "absent"]
Status = Literal["exact", "normalized", "near-duplicate", "contained", "absent"]
"""The lookup's status of a work (the same names as :data:`provenance.lookup.Status`)."""
STATUSES: tuple[Status, ...] = ("exact", "normalized", "near-duplicate", "contained", "absent")
DigestName = Literal["sha256", "textSha256"]

__all__ = [
    "STATUSES",
    "CardCommitment",
    "CardRef",
    "Claim",
    "DigestName",
    "MerkleIndex",
    "OrderBasis",
    "Proof",
    "ProofBuilder",
    "ProofError",
    "ProofLeaf",
    "ProofRequest",
    "RegistryReceipt",
    "Status",
    "UnattestedOrderError",
    "VerifiedProof",
    "WorkDigests",
    "check_proof",
    "claim_of",
    "digest_of",
    "load_card",
    "locate",
    "order_basis",
    "proof_file_names",
    "read_proof",
    "verify_leaf",
    "verify_proof",
    "write_proofs",
]


class UnattestedOrderError(VerificationError):
    """An absence claim that rests on the publisher's word alone: no one else vouches that the
    manifest is in the order the claim needs."""


def claim_of(status: Status) -> Claim:
    """Return what a proof for a work of ``status`` claims: ``absent`` or ``present``."""
    return "absent" if status == "absent" else "present"


def digest_of(status: Status) -> DigestName:
    """Return which digest of the work a proof for ``status`` is about."""
    return "textSha256" if status == "normalized" else "sha256"


@dataclass(frozen=True, slots=True)
class WorkDigests:
    """The digests of a work that a proof can be about."""

    sha256: str
    text_sha256: str | None = None
    """Its norm-text-v1 digest, when it is text."""

    @classmethod
    def of(cls, data: bytes) -> WorkDigests:
        """Return the digests of a work's bytes, as ``provenance lookup`` computes them
        (text is strict UTF-8 without NUL bytes)."""
        from provenance.normtext import norm_text_sha256

        text = None if b"\x00" in data else norm_text_sha256(data)
        return cls(hashlib.sha256(data).hexdigest(), text)

    def get(self, name: DigestName) -> str | None:
        """Return the digest called ``name`` (None if the work has none)."""
        return self.sha256 if name == "sha256" else self.text_sha256


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
    """A proof about the work with digest ``work``: present in or absent from a manifest.

    ``claim`` is what the leaves prove; ``status`` the lookup's status for the work (by
    default ``exact`` for a presence and ``absent`` for an absence claim); ``work_text_sha256``
    the work's norm-text-v1 digest (needed for ``normalized``). ``version`` 1 is the format
    before statuses were recorded (read, and written back byte for byte, never made anew).

    ``Proof.from_json(p.to_json()) == p`` for every proof built here.
    """

    claim: Claim
    work: str
    card: CardCommitment
    leaves: tuple[ProofLeaf, ...]
    status: Status | None = None
    work_text_sha256: str | None = None
    version: int = 2

    @property
    def work_status(self) -> Status:
        """The lookup's status (``status``, or the one ``claim`` implies)."""
        if self.status is not None:
            return self.status
        return "exact" if self.claim == "present" else "absent"

    @property
    def digest(self) -> DigestName:
        """Which digest of the work the claim is about."""
        return digest_of(self.work_status)

    def _body(self) -> dict[str, Any]:
        if self.version == 1:
            if self.work_status not in ("exact", "absent") or self.work_text_sha256:
                raise ValueError("proof format v1 holds only exact and absent proofs")
            return {
                "type": PROOF_TYPE_V1,
                "hashAlgorithm": "sha256",
                "leafFormat": LEAF_FORMAT,
                "card": self.card.to_dict(),
                "work": {"sha256": self.work},
                "claim": self.claim,
                "leaves": [leaf.to_dict() for leaf in self.leaves],
            }
        work: dict[str, str] = {"sha256": self.work}
        if self.work_text_sha256 is not None:
            work["textSha256"] = self.work_text_sha256
        return {
            "type": PROOF_TYPE,
            "hashAlgorithm": "sha256",
            "leafFormat": LEAF_FORMAT,
            "card": self.card.to_dict(),
            "work": work,
            "status": self.work_status,
            "claim": self.claim,
            "digest": self.digest,
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

        Both formats are read: v2 (this one) and v1 (``exact`` and ``absent`` proofs written
        before statuses were recorded), each against its own schema.

        Raises:
            ProofError: malformed JSON, an unknown format, a schema violation, not the
                canonical serialization, or a checksum mismatch. (A damaged proof is a failed
                proof: exit 1, not 2.)
        """
        try:
            document = _json.loads_object(unverified_data, what=what)
            kind = document.get("type")
            if kind == PROOF_TYPE_V1:
                version = 1
                schema.validate(document, PROOF_SCHEMA_V1, what=what)
            elif kind == PROOF_TYPE or not isinstance(kind, str):
                version = 2
                schema.validate(document, PROOF_SCHEMA, what=what)
            else:
                raise FormatError(
                    f"{what}: proof format {kind!r} is not one this version of provenance reads"
                    f" ({PROOF_TYPE} or {PROOF_TYPE_V1})"
                )
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
            status=document.get("status"),
            work_text_sha256=document["work"].get("textSha256"),
            version=version,
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
class OrderBasis:
    """Who vouches that the manifest is in ``(sha256, id)`` order, which absence rests on."""

    auditors: tuple[str, ...] = ()
    """keyids of trusted auditors, other than the publisher signers, who co-signed the card."""
    registries: tuple[str, ...] = ()
    """Registries whose receipt for the card was given."""
    names: Mapping[str, str] = field(default_factory=dict)
    """Names from the trust store, by keyid."""

    @property
    def publisher_only(self) -> bool:
        """True when only the publisher's word stands behind the order."""
        return not self.auditors and not self.registries

    def describe(self) -> str:
        """Return a phrase naming who checked the manifest's order."""
        if self.publisher_only:
            return (
                "on the publisher's word alone (no independent auditor co-signed the card and no"
                " registry receipt was given; accepted as asked)"
            )
        who = [f"auditor {self.names.get(k, 'unnamed')} ({k[:16]})" for k in self.auditors]
        who += [f"registry {name}" for name in self.registries]
        return "the manifest's order was checked by " + ", ".join(who)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form ``{"publisherOnly", "auditors", "registries"}``."""
        return {
            "publisherOnly": self.publisher_only,
            "auditors": [{"keyid": k, "name": self.names.get(k, "unnamed")} for k in self.auditors],
            "registries": list(self.registries),
        }


@dataclass(frozen=True, slots=True)
class VerifiedProof:
    """A proof that verified: the claim holds for the manifest the card commits to."""

    claim: Claim
    work: str
    card: CardCommitment
    leaves: tuple[tuple[int, ManifestEntry], ...]
    """(index, entry) of each leaf, in manifest order."""
    status: Status = "exact"
    work_text_sha256: str | None = None
    version: int = 2
    order: OrderBasis | None = None
    """For an absence claim checked by :func:`check_proof`: who vouches for the order."""

    @property
    def digest(self) -> DigestName:
        """Which digest of the work the claim is about (``sha256`` or ``textSha256``)."""
        return digest_of(self.status)

    @property
    def value(self) -> str:
        """The value of that digest."""
        value = self.work_text_sha256 if self.digest == "textSha256" else self.work
        assert value is not None  # verify_proof checked it
        return value

    def describe(self) -> str:
        """Return one human-readable line stating what was proven."""
        size = self.card.tree_size
        if self.claim == "present":
            index, entry = self.leaves[0]
            where = f"entry {entry.id!r} (leaf {index} of {size})"
            if self.status == "exact":
                return f"work {self.work} is PRESENT byte for byte (sha256): {where}"
            if self.status == "normalized":
                return (
                    f"work {self.work} is PRESENT as normalized text (textSha256"
                    f" {self.work_text_sha256}): {where}"
                )
            return (
                f"{where}, sha256 {entry.sha256}, is PRESENT; the lookup found it a"
                f" {self.status} match of work {self.work} (that similarity is the lookup's"
                " finding from the fingerprint index, not part of this proof)"
            )
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
        line = (
            f"work {self.work} is ABSENT from the {size}-entry manifest (no entry has its"
            f" sha256; normalized and edited copies are not covered): {where}"
        )
        if self.order is not None:
            line += f"; {self.order.describe()}"
        return line

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form reported by ``proof verify``."""
        leaves = []
        for i, e in self.leaves:
            leaf: dict[str, Any] = {"index": i, "id": e.id, "sha256": e.sha256}
            if e.textSha256 is not None:
                leaf["textSha256"] = e.textSha256
            leaves.append(leaf)
        work: dict[str, str] = {"sha256": self.work}
        if self.work_text_sha256 is not None:
            work["textSha256"] = self.work_text_sha256
        document: dict[str, Any] = {
            "ok": True,
            "claim": self.claim,
            "status": self.status,
            "digest": self.digest,
            "value": self.value,
            "work": self.work,
            "workDigests": work,
            "format": self.version,
            "card": self.card.to_dict(),
            "leaves": leaves,
            "detail": self.describe(),
        }
        if self.order is not None:
            document["order"] = self.order.to_dict()
        return document

    def check_work(self, work: WorkDigests, *, what: str) -> None:
        """Check that the proof is about the work with digests ``work`` (named ``what``).

        The digest the claim is about is compared with the proven entry's (``exact``,
        ``normalized``) or with the work the proof was made for (the other statuses).

        Raises:
            ProofError: it is not.
        """
        digest = self.digest
        mine = work.get(digest)
        if self.claim == "present" and self.status in ("exact", "normalized"):
            index, entry = self.leaves[0]
            proven = entry.sha256 if digest == "sha256" else entry.textSha256
            if mine is None:
                raise ProofError(
                    f"{what} has no {digest} (it is not UTF-8 text), so it cannot be the"
                    f" normalized text of entry {entry.id!r}"
                )
            if mine != proven:
                raise ProofError(
                    f"the proof is about work {self.value} ({digest}), not {what}"
                    f" ({digest} {mine}); the proven entry {entry.id!r} (leaf {index}) has"
                    f" {digest} {proven}"
                )
            return
        if work.sha256 != self.work:
            raise ProofError(
                f"the proof is about work {self.work}, not {what} (sha256 {work.sha256})"
            )


def verify_proof(proof: Proof, card: CardCommitment) -> VerifiedProof:
    """Check ``proof`` against the commitment of a verified card, without the manifest.

    This is the Merkle part only; :func:`check_proof` adds the rule for absence claims.

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
    status = proof.work_status
    if proof.claim != claim_of(status):
        raise ProofError(f"a proof for status {status!r} cannot claim {proof.claim!r}")
    if status == "normalized" and proof.work_text_sha256 is None:
        raise ProofError("a proof of a normalized copy needs the work's textSha256")
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
    _check_claim(proof, size, root, leaves)
    return VerifiedProof(
        proof.claim,
        proof.work,
        card,
        tuple(leaves),
        status,
        proof.work_text_sha256,
        proof.version,
    )


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
    proof: Proof, size: int, root: bytes, leaves: list[tuple[int, ManifestEntry]]
) -> None:
    """Check that verified ``leaves`` support the proof's claim (lowercase hex compares as the
    bytes do, so string order is the manifest order)."""
    work = proof.work
    if proof.claim == "present":
        if len(leaves) != 1:
            raise ProofError(f"a presence proof needs exactly one leaf, not {len(leaves)}")
        index, entry = leaves[0]
        if proof.work_status == "exact" and entry.sha256 != work:
            raise ProofError(f"leaf {index} has sha256 {entry.sha256}, not the work's {work}")
        if proof.work_status == "normalized" and entry.textSha256 != proof.work_text_sha256:
            raise ProofError(
                f"leaf {index} has textSha256 {entry.textSha256}, not the work's"
                f" {proof.work_text_sha256}"
            )
        # near-duplicate and contained: the leaf is proven present; the similarity is the
        # lookup's finding and no digest of the work is expected in it.
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
# Pure core: who vouches for the order an absence proof rests on


class RegistryReceipt(Protocol):
    """A registry's receipt for a card, already verified against the registry's trusted key.

    The registry checks a manifest's order when it takes a card in, so its receipt for the
    card is a basis for absence claims (:func:`provenance.logclient.registered_card` verifies
    one and returns this).
    """

    @property
    def registry(self) -> str:
        """The registry's name, as the trust store gives it."""
        ...

    @property
    def statement_sha256(self) -> str:
        """SHA-256 of the card payload (in-toto Statement bytes) the receipt is for."""
        ...


def order_basis(
    card: CardRef,
    *,
    receipts: Sequence[RegistryReceipt] = (),
    accept_publisher_order: bool = False,
) -> OrderBasis:
    """Return who vouches that the card's manifest is in ``(sha256, id)`` order.

    An auditor co-signature counts only if the auditor's key is not one of the keys that
    signed as dataset publisher (one key holding both roles is the publisher vouching for
    itself). A receipt counts only if it is for this card.

    Raises:
        DigestMismatchError: a receipt is for another card.
        UnattestedOrderError: no independent auditor co-signed and no receipt was given, and
            ``accept_publisher_order`` is false.
    """
    publishers = set(card.card.publishers)
    auditors = tuple(sorted(set(card.card.auditors) - publishers))
    for receipt in receipts:
        if receipt.statement_sha256 != card.commitment.statement_sha256:
            raise DigestMismatchError(
                f"the receipt of registry {receipt.registry} is for another card (statement"
                f" sha256 {receipt.statement_sha256}, this card's is"
                f" {card.commitment.statement_sha256})"
            )
    basis = OrderBasis(auditors, tuple(r.registry for r in receipts), card.names)
    if basis.publisher_only and not accept_publisher_order:
        own = sorted(set(card.card.auditors) & publishers)
        note = (
            f" (the auditor signature by {', '.join(k[:16] for k in own)} is by a key that"
            " signed as publisher, so it does not count)"
            if own
            else ""
        )
        raise UnattestedOrderError(
            "the absence rests on the publisher's word alone: it holds only if the manifest is"
            " in (sha256, id) order, and no trusted auditor other than the publisher"
            f" co-signed the card{note} and no registry receipt for it was given"
        )
    return basis


def check_proof(
    unverified_data: bytes,
    card: CardRef,
    *,
    what: str,
    work: WorkDigests | None = None,
    work_label: str = "the work given",
    receipts: Sequence[RegistryReceipt] = (),
    accept_publisher_order: bool = False,
) -> VerifiedProof:
    """Parse and verify a proof file's bytes against a verified card: the Merkle claim, the
    work (if given), and for an absence claim who vouches for the manifest's order.

    Returns:
        The verified proof; for an absence claim with :attr:`VerifiedProof.order` set.

    Raises:
        ProofError: the proof is damaged, for another card, does not verify, or is about
            another work.
        UnattestedOrderError, DigestMismatchError: see :func:`order_basis`.
    """
    proof = Proof.from_json(unverified_data, what=what)
    verified = verify_proof(proof, card.commitment)
    if work is not None:
        verified.check_work(work, what=work_label)
    if verified.claim == "absent":
        basis = order_basis(card, receipts=receipts, accept_publisher_order=accept_publisher_order)
        verified = replace(verified, order=basis)
    return verified


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
    names: Mapping[str, str] = field(default_factory=dict)
    """Trust-store names of the keys that signed, by keyid."""


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
    names = {k: trust.name_of(k) for k in (*card.publishers, *card.auditors)}
    return CardRef(card, CardCommitment.of(card, statement_sha256), names)


class ScannedManifest(Protocol):
    """A manifest as read once (see :func:`provenance.fpindex.scan_manifest`)."""

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
        return cls._checked(
            manifest_path, card, summaries[0].digest, bytes(digests), bytes(leaves), offsets
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
        expected = card.commitment
        if digest != expected.manifest_sha256:
            raise DigestMismatchError(
                f"{manifest_path}: sha256 {digest} is not the manifest the card commits"
                f" to ({expected.manifest_sha256})"
            )
        index = MerkleIndex(leaves)
        root = index.root().hex()
        if index.size != expected.tree_size or root != expected.merkle_root:
            raise DigestMismatchError(
                f"{manifest_path}: {index.size} entries with Merkle root {root};"
                f" the card says {expected.tree_size} with root {expected.merkle_root}"
            )
        return cls(manifest_path, expected, digests, offsets, index)

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
        try:
            with _files.open_input(self._path, kind="manifest file") as handle:
                lines = []
                for i in indexes:
                    start, end = int(self._offsets[i]), int(self._offsets[i + 1])
                    lines.append(os.pread(handle.fileno(), end - start - 1, start))
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
            if len(work) != 64 or work.strip("0123456789abcdef"):
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
    builder: ProofBuilder,
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


def read_proof(path: Path) -> bytes:
    """Return the unverified bytes of the proof file at ``path``.

    Raises:
        InputError: missing, unreadable, or larger than :data:`MAX_PROOF_BYTES`.
    """
    return read_bytes(path, limit=MAX_PROOF_BYTES, what=str(path))
