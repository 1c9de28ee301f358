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

The package's modules: :mod:`~provenance.proofs.model` (the proof document and its one
serialization), :mod:`~provenance.proofs.verifying` (checking a proof against a card),
:mod:`~provenance.proofs.order` (who vouches for the order an absence rests on),
:mod:`~provenance.proofs.tree` (finding a digest, fast audit paths),
:mod:`~provenance.proofs.reading` (the manifest read once against a card),
:mod:`~provenance.proofs.building` (proofs for many works) and :mod:`~provenance.proofs.inputs`
(the verified card, proof files).
"""

from __future__ import annotations

from provenance.merkle import ProofError
from provenance.proofs.building import (
    ProofBuilder,
    ProofRequest,
    ScannedManifest,
    proof_file_names,
    write_proofs,
)
from provenance.proofs.inputs import CardRef, load_card, read_proof
from provenance.proofs.model import (
    MAX_PROOF_BYTES,
    PROOF_SCHEMA,
    PROOF_SCHEMA_V1,
    PROOF_TYPE,
    PROOF_TYPE_V1,
    STATUSES,
    CardCommitment,
    Claim,
    DigestName,
    Proof,
    ProofLeaf,
    Status,
    WorkDigests,
    claim_of,
    digest_of,
)
from provenance.proofs.order import (
    OrderBasis,
    RegistryReceipt,
    UnattestedOrderError,
    order_basis,
)
from provenance.proofs.reading import read_against_card
from provenance.proofs.tree import MerkleIndex, locate
from provenance.proofs.verifying import VerifiedProof, check_proof, verify_leaf, verify_proof

__all__ = [
    "MAX_PROOF_BYTES",
    "PROOF_SCHEMA",
    "PROOF_SCHEMA_V1",
    "PROOF_TYPE",
    "PROOF_TYPE_V1",
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
    "ScannedManifest",
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
    "read_against_card",
    "read_proof",
    "verify_leaf",
    "verify_proof",
    "write_proofs",
]
