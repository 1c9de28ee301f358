"""Keys: generate, load, identify, sign and verify. The only module that imports cryptography.

Two algorithms are supported: Ed25519 (the default) and ECDSA over P-256 with SHA-256 (for
interoperability with Sigstore and model_signing). Any other key type is refused on load, so an
envelope can never steer verification to a weaker algorithm.

A key's id is the lowercase hex SHA-256 of its DER SubjectPublicKeyInfo. It is computed from the
key, never taken from a document.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from provenance._files import atomic_write
from provenance.errors import (
    KeyFormatError,
    LocalIOError,
    OutputExistsError,
    PassphraseNeededError,
    SignatureError,
)

Algorithm = Literal["ed25519", "ecdsa-p256"]
ALGORITHMS: tuple[Algorithm, ...] = ("ed25519", "ecdsa-p256")

_PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
_PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey

MAX_KEY_FILE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A trusted-or-not public key; ``keyid`` is derived from the key itself."""

    algorithm: Algorithm
    keyid: str
    _key: _PublicKey

    @classmethod
    def from_pem(cls, pem: bytes, *, what: str) -> PublicKey:
        """Load an SPKI PEM public key.

        Raises:
            KeyFormatError: not a PEM public key of a supported algorithm.
        """
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyFormatError(f"{what}: not a PEM public key ({exc})") from None
        return cls._wrap(key, what=what)

    @classmethod
    def _wrap(cls, key: object, *, what: str) -> PublicKey:
        algorithm = _algorithm_of(key, what=what)
        assert isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey)
        der = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(algorithm, hashlib.sha256(der).hexdigest(), key)

    @classmethod
    def from_ed25519_bytes(cls, raw: bytes, *, what: str) -> PublicKey:
        """Load an Ed25519 public key from its 32-byte RFC 8032 encoding.

        Raises:
            KeyFormatError: not 32 bytes, or not a valid encoding.
        """
        try:
            key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyFormatError(f"{what}: not an Ed25519 public key ({exc})") from None
        return cls._wrap(key, what=what)

    def ed25519_bytes(self) -> bytes:
        """Return the 32-byte RFC 8032 encoding of an Ed25519 key.

        Raises:
            KeyFormatError: the key is not Ed25519.
        """
        if not isinstance(self._key, ed25519.Ed25519PublicKey):
            raise KeyFormatError(f"key {self.keyid} is {self.algorithm}, not Ed25519")
        return self._key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def to_pem(self) -> str:
        """Return the SPKI PEM text of this key."""
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def verify(self, signature: bytes, message: bytes) -> None:
        """Check ``signature`` over ``message``.

        ECDSA signatures are accepted DER-encoded or as raw ``r || s`` (64 bytes), the form the
        DSSE specification's own test vector uses.

        Raises:
            SignatureError: the signature does not verify.
        """
        try:
            if isinstance(self._key, ed25519.Ed25519PublicKey):
                self._key.verify(signature, message)
            else:
                if len(signature) == 64:
                    r = int.from_bytes(signature[:32], "big")
                    s = int.from_bytes(signature[32:], "big")
                    signature = encode_dss_signature(r, s)
                self._key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            raise SignatureError(f"signature does not verify with key {self.keyid}") from None


@dataclass(frozen=True, slots=True)
class PrivateKey:
    """A signing key. ``public`` is its public half."""

    algorithm: Algorithm
    public: PublicKey
    _key: _PrivateKey

    @property
    def keyid(self) -> str:
        """The keyid of the public half."""
        return self.public.keyid

    @classmethod
    def generate(cls, algorithm: Algorithm = "ed25519") -> PrivateKey:
        """Return a fresh key of ``algorithm``."""
        key: _PrivateKey
        if algorithm == "ed25519":
            key = ed25519.Ed25519PrivateKey.generate()
        elif algorithm == "ecdsa-p256":
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            raise ValueError(f"unsupported algorithm {algorithm!r}")
        return cls(algorithm, PublicKey._wrap(key.public_key(), what="generated key"), key)

    @classmethod
    def from_pem(cls, pem: bytes, *, passphrase: bytes | None, what: str) -> PrivateKey:
        """Load a PKCS#8 PEM private key, decrypting it with ``passphrase`` if given.

        Raises:
            PassphraseNeededError: encrypted, and no passphrase was given.
            KeyFormatError: not a supported private key, or the
                passphrase is wrong.
        """
        try:
            key = serialization.load_pem_private_key(pem, password=passphrase)
        except TypeError:
            if passphrase is None:
                raise PassphraseNeededError(
                    f"{what}: the key is encrypted; give its passphrase"
                ) from None
            raise KeyFormatError(
                f"{what}: the key is not encrypted but a passphrase was given"
            ) from None
        except (ValueError, UnsupportedAlgorithm):
            if passphrase is not None:
                raise KeyFormatError(f"{what}: wrong passphrase or not a PEM private key") from None
            raise KeyFormatError(f"{what}: not a PEM private key") from None
        algorithm = _algorithm_of(key.public_key(), what=what)
        assert isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey)
        return cls(algorithm, PublicKey._wrap(key.public_key(), what=what), key)

    def to_pem(self, *, passphrase: bytes | None = None) -> bytes:
        """Return PKCS#8 PEM, encrypted with ``passphrase`` when given."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def sign(self, message: bytes) -> bytes:
        """Return a signature over ``message`` (ECDSA signatures are DER-encoded)."""
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(message)
        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))


def _algorithm_of(key: object, *, what: str) -> Algorithm:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return "ecdsa-p256"
        raise KeyFormatError(f"{what}: EC curve {key.curve.name} is not supported (use P-256)")
    raise KeyFormatError(
        f"{what}: {type(key).__name__.lstrip('_')} keys are not supported (use Ed25519 or P-256)"
    )


def _read_key_file(path: Path, *, private: bool = False) -> bytes:
    try:
        with open(path, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            data = handle.read(MAX_KEY_FILE_BYTES + 1)
            if private and b"PRIVATE KEY" not in data and b"PUBLIC KEY" in data:
                # A public key is meant to be readable by all: the mode is not what is wrong.
                private_path = path.with_suffix("") if path.suffix == ".pub" else None
                raise KeyFormatError(
                    f"{path}: is a public key; signing needs the private key"
                    + (f" ({private_path})" if private_path else "")
                )
            if private and stat.S_IMODE(mode) & 0o077:
                # As ssh does: a signing key others can read may already be someone else's.
                raise KeyFormatError(
                    f"{path}: private key is readable by other users (mode"
                    f" {stat.S_IMODE(mode):04o}); run 'chmod 600 {path}'"
                )
    except FileNotFoundError:
        raise KeyFormatError(f"{path}: no such key file") from None
    except IsADirectoryError:
        raise KeyFormatError(f"{path}: is a directory, not a key file") from None
    except PermissionError:
        raise KeyFormatError(f"{path}: permission denied") from None
    except OSError as exc:
        raise LocalIOError(f"{path}: cannot read key file: {exc.strerror}") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFormatError(f"{path}: larger than {MAX_KEY_FILE_BYTES} bytes, not a key file")
    return data


def load_private_key(path: Path, *, passphrase: bytes | None = None) -> PrivateKey:
    """Read a private key file, which only its owner may be able to read (mode 0600 or stricter).

    Raises:
        KeyFormatError: missing, unreadable, readable by group or others, malformed, or the
            passphrase is wrong.
        LocalIOError: an I/O error other than a missing or forbidden file.
    """
    return PrivateKey.from_pem(
        _read_key_file(path, private=True), passphrase=passphrase, what=str(path)
    )


def load_public_key(path: Path) -> PublicKey:
    """Read a public key file (SPKI PEM). A private key file is accepted for its public half.

    Raises:
        KeyFormatError: missing, unreadable or malformed.
    """
    data = _read_key_file(path)
    if b"PRIVATE KEY" in data:
        raise KeyFormatError(f"{path}: is a private key; give the public key ({path}.pub)")
    return PublicKey.from_pem(data, what=str(path))


def write_key_pair(
    key: PrivateKey, path: Path, *, passphrase: bytes | None = None, force: bool = False
) -> Path:
    """Write ``key`` to ``path`` (mode 0600) and its public half to ``path.pub``.

    Returns:
        The path of the public key file.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is not set.
        LocalIOError: the files cannot be written.
    """
    public_path = path.with_name(path.name + ".pub")
    if not force:
        for existing in (path, public_path):
            if os.path.lexists(existing):
                raise OutputExistsError(f"{existing}: already exists")
    atomic_write(path, key.to_pem(passphrase=passphrase), mode=stat.S_IRUSR | stat.S_IWUSR)
    atomic_write(public_path, key.public.to_pem().encode("ascii"), mode=0o644)
    return public_path


def generate_key_pair(
    path: Path,
    *,
    algorithm: Algorithm = "ed25519",
    passphrase: bytes | None = None,
    force: bool = False,
) -> tuple[PrivateKey, Path]:
    """Generate a private key and write it to ``path`` and its public half to ``path.pub``.

    Returns:
        The key, and the path of the public key file.

    Raises:
        OutputExistsError: a file exists and ``force`` is not set (nothing is written).
        LocalIOError: the files cannot be written.
    """
    key = PrivateKey.generate(algorithm)
    return key, write_key_pair(key, path, passphrase=passphrase, force=force)
