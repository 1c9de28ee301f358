"""Keys: generation, file handling, keyids, algorithms refused."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from provenance.errors import InputError, KeyFormatError
from provenance.keys import PrivateKey, PublicKey, load_private_key, load_public_key, write_key_pair


@pytest.mark.parametrize("algorithm", ["ed25519", "ecdsa-p256"])
def test_keyid_is_sha256_of_spki_der(algorithm: str, tmp_path: Path) -> None:
    key = PrivateKey.generate(algorithm)  # type: ignore[arg-type]
    public_path = write_key_pair(key, tmp_path / "k")
    der = serialization.load_pem_public_key(public_path.read_bytes()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key.keyid == hashlib.sha256(der).hexdigest()
    assert load_public_key(public_path).keyid == key.keyid
    assert load_private_key(tmp_path / "k").keyid == key.keyid


def test_private_key_is_0600_and_never_overwritten(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    write_key_pair(key, tmp_path / "k")
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600
    before = (tmp_path / "k").read_bytes()
    with pytest.raises(InputError, match="already exists"):
        write_key_pair(PrivateKey.generate(), tmp_path / "k")
    assert (tmp_path / "k").read_bytes() == before
    write_key_pair(PrivateKey.generate(), tmp_path / "k", force=True)
    assert (tmp_path / "k").read_bytes() != before


def test_passphrase(tmp_path: Path) -> None:
    key = PrivateKey.generate("ecdsa-p256")
    write_key_pair(key, tmp_path / "k", passphrase=b"correct horse")
    assert b"ENCRYPTED" in (tmp_path / "k").read_bytes()
    assert load_private_key(tmp_path / "k", passphrase=b"correct horse").keyid == key.keyid
    with pytest.raises(KeyFormatError, match="wrong passphrase"):
        load_private_key(tmp_path / "k", passphrase=b"wrong")
    with pytest.raises(KeyFormatError, match="encrypted"):
        load_private_key(tmp_path / "k")


def _pem_public(key: object) -> bytes:
    return key.public_key().public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    ("private", "message"),
    [
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "not supported"),
        (ec.generate_private_key(ec.SECP384R1()), "secp384r1 is not supported"),
    ],
)
def test_other_algorithms_are_refused(private: object, message: str, tmp_path: Path) -> None:
    with pytest.raises(KeyFormatError, match=message):
        PublicKey.from_pem(_pem_public(private), what="k")
    pem = private.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyFormatError, match=message):
        PrivateKey.from_pem(pem, passphrase=None, what="k")


def test_bad_key_files(tmp_path: Path) -> None:
    with pytest.raises(KeyFormatError, match="no such key file"):
        load_private_key(tmp_path / "missing")
    (tmp_path / "junk").write_text("not a key")
    (tmp_path / "junk").chmod(0o600)
    with pytest.raises(KeyFormatError, match="not a PEM private key"):
        load_private_key(tmp_path / "junk")
    with pytest.raises(KeyFormatError, match="not a PEM public key"):
        load_public_key(tmp_path / "junk")
    write_key_pair(PrivateKey.generate(), tmp_path / "k")
    with pytest.raises(KeyFormatError, match="is a private key"):
        load_public_key(tmp_path / "k")
    with pytest.raises(KeyFormatError, match="is a directory"):
        load_private_key(tmp_path)
    (tmp_path / "big").write_bytes(b"x" * 100_000)
    (tmp_path / "big").chmod(0o600)
    with pytest.raises(KeyFormatError, match="larger than"):
        load_private_key(tmp_path / "big")


def test_private_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    write_key_pair(key, tmp_path / "k")
    (tmp_path / "k").chmod(0o644)
    with pytest.raises(
        KeyFormatError, match=r"readable by other users \(mode 0644\); run 'chmod 600"
    ):
        load_private_key(tmp_path / "k")
    (tmp_path / "k").chmod(0o640)
    with pytest.raises(KeyFormatError, match="readable by other users"):
        load_private_key(tmp_path / "k")
    (tmp_path / "k").chmod(0o400)
    assert load_private_key(tmp_path / "k").keyid == key.keyid
    # The public key may be world-readable.
    assert load_public_key(tmp_path / "k.pub").keyid == key.keyid
