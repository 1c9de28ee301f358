"""Receipts: ``c2sp.org/tlog-proof@v1`` texts that prove an entry is in a signed tree, offline.

A receipt holds the entry's index, its RFC 9162 inclusion proof and the signed checkpoint,
verbatim; here its ``extra`` line carries the log entry itself (base64), so a receipt verifies
with nothing but the log's public key (:func:`verify_receipt`).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from provenance import merkle
from provenance.errors import VerificationError
from provenance.signednote import (
    NoteVerifier,
    VerifiedCheckpoint,
    canonical_b64decode,
    verify_checkpoint,
)
from provenance.tlog.tiles import HASH_SIZE

RECEIPT_HEADER = "c2sp.org/tlog-proof@v1"
MAX_RECEIPT_BYTES = 2 * 1024 * 1024
MAX_PROOF_HASHES = 63

_DECIMAL = re.compile(r"(?:0|[1-9][0-9]{0,18})\Z")


class ReceiptError(VerificationError):
    """A receipt is malformed (a damaged receipt does not verify)."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """A tlog-proof: an entry's index, its inclusion proof, and the signed checkpoint."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint: bytes
    """The signed checkpoint note, verbatim."""
    extra: bytes | None = None
    """Opaque extra data; here, the log entry itself."""

    def to_bytes(self) -> bytes:
        """Return the receipt text (UTF-8)."""
        lines = [RECEIPT_HEADER]
        if self.extra is not None:
            lines.append(f"extra {base64.b64encode(self.extra).decode('ascii')}")
        lines.append(f"index {self.index}")
        lines.extend(base64.b64encode(item).decode("ascii") for item in self.proof)
        return ("\n".join(lines) + "\n\n").encode("ascii") + self.checkpoint

    @classmethod
    def parse(cls, unverified_data: bytes, *, what: str) -> Receipt:
        """Split a receipt into its parts; nothing in it is verified here.

        Raises:
            ReceiptError: larger than the limit, not a tlog-proof@v1, or a malformed line.
        """
        if len(unverified_data) > MAX_RECEIPT_BYTES:
            raise ReceiptError(f"{what}: larger than {MAX_RECEIPT_BYTES} bytes")
        split = unverified_data.find(b"\n\n")
        if split < 0:
            raise ReceiptError(f"{what}: not a tlog-proof (no blank line before the checkpoint)")
        try:
            lines = unverified_data[:split].decode("ascii").split("\n")
        except UnicodeDecodeError:
            raise ReceiptError(f"{what}: the receipt's header is not ASCII") from None
        if lines[0] != RECEIPT_HEADER:
            raise ReceiptError(f"{what}: not a {RECEIPT_HEADER} receipt")
        position = 1
        extra: bytes | None = None
        if position < len(lines) and lines[position].startswith("extra "):
            extra = canonical_b64decode(lines[position][len("extra ") :])
            if extra is None:
                raise ReceiptError(f"{what}: the extra line is not base64")
            position += 1
        if position >= len(lines) or not lines[position].startswith("index "):
            raise ReceiptError(f"{what}: no index line")
        index_text = lines[position][len("index ") :]
        if not _DECIMAL.match(index_text):
            raise ReceiptError(f"{what}: index {index_text!r} is not a decimal number")
        proof_lines = lines[position + 1 :]
        if len(proof_lines) > MAX_PROOF_HASHES:
            raise ReceiptError(f"{what}: more than {MAX_PROOF_HASHES} proof hashes")
        proof: list[bytes] = []
        for number, line in enumerate(proof_lines, 1):
            digest = canonical_b64decode(line)
            if digest is None or len(digest) != HASH_SIZE:
                raise ReceiptError(f"{what}: proof line {number} is not the base64 of 32 bytes")
            proof.append(digest)
        return cls(int(index_text), tuple(proof), unverified_data[split + 2 :], extra)


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    """A receipt whose checkpoint a trusted log key signed and whose proof holds."""

    index: int
    entry: bytes
    """The logged entry: its leaf hash is in the tree the checkpoint signs."""
    checkpoint: VerifiedCheckpoint


def verify_receipt(
    receipt: Receipt,
    verifiers: Sequence[NoteVerifier],
    *,
    entry: bytes | None = None,
    what: str,
) -> VerifiedReceipt:
    """Verify a receipt offline: the checkpoint, then the inclusion of the entry.

    ``entry`` is the logged entry when known out of band; otherwise the receipt's ``extra``
    line is taken as the entry, which the inclusion proof then authenticates.

    Raises:
        ReceiptError: no entry (no ``extra`` line and none given).
        NoteError, SignatureError: the checkpoint is malformed or not signed by a trusted log
            key named as its origin.
        ProofError: the inclusion proof does not lead from the entry to the checkpoint's root
            (wrong index, size, proof or entry).
    """
    leaf_data = entry if entry is not None else receipt.extra
    if leaf_data is None:
        raise ReceiptError(f"{what}: the receipt has no extra line holding the log entry")
    verified = verify_checkpoint(receipt.checkpoint, verifiers, what=f"{what}: checkpoint")
    checkpoint = verified.checkpoint
    try:
        merkle.verify_inclusion(
            receipt.index,
            checkpoint.size,
            merkle.leaf_hash(leaf_data),
            receipt.proof,
            checkpoint.root,
        )
    except merkle.ProofError as exc:
        raise merkle.ProofError(
            f"{what}: entry {receipt.index} is not in the tree of size {checkpoint.size} that"
            f" the checkpoint signs: {exc}"
        ) from None
    return VerifiedReceipt(receipt.index, leaf_data, verified)


__all__ = [
    "MAX_RECEIPT_BYTES",
    "RECEIPT_HEADER",
    "Receipt",
    "ReceiptError",
    "VerifiedReceipt",
    "verify_receipt",
]
