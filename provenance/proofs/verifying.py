"""Checking a proof against a verified card, without the manifest.

:func:`verify_proof` is the Merkle part (the leaves are in the tree the card commits to and
support the claim); :func:`check_proof` parses a proof file's bytes, verifies them, checks the
work if given, and for an absence claim asks who vouches for the manifest's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from provenance import merkle
from provenance.errors import FormatError
from provenance.manifest import ManifestEntry, decode_entry
from provenance.merkle import ProofError
from provenance.proofs.inputs import CardRef
from provenance.proofs.model import (
    CardCommitment,
    Claim,
    DigestName,
    Proof,
    Status,
    WorkDigests,
    claim_of,
    digest_of,
)
from provenance.proofs.order import OrderBasis, RegistryReceipt, order_basis


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
