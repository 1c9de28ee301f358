"""The bridge between our keys (:mod:`provenance.keys`) and TUF's (securesystemslib).

TUF metadata names keys by securesystemslib keyids (SHA-256 of the canonical JSON of the key
dict); everything else in this project names them by the SHA-256 of the DER
SubjectPublicKeyInfo. This module converts both ways and signs TUF metadata with a
:class:`provenance.keys.PrivateKey`, so that no other module needs to know either encoding and the
private key never leaves ``keys.py``'s object.

Only Ed25519 (scheme ``ed25519``, public value raw hex) and ECDSA P-256 (scheme
``ecdsa-sha2-nistp256``, public value SPKI PEM) are bridged; a TUF key of any other type maps to
no keyid of ours and so can never count towards a threshold of trusted keys.
"""

from __future__ import annotations

import base64
import textwrap
from typing import Any

from securesystemslib.signer import Key, SecretsHandler, Signature, Signer, SSlibKey
from securesystemslib.signer._utils import compute_default_keyid

from provenance.errors import KeyFormatError
from provenance.keys import PrivateKey, PublicKey

# DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID 1.3.101.112 }
# BIT STRING (33 bytes) }; the 32 raw key bytes follow.
_ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
_SCHEMES = {"ed25519": ("ed25519", "ed25519"), "ecdsa-p256": ("ecdsa", "ecdsa-sha2-nistp256")}


def _spki_der(pem: str) -> bytes:
    body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
    return base64.b64decode(body)


def tuf_key(public: PublicKey) -> SSlibKey:
    """Return the securesystemslib key for ``public`` (default keyid, default scheme)."""
    keytype, scheme = _SCHEMES[public.algorithm]
    pem = public.to_pem()
    if public.algorithm == "ed25519":
        der = _spki_der(pem)
        assert der.startswith(_ED25519_SPKI_PREFIX) and len(der) == 44
        value = der[len(_ED25519_SPKI_PREFIX) :].hex()
    else:
        value = pem
    keyval = {"public": value}
    return SSlibKey(compute_default_keyid(keytype, scheme, keyval), keytype, scheme, keyval)


def our_key(key: Key) -> PublicKey | None:
    """Return our :class:`PublicKey` for a TUF key, or None if it is of a type we do not bridge.

    The result's ``keyid`` is the SPKI SHA-256 keyid used by trust stores and cards.
    """
    if not isinstance(key, SSlibKey):
        return None
    value = key.keyval.get("public")
    if not isinstance(value, str):
        return None
    try:
        if key.keytype == "ed25519" and key.scheme == "ed25519":
            raw = bytes.fromhex(value)
            if len(raw) != 32:
                return None
            der = base64.b64encode(_ED25519_SPKI_PREFIX + raw).decode("ascii")
            pem = "-----BEGIN PUBLIC KEY-----\n" + "\n".join(textwrap.wrap(der, 64))
            pem += "\n-----END PUBLIC KEY-----\n"
            public = PublicKey.from_pem(pem.encode("ascii"), what=f"TUF key {key.keyid}")
        elif key.keytype == "ecdsa" and key.scheme == "ecdsa-sha2-nistp256":
            public = PublicKey.from_pem(value.encode("ascii"), what=f"TUF key {key.keyid}")
            if public.algorithm != "ecdsa-p256":
                return None
        else:
            return None
    except (KeyFormatError, ValueError):
        return None
    return public


class KeySigner(Signer):
    """Signs TUF metadata with one of our private keys."""

    def __init__(self, key: PrivateKey) -> None:
        self._key = key
        self._public = tuf_key(key.public)

    @property
    def public_key(self) -> Key:
        """The securesystemslib form of the public half."""
        return self._public

    @property
    def keyid(self) -> str:
        """Our (SPKI SHA-256) keyid of the key."""
        return self._key.keyid

    def sign(self, payload: bytes) -> Signature:
        """Return a TUF signature over ``payload`` (hex; ECDSA DER-encoded, as sslib verifies)."""
        return Signature(self._public.keyid, self._key.sign(payload).hex())

    @classmethod
    def from_priv_key_uri(
        cls,
        priv_key_uri: str,
        public_key: Key,
        secrets_handler: SecretsHandler | None = None,
    ) -> Signer:
        """Not supported: build a KeySigner from a loaded :class:`PrivateKey` instead."""
        raise ValueError("KeySigner is built from a provenance PrivateKey, not from a URI")


def keyids_of(keys: dict[str, Any]) -> dict[str, str]:
    """Map TUF keyids to our keyids for the bridgeable keys in a root's ``keys`` mapping."""
    result: dict[str, str] = {}
    for tuf_keyid, key in keys.items():
        public = our_key(key)
        if public is not None:
            result[tuf_keyid] = public.keyid
    return result
