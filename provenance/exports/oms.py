"""An OpenSSF model_signing signature over a dataset directory, bound to our card.

The output is a Sigstore bundle v0.3 holding a DSSE envelope whose payload is an in-toto
Statement with model_signing's v1.0 predicate, as ``model_signing sign key`` writes it for an
elliptic-curve key: ``resources`` lists every file (relative POSIX path, ``sha256``, hex digest)
sorted by path, the subject digest is the SHA-256 of the files' raw 32-byte digests concatenated
in that order, the signature is ECDSA P-256 over SHA-256 (DER), and the bundle carries the key's
hint (hex SHA-256 of its SubjectPublicKeyInfo PEM). ``model_signing verify key DIR --signature
BUNDLE --public_key KEY.pub`` accepts it.

The per-file digests are the manifest's, which the caller has checked against the card and the
directory. The card is bound by an extra predicate key, ``provenance_card`` (its statement
digest, manifest digest and Merkle root), which v1.0 verifiers ignore.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from provenance import _json
from provenance.card.model import PREDICATE_TYPE as CARD_PREDICATE_TYPE
from provenance.envelope import pae
from provenance.errors import InputError
from provenance.exports import ExportCard

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
# What model_signing ignores by default in the model directory (its --ignore-git-paths).
IGNORED_PATHS = (".git", ".gitattributes", ".github", ".gitignore")


def check_resource_names(names: Sequence[str]) -> None:
    """Refuse file names model_signing verifiers would ignore or could not name.

    Raises:
        InputError: a name is one of :data:`IGNORED_PATHS` or under one of them.
    """
    for name in names:
        top = name.split("/", 1)[0]
        if top in IGNORED_PATHS:
            raise InputError(
                f"manifest entry {name!r}: model_signing verifiers ignore {top!r} in the"
                " directory, so a signature over it could never verify"
            )


def statement(
    card: ExportCard, resources: Sequence[tuple[str, str]], *, subject_name: str
) -> dict[str, Any]:
    """The in-toto Statement with model_signing's v1.0 predicate over ``resources``.

    ``resources`` are ``(relative path, hex sha256)`` pairs; they are sorted by path here.
    """
    ordered = sorted(resources)
    check_resource_names([name for name, _ in ordered])
    subject = hashlib.sha256(b"".join(bytes.fromhex(digest) for _, digest in ordered))
    manifest = card.predicate.manifest
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name, "digest": {"sha256": subject.hexdigest()}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": False,
                "ignore_paths": list(IGNORED_PATHS),
            },
            "resources": [
                {"name": name, "algorithm": "sha256", "digest": digest} for name, digest in ordered
            ],
            "provenance_card": {
                "uri": card.card_urn,
                "statementSha256": card.statement_sha256,
                "predicateType": CARD_PREDICATE_TYPE,
                "manifest": card.manifest_name,
                "manifestSha256": card.manifest_sha256,
                "merkleRoot": manifest.merkle_root,
            },
        },
    }


def bundle(
    card: ExportCard,
    resources: Sequence[tuple[str, str]],
    *,
    subject_name: str,
    sign: Callable[[bytes], bytes],
    public_key_pem: str,
) -> bytes:
    """Return the Sigstore bundle (JSON bytes) signing ``resources`` with ``sign``.

    ``sign`` must return a DER-encoded ECDSA P-256 / SHA-256 signature of its argument (the
    DSSE PAE of the payload); ``public_key_pem`` is the matching SPKI PEM, whose SHA-256 is the
    bundle's key hint.
    """
    payload = _json.canonical(statement(card, resources, subject_name=subject_name))
    signature = sign(pae(PAYLOAD_TYPE, payload))
    document = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": hashlib.sha256(public_key_pem.encode("ascii")).hexdigest()},
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": _json.b64encode(payload),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": _json.b64encode(signature), "keyid": ""}],
        },
    }
    return (json.dumps(document, indent=2) + "\n").encode("ascii")
