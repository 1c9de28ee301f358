"""DSSE v1 envelopes: PAE, signing, and verification against a set of trusted keys.

Signatures cover ``PAE(payloadType, payload)``. Verification returns a :class:`VerifiedPayload`
holding the exact bytes that were verified; callers parse those bytes and nothing else (the
envelope is never re-read after verification). A signature's ``keyid`` is a hint: every trusted
key is tried, and a threshold counts unique trusted keys, never signatures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from provenance import _json
from provenance.errors import FormatError, SignatureError
from provenance.keys import PrivateKey, PublicKey

MAX_ENVELOPE_BYTES = 64 * 1024 * 1024
MAX_SIGNATURES = 64


def pae(payload_type: str, payload: bytes) -> bytes:
    """Return the DSSE v1 Pre-Authentication Encoding of ``payload_type`` and ``payload``."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature of an envelope; ``keyid`` is an unauthenticated hint."""

    keyid: str
    sig: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    """A DSSE envelope. Build it with :func:`sign_envelope` or :meth:`from_json`."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    @classmethod
    def from_dict(cls, data: Any, *, what: str) -> Envelope:
        """Parse an envelope from already-loaded JSON (unknown fields are ignored, as DSSE asks).

        Raises:
            FormatError: a required field is missing or of the wrong type, or base64 is invalid.
        """
        if not isinstance(data, dict):
            raise FormatError(f"{what}: a DSSE envelope must be a JSON object")
        payload_type = data.get("payloadType")
        payload = data.get("payload")
        signatures = data.get("signatures")
        if not isinstance(payload_type, str):
            raise FormatError(f"{what}: envelope field 'payloadType' is missing or not a string")
        if not isinstance(payload, str):
            raise FormatError(f"{what}: envelope field 'payload' is missing or not a string")
        if not isinstance(signatures, list):
            raise FormatError(f"{what}: envelope field 'signatures' is missing or not a list")
        if len(signatures) > MAX_SIGNATURES:
            raise FormatError(f"{what}: more than {MAX_SIGNATURES} signatures")
        parsed: list[Signature] = []
        for index, item in enumerate(signatures):
            if not isinstance(item, dict) or not isinstance(item.get("sig"), str):
                raise FormatError(f"{what}: signature {index} has no 'sig' string")
            keyid = item.get("keyid", "")
            if not isinstance(keyid, str):
                raise FormatError(f"{what}: signature {index} has a non-string 'keyid'")
            sig = _json.b64decode(item["sig"], what=f"{what}: signature {index}")
            parsed.append(Signature(keyid, sig))
        return cls(payload_type, _json.b64decode(payload, what=f"{what}: payload"), tuple(parsed))

    @classmethod
    def from_json(cls, data: bytes, *, what: str) -> Envelope:
        """Parse envelope bytes (strict JSON, size-bounded).

        Raises:
            FormatError: malformed JSON or envelope.
        """
        if len(data) > MAX_ENVELOPE_BYTES:
            raise FormatError(f"{what}: envelope larger than {MAX_ENVELOPE_BYTES} bytes")
        return cls.from_dict(_json.loads(data, what=what), what=what)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (standard base64 with padding)."""
        return {
            "payloadType": self.payload_type,
            "payload": _json.b64encode(self.payload),
            "signatures": [
                {"keyid": s.keyid, "sig": _json.b64encode(s.sig)} for s in self.signatures
            ],
        }

    def to_json(self) -> bytes:
        """Return deterministic, human-readable JSON bytes."""
        return _json.pretty(self.to_dict())


@dataclass(frozen=True, slots=True)
class VerifiedPayload:
    """The outcome of a successful verification: the verified bytes and who signed them."""

    payload_type: str
    payload: bytes
    signers: tuple[str, ...]
    """keyids of the unique trusted keys whose signatures verified, sorted."""


def sign_envelope(payload_type: str, payload: bytes, keys: Iterable[PrivateKey]) -> Envelope:
    """Return an envelope over ``payload`` signed by each of ``keys``.

    Raises:
        ValueError: ``keys`` is empty.
    """
    envelope = Envelope(payload_type, payload, ())
    for key in keys:
        envelope = add_signature(envelope, key)
    if not envelope.signatures:
        raise ValueError("at least one key is needed to sign")
    return envelope


def add_signature(envelope: Envelope, key: PrivateKey) -> Envelope:
    """Return ``envelope`` with a signature by ``key`` added (co-signing).

    A key that already signed is not added twice: its old signature is replaced.
    """
    signature = Signature(key.keyid, key.sign(pae(envelope.payload_type, envelope.payload)))
    others = tuple(s for s in envelope.signatures if s.keyid != key.keyid)
    return Envelope(envelope.payload_type, envelope.payload, (*others, signature))


def verified_signers(envelope: Envelope, keys: Mapping[str, PublicKey]) -> tuple[str, ...]:
    """Return the sorted keyids of the keys in ``keys`` that signed ``envelope``.

    Each key counts once however many signatures it made. The envelope's keyids only choose the
    order in which keys are tried.
    """
    message = pae(envelope.payload_type, envelope.payload)
    signed: set[str] = set()
    for signature in envelope.signatures:
        if not signature.sig:
            continue
        hinted = [k for k in keys.values() if k.keyid == signature.keyid]
        for key in [*hinted, *(k for k in keys.values() if k.keyid != signature.keyid)]:
            if key.keyid in signed:
                continue
            try:
                key.verify(signature.sig, message)
            except SignatureError:
                continue
            signed.add(key.keyid)
            break
    return tuple(sorted(signed))


def verify_envelope(
    envelope: Envelope,
    keys: Mapping[str, PublicKey],
    *,
    payload_type: str,
    threshold: int = 1,
) -> VerifiedPayload:
    """Verify that at least ``threshold`` unique keys of ``keys`` signed ``envelope``.

    Returns:
        The verified payload bytes, its type and the signing keyids; parse only these.

    Raises:
        ValueError: ``keys`` is empty or ``threshold`` is below 1 (vacuous trust is refused).
        SignatureError: fewer than ``threshold`` of ``keys`` signed, or the payload type is not
            ``payload_type`` (checked after the signatures, since it is covered by them).
    """
    if not keys:
        raise ValueError("refusing to verify against an empty set of keys")
    if threshold < 1:
        raise ValueError("threshold must be at least 1")
    if not envelope.signatures:
        raise SignatureError("the envelope has no signatures")
    signers = verified_signers(envelope, keys)
    if len(signers) < threshold:
        raise SignatureError(
            f"signed by {len(signers)} of the {threshold} trusted key(s) required"
            f" ({len(envelope.signatures)} signature(s) present, {len(keys)} key(s) trusted)"
        )
    if envelope.payload_type != payload_type:
        raise SignatureError(
            f"payload type is {envelope.payload_type!r}, expected {payload_type!r}"
        )
    return VerifiedPayload(envelope.payload_type, envelope.payload, signers)
