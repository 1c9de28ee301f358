"""The proof document: what a proof claims, about which digest of which work, against which card.

Pure: frozen dataclasses with their JSON forms, and the one serialization a proof file may have
(:meth:`Proof.to_json`, read back only byte for byte by :meth:`Proof.from_json`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from provenance import _json, schema
from provenance.card import LEAF_FORMAT, VerifiedCard
from provenance.errors import DigestMismatchError, FormatError
from provenance.merkle import ProofError

PROOF_TYPE = "https://provenance.dev/proof/v2"
PROOF_SCHEMA = "proof.v2.json"
PROOF_TYPE_V1 = "https://provenance.dev/proof/v1"
PROOF_SCHEMA_V1 = "proof.v1.json"
MAX_PROOF_BYTES = 1024 * 1024

Claim = Literal["present", "absent"]
Status = Literal["exact", "normalized", "near-duplicate", "contained", "absent"]
"""The lookup's status of a work (the same names as :data:`provenance.lookup.Status`)."""
STATUSES: tuple[Status, ...] = ("exact", "normalized", "near-duplicate", "contained", "absent")
DigestName = Literal["sha256", "textSha256"]


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
        manifest = card.predicate.manifest
        return cls(statement_sha256, card.manifest_digest, manifest.merkle_root, manifest.entries)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (the proof's ``card`` member)."""
        return {
            "statementSha256": self.statement_sha256,
            "manifestSha256": self.manifest_sha256,
            "merkleRoot": self.merkle_root,
            "treeSize": self.tree_size,
        }

    def check_manifest(self, what: object, digest: str, entries: int, root: str) -> None:
        """Check a manifest (named ``what``), its file digest, entry count and Merkle root (hex),
        against this commitment.

        Raises:
            DigestMismatchError: one of them is not the card's.
        """
        if digest != self.manifest_sha256:
            raise DigestMismatchError(
                f"{what}: sha256 {digest} is not the manifest the card commits"
                f" to ({self.manifest_sha256})"
            )
        if entries != self.tree_size or root != self.merkle_root:
            raise DigestMismatchError(
                f"{what}: {entries} entries with Merkle root {root};"
                f" the card says {self.tree_size} with root {self.merkle_root}"
            )


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
