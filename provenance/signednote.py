"""Signed notes (c2sp.org/signed-note@v1.0.0, Ed25519), checkpoints (tlog-checkpoint@v1.0.0).

A note is UTF-8 text ending in a newline, a blank line, then one or more signature lines
``— <key name> <base64(4-byte key ID || signature)>``. The text is separated from the signatures
by the *last* blank line; no ASCII control character other than newline may appear anywhere.
A key is identified by its name and its key ID, ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``
for Ed25519 (signature type 0x01), and is written as a verifier key ``name+hex(ID)+base64(0x01 ||
public key)``.

Verification (per the spec): signatures whose (name, ID) is not a trusted key are ignored; every
signature of a trusted key must verify, or the whole note is refused; a note that no trusted key
signed is refused. Nothing from the text is used before that.

A checkpoint is a note whose text is an origin line, the tree size in decimal (no leading
zeros), the base64 RFC 6962 root hash, then optional non-empty extension lines. A log's key name
is its origin, and :func:`verify_checkpoint` insists on it: a checkpoint is accepted only when a
trusted key *named as its origin* signed it.

Pure functions; no I/O. Malformed notes and checkpoints raise :class:`NoteError`, a
verification error (a damaged note is a note that does not verify).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from provenance.errors import InputError, KeyFormatError, SignatureError, VerificationError
from provenance.keys import PrivateKey, PublicKey

SIGNATURE_TYPE_ED25519 = 0x01
MAX_NOTE_BYTES = 1024 * 1024
# The spec asks verifiers to accept at least 16 signatures; more than this is refused unread.
MAX_SIGNATURES = 100
MAX_TREE_SIZE = 2**63 - 1
_SIGNATURE_PREFIX = "\u2014 "  # EM DASH, SPACE
_DECIMAL = re.compile(r"(?:0|[1-9][0-9]{0,18})\Z")
_HEX8 = re.compile(r"[0-9a-f]{8}\Z")
_CONTROL = re.compile(rb"[\x00-\x09\x0b-\x1f]")


class NoteError(VerificationError):
    """A signed note or checkpoint is malformed (a damaged note does not verify)."""


def valid_key_name(name: str) -> bool:
    """Whether ``name`` may name a note key: non-empty, no Unicode spaces, no ``+``.

    Control characters are refused too (they may not appear anywhere in a note).
    """
    return (
        bool(name)
        and "+" not in name
        and not any(char.isspace() or ord(char) < 0x20 for char in name)
    )


def key_id(name: str, signature_type: int, public: bytes) -> bytes:
    """Return the 4-byte key ID ``SHA-256(name || 0x0A || type || public)[:4]``."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([signature_type]) + public).digest()[
        :4
    ]


def canonical_b64decode(text: str) -> bytes | None:
    """Return the bytes of ``text`` in standard padded base64, or None if it is not canonical.

    Canonical: only the base64 alphabet with its padding, and re-encoding gives the same text
    (so one value has one spelling in a signed note or a receipt).
    """
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """A trusted Ed25519 note key: its name, its 4-byte key ID and the public key."""

    name: str
    key_id: bytes
    key: PublicKey

    @classmethod
    def ed25519(cls, name: str, key: PublicKey) -> NoteVerifier:
        """Return the verifier for Ed25519 ``key`` under ``name``.

        Raises:
            InputError: ``name`` is not a valid key name.
            KeyFormatError: ``key`` is not Ed25519.
        """
        if not valid_key_name(name):
            raise InputError(
                f"{name!r} cannot name a note key (it must be non-empty, without spaces or '+')"
            )
        return cls(name, key_id(name, SIGNATURE_TYPE_ED25519, key.ed25519_bytes()), key)

    @classmethod
    def from_vkey(cls, text: str, *, what: str) -> NoteVerifier:
        """Parse a verifier key ``name+hex(key ID)+base64(0x01 || 32-byte public key)``.

        Raises:
            FormatError: malformed, another signature type, or a key ID that does not match.
        """
        # The name holds no '+', but the base64 part may: split at the first two only.
        parts = text.split("+", 2)
        if len(parts) != 3 or not valid_key_name(parts[0]) or not _HEX8.match(parts[1]):
            raise KeyFormatError(f"{what}: not a verifier key name+keyid+base64")
        name, id_hex, encoded = parts
        raw = canonical_b64decode(encoded)
        if raw is None or len(raw) != 33:
            raise KeyFormatError(f"{what}: the key part of the verifier key is not valid")
        if raw[0] != SIGNATURE_TYPE_ED25519:
            raise KeyFormatError(
                f"{what}: signature type 0x{raw[0]:02x} is not supported (only Ed25519, 0x01)"
            )
        verifier = cls.ed25519(name, PublicKey.from_ed25519_bytes(raw[1:], what=what))
        if verifier.key_id.hex() != id_hex:
            raise KeyFormatError(
                f"{what}: key ID {id_hex} does not match the key ({verifier.key_id.hex()})"
            )
        return verifier

    def vkey(self) -> str:
        """Return the verifier key string."""
        encoded = base64.b64encode(bytes([SIGNATURE_TYPE_ED25519]) + self.key.ed25519_bytes())
        return f"{self.name}+{self.key_id.hex()}+{encoded.decode('ascii')}"


@dataclass(frozen=True, slots=True)
class NoteSigner:
    """An Ed25519 note signing key under a name."""

    name: str
    key: PrivateKey
    verifier: NoteVerifier

    @classmethod
    def ed25519(cls, name: str, key: PrivateKey) -> NoteSigner:
        """Return the signer for Ed25519 ``key`` under ``name``.

        Raises:
            InputError: ``name`` is not a valid key name.
            KeyFormatError: ``key`` is not Ed25519.
        """
        return cls(name, key, NoteVerifier.ed25519(name, key.public))

    def signature_line(self, text: bytes) -> str:
        """Return the signature line (with its newline) over the note ``text``."""
        signature = base64.b64encode(self.verifier.key_id + self.key.sign(text)).decode("ascii")
        return f"{_SIGNATURE_PREFIX}{self.name} {signature}\n"


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line of a note, not yet verified."""

    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class UnverifiedNote:
    """A note split into its text and signature lines; nothing in it is trusted yet."""

    text: bytes
    signatures: tuple[NoteSignature, ...]

    @classmethod
    def parse(cls, unverified_data: bytes, *, what: str) -> UnverifiedNote:
        """Split a signed note (see the module docstring for the rules checked).

        Raises:
            NoteError: larger than the limit, not UTF-8, a control character, no blank line
                before the signatures, a malformed signature line, or too many signatures.
        """
        if len(unverified_data) > MAX_NOTE_BYTES:
            raise NoteError(f"{what}: a signed note larger than {MAX_NOTE_BYTES} bytes")
        try:
            unverified_data.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError(f"{what}: the note is not valid UTF-8") from None
        if _CONTROL.search(unverified_data):
            raise NoteError(f"{what}: the note holds a control character other than newline")
        split = unverified_data.rfind(b"\n\n")
        if split < 0:
            raise NoteError(f"{what}: not a signed note (no blank line before signatures)")
        text, block = unverified_data[: split + 1], unverified_data[split + 2 :]
        if not block or not block.endswith(b"\n"):
            raise NoteError(f"{what}: the note has no signature lines, or no final newline")
        lines = block[:-1].decode("utf-8").split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise NoteError(f"{what}: more than {MAX_SIGNATURES} signatures")
        signatures: list[NoteSignature] = []
        for number, line in enumerate(lines, 1):
            name, _, encoded = line.removeprefix(_SIGNATURE_PREFIX).partition(" ")
            raw = canonical_b64decode(encoded)
            if (
                not line.startswith(_SIGNATURE_PREFIX)
                or not valid_key_name(name)
                or raw is None
                or len(raw) < 5
            ):
                raise NoteError(f"{what}: signature line {number} is malformed")
            signatures.append(NoteSignature(name, raw[:4], raw[4:]))
        return cls(text, tuple(signatures))


@dataclass(frozen=True, slots=True)
class VerifiedNote:
    """A note that trusted keys signed: its text and the names of those keys."""

    text: str
    signers: tuple[str, ...]
    """Names of the trusted keys whose signatures verified, unique, in signature order."""


def _index(verifiers: Iterable[NoteVerifier]) -> dict[tuple[str, bytes], NoteVerifier]:
    known: dict[tuple[str, bytes], NoteVerifier] = {}
    for verifier in verifiers:
        other = known.setdefault((verifier.name, verifier.key_id), verifier)
        if other.key.keyid != verifier.key.keyid:
            raise InputError(
                f"two trusted keys share the note key name {verifier.name!r} and key ID"
                f" {verifier.key_id.hex()}; remove one"
            )
    return known


def verify_note(
    unverified_data: bytes, verifiers: Sequence[NoteVerifier], *, what: str
) -> VerifiedNote:
    """Verify a signed note against trusted ``verifiers``.

    Returns:
        The note's text and the names of the trusted keys that signed it.

    Raises:
        InputError: ``verifiers`` is empty, or ambiguous (two keys with one name and key ID).
        NoteError: the note is malformed.
        SignatureError: a trusted key's signature does not verify, or no trusted key signed.
    """
    if not verifiers:
        raise InputError(f"{what}: no trusted key to verify the note with")
    known = _index(verifiers)
    note = UnverifiedNote.parse(unverified_data, what=what)
    signers: list[str] = []
    for signature in note.signatures:
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            continue  # an unknown key (a witness, a rotated log key): ignored, as the spec says
        try:
            verifier.key.verify(signature.signature, note.text)
        except SignatureError:
            raise SignatureError(
                f"{what}: the signature by trusted key {signature.name!r}"
                f" ({signature.key_id.hex()}) does not verify"
            ) from None
        if signature.name not in signers:
            signers.append(signature.name)
    if not signers:
        names = ", ".join(sorted({s.name for s in note.signatures}))
        raise SignatureError(f"{what}: not signed by a trusted key (signed by: {names})")
    return VerifiedNote(note.text.decode("utf-8"), tuple(signers))


def sign_note(text: str, signers: Sequence[NoteSigner]) -> bytes:
    """Return the signed note of ``text`` with one signature line per signer.

    Raises:
        ValueError: no signer, or ``text`` is not a valid note text (it must end in a newline
            and hold no control character other than newline).
    """
    if not signers:
        raise ValueError("a note needs at least one signer")
    data = text.encode("utf-8")
    if not data.endswith(b"\n") or _CONTROL.search(data):
        raise ValueError("a note text ends in a newline and holds no other control character")
    return data + b"\n" + "".join(s.signature_line(data) for s in signers).encode("utf-8")


# --- checkpoints --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: the log's origin, the tree size and the RFC 6962 root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or _CONTROL.search(self.origin.encode()):
            raise ValueError("a checkpoint origin is one non-empty line")
        if not 0 <= self.size <= MAX_TREE_SIZE or len(self.root) != 32:
            raise ValueError("a checkpoint has a size in 0..2**63-1 and a 32-byte root")
        if any(not line or "\n" in line for line in self.extensions):
            raise ValueError("extension lines are non-empty single lines")

    def text(self) -> str:
        """Return the note text of this checkpoint."""
        root = base64.b64encode(self.root).decode("ascii")
        lines = (self.origin, str(self.size), root, *self.extensions)
        return "".join(f"{line}\n" for line in lines)

    @classmethod
    def from_text(cls, text: str, *, what: str) -> Checkpoint:
        """Parse a checkpoint's note text (already verified: see :func:`verify_checkpoint`).

        Raises:
            NoteError: fewer than three lines, an empty line, a size that is not canonical
                decimal, or a root that is not the canonical base64 of 32 bytes.
        """
        if not text.endswith("\n"):
            raise NoteError(f"{what}: the checkpoint text does not end in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or any(not line for line in lines):
            raise NoteError(f"{what}: a checkpoint has at least three non-empty lines")
        origin, size_text, root_text, *extensions = lines
        if not _DECIMAL.match(size_text) or int(size_text) > MAX_TREE_SIZE:
            raise NoteError(f"{what}: tree size {size_text!r} is not a decimal number")
        root = canonical_b64decode(root_text)
        if root is None or len(root) != 32:
            raise NoteError(f"{what}: root hash {root_text!r} is not the base64 of 32 bytes")
        return cls(origin, int(size_text), root, tuple(extensions))

    def sign(self, signers: Sequence[NoteSigner]) -> bytes:
        """Return this checkpoint as a note signed by ``signers``."""
        return sign_note(self.text(), signers)


@dataclass(frozen=True, slots=True)
class VerifiedCheckpoint:
    """A checkpoint signed by the trusted key named as its origin."""

    checkpoint: Checkpoint
    note: bytes
    """The signed note, verbatim (evidence that can be shown to others)."""
    signers: tuple[str, ...]


def verify_checkpoint(
    unverified_data: bytes, verifiers: Sequence[NoteVerifier], *, what: str
) -> VerifiedCheckpoint:
    """Verify a signed checkpoint: a trusted key whose name is the origin must have signed it.

    Returns:
        The parsed checkpoint and the note bytes.

    Raises:
        InputError: no verifiers, or ambiguous ones.
        NoteError: the note or the checkpoint text is malformed.
        SignatureError: no trusted key signed, a trusted key's signature fails, or the keys
            that signed are not named as the checkpoint's origin.
    """
    verified = verify_note(unverified_data, verifiers, what=what)
    checkpoint = Checkpoint.from_text(verified.text, what=what)
    if checkpoint.origin not in verified.signers:
        raise SignatureError(
            f"{what}: the checkpoint's origin is {checkpoint.origin!r}, but the trusted key(s)"
            f" that signed it are named {', '.join(repr(s) for s in verified.signers)}"
        )
    return VerifiedCheckpoint(checkpoint, unverified_data, verified.signers)


__all__ = [
    "MAX_NOTE_BYTES",
    "SIGNATURE_TYPE_ED25519",
    "Checkpoint",
    "NoteError",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "UnverifiedNote",
    "VerifiedCheckpoint",
    "VerifiedNote",
    "canonical_b64decode",
    "key_id",
    "sign_note",
    "valid_key_name",
    "verify_checkpoint",
    "verify_note",
]
