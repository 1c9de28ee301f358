"""The I/O shell of the exports: verify the card, check the manifest, call the exporter.

Order matters. The card's signature is verified first and only the verified statement is
exported; an unsigned, untrusted or tampered card stops everything before anything is written.
A manifest is read once (:class:`provenance.manifest.ManifestReader`): the facts gathered from
its entries are used only if the digest, entry count, bytes and Merkle root of that same read
are the card's (so a file swapped during the pass is refused too).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from provenance.card import VerifiedCard, read_signed_card, verify_card
from provenance.envelope import Envelope
from provenance.errors import (
    DigestMismatchError,
    InputError,
    KeyFormatError,
    SignatureError,
)
from provenance.exports import (
    FORMATS,
    ExportCard,
    ExportOptions,
    ManifestFacts,
    Signer,
    collect_entry_facts,
)
from provenance.manifest import ManifestEntry, ManifestReader, ManifestSummary
from provenance.trust import TrustStore, read_trust_store

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Verified:
    """A verified card ready to export, and the trust store it was verified with."""

    card: ExportCard
    trust: TrustStore


def _read(
    signed_path: Path, trust_path: Path, real_time: dt.datetime | None = None
) -> tuple[Envelope, TrustStore]:
    """Read the trust store (judging keys at ``real_time`` too when given) and the signed card
    (nothing trusted yet)."""
    trust = read_trust_store(trust_path)
    if real_time is not None:
        trust = trust.with_real_time(real_time)
    return read_signed_card(signed_path), trust


def _export_card(envelope: Envelope, card: VerifiedCard, trust: TrustStore) -> ExportCard:
    """The exporters' view of ``card``, which verified from ``envelope``'s payload."""
    statement_sha256 = hashlib.sha256(envelope.payload).hexdigest()
    signers = tuple(
        [Signer(k, trust.name_of(k), "dataset-publisher") for k in card.publishers]
        + [Signer(k, trust.name_of(k), "auditor") for k in card.auditors]
    )
    return ExportCard(card.statement, statement_sha256, signers)


def load_verified(
    signed_path: Path,
    trust_path: Path,
    *,
    at: dt.datetime,
    real_time: dt.datetime | None = None,
) -> Verified:
    """Read and verify the signed card at ``signed_path`` against the trust store, at ``at``
    (and at ``real_time`` too when the clock was moved).

    Raises:
        InputError: a file is missing or malformed, the card is not signed, or the trust store
            has no dataset-publisher key.
        SignatureError: no trusted dataset-publisher key signed the card (or it was altered).
    """
    envelope, trust = _read(signed_path, trust_path, real_time)
    card = verify_card(envelope, trust, at=at, what=str(signed_path))
    # verify_card succeeded, so envelope.payload is exactly the verified bytes.
    return Verified(_export_card(envelope, card, trust), trust)


def check_manifest(
    card: ExportCard,
    manifest_path: Path,
    consume: Callable[[Iterator[ManifestEntry]], T],
) -> tuple[T, int]:
    """Stream the manifest's entries into ``consume``, in one read, and return its result if
    the bytes read are the manifest the card commits to.

    Returns:
        What ``consume`` returned, and the manifest file's size in bytes.

    Raises:
        DigestMismatchError: the file's digest, entry count, bytes or Merkle root differ from
            the card's (its result is then never used).
        InputError, FormatError, LocalIOError: the manifest is missing, unreadable or invalid.
    """
    committed = ManifestSummary.from_card(card.manifest_sha256, card.predicate.manifest)
    reader = ManifestReader(manifest_path, committed=committed)
    result = reader.consume(consume)
    return result, reader.file_size


def manifest_facts(card: ExportCard, manifest_path: Path) -> ManifestFacts:
    """The facts of the manifest at ``manifest_path``, once it is checked against ``card``.

    Raises:
        DigestMismatchError, InputError, FormatError, LocalIOError: see :func:`check_manifest`.
    """
    facts, size = check_manifest(card, manifest_path, collect_entry_facts)
    return ManifestFacts(size, facts)


def export(
    format_name: str,
    signed_path: Path,
    trust_path: Path,
    *,
    at: dt.datetime,
    manifest_path: Path | None = None,
    options: ExportOptions | None = None,
    real_time: dt.datetime | None = None,
) -> bytes:
    """Verify the card and return its export in ``format_name`` (any format but ``oms``).

    Keys are judged at ``at``, and at ``real_time`` too when the clock was moved.

    Raises:
        InputError: an unknown format, or bad input (see :func:`load_verified`).
        SignatureError: the card does not verify.
        DigestMismatchError: the manifest is not the one the card commits to.
    """
    if format_name not in FORMATS or format_name == "oms":
        raise InputError(f"export format {format_name!r}: expected one of {', '.join(FORMATS)}")
    verified = load_verified(signed_path, trust_path, at=at, real_time=real_time)
    facts = manifest_facts(verified.card, manifest_path) if manifest_path is not None else None
    module = _module(format_name)
    result: bytes = module.export(verified.card, facts, options or ExportOptions())
    return result


def _module(format_name: str) -> Any:
    import importlib

    name = {"eu-summary": "eu_summary", "html": "html_page"}.get(format_name, format_name)
    return importlib.import_module(f"provenance.exports.{name}")


def export_oms(
    signed_path: Path,
    trust_path: Path,
    *,
    manifest_path: Path,
    data_dir: Path,
    key_path: Path,
    output: Path,
    at: dt.datetime,
    passphrase: bytes | None = None,
    workers: int = 1,
    real_time: dt.datetime | None = None,
) -> bytes:
    """Verify the card, check ``data_dir`` against its manifest, and sign it for model_signing.

    Keys are judged at ``at``, and at ``real_time`` too when the clock was moved.

    Returns:
        The Sigstore bundle (see :mod:`provenance.exports.oms`).

    Raises:
        SignatureError: the card does not verify.
        DigestMismatchError: the manifest is not the card's, or a file in ``data_dir`` is
            changed, missing or extra.
        KeyFormatError: the key cannot be loaded, or is not an ECDSA P-256 key.
        InputError: ``output`` lies inside ``data_dir``, or a manifest entry is a path that
            model_signing ignores.
    """
    from provenance.exports import oms
    from provenance.keys import load_private_key
    from provenance.verify import verify

    data_root = data_dir.resolve()
    if output.resolve().is_relative_to(data_root):
        raise InputError(f"{output}: the bundle must be written outside {data_dir}, which it signs")
    envelope, trust = _read(signed_path, trust_path, real_time)
    # verify() checks the signature, then the manifest against the card, then every file; it
    # keeps the manifest it read (once), for the bundle to list exactly the entries checked.
    report = verify(
        envelope,
        trust,
        at=at,
        what=str(signed_path),
        manifest_path=manifest_path,
        data_dir=data_dir,
        workers=workers,
        keep_manifest=True,
    )
    failed = [c for c in report.checks if not c.ok]
    if report.card is None:
        raise SignatureError(failed[0].detail if failed else f"{signed_path}: not verified")
    if failed:
        raise DigestMismatchError(
            f"{data_dir}: does not match the card's manifest: "
            + "; ".join(f"{c.name}: {c.detail}" for c in failed)
            + (f" ({report.data.examples()})" if report.data is not None else "")
        )
    card = _export_card(envelope, report.card, trust)
    key = load_private_key(key_path, passphrase=passphrase)
    if key.algorithm != "ecdsa-p256":
        raise KeyFormatError(
            f"{key_path}: an {key.algorithm} key; model_signing 1.1.1 verifies only elliptic-curve"
            " (ECDSA) signatures and refuses Ed25519, so sign with an ECDSA P-256 key"
        )
    if report.manifest is None:  # pragma: no cover - every check passed, so it is the card's
        raise DigestMismatchError(f"{manifest_path}: is not the manifest the card commits to")
    resources = [(e.id, e.sha256) for e in report.manifest.entries]
    return oms.bundle(
        card,
        resources,
        subject_name=data_root.name,
        sign=key.sign,
        public_key_pem=key.public.to_pem(),
    )
