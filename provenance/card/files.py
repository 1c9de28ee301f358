"""The I/O shell of cards: read and write card files, one function per ``card`` command.

Each function reads its inputs once, checks them, calls the pure core (:mod:`.statement`,
:mod:`.verification`) and writes its output atomically (a temporary file, then a rename), so a
failure never leaves a half-written card.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from provenance import _json, manifest
from provenance._files import atomic_write, read_bytes
from provenance.card.model import CardStatement, FingerprintIndexCommitment
from provenance.card.spec import MAX_SPEC_BYTES, load_spec
from provenance.card.statement import (
    MAX_CARD_BYTES,
    SignedCard,
    build_statement,
    sign_card,
    unverified_card_document,
)
from provenance.card.verification import CardView, show_card
from provenance.envelope import Envelope
from provenance.errors import FormatError
from provenance.keys import PrivateKey
from provenance.trust import TrustStore


def read_card_document(path: Path) -> Envelope | CardStatement:
    """Read the card file at ``path``: a signed card (unverified) or an unsigned statement.

    Raises:
        InputError: missing, unreadable, or not a regular file.
        FormatError, SchemaError: neither a DSSE envelope nor a valid card statement.
    """
    return unverified_card_document(read_bytes(path, limit=MAX_CARD_BYTES), what=str(path))


def read_signed_card(path: Path) -> Envelope:
    """Read the signed card at ``path`` (its envelope, not verified yet).

    Raises:
        InputError: missing, unreadable, or not a regular file.
        FormatError: an unsigned statement, or not a card file at all.
    """
    document = read_card_document(path)
    if not isinstance(document, Envelope):
        raise FormatError(f"{path}: the card is not signed; sign it first")
    return document


def _fingerprints_commitment(manifest_path: Path) -> FingerprintIndexCommitment | None:
    """The card's record of the manifest's fingerprint sidecar, if there is one.

    Raises:
        InputError: the sidecar belongs to another manifest.
        FormatError: the sidecar is corrupt.
    """
    from provenance import fpindex

    # One read: the layout is checked (built for this very manifest) and the digest recorded is
    # that of the same bytes.
    recorded = fpindex.sidecar_commitment(manifest_path)
    if recorded is None:
        return None
    return FingerprintIndexCommitment(sha256=recorded["sha256"], name=recorded["name"])


def build_card(
    spec_path: Path,
    manifest_path: Path,
    *,
    output: Path,
    at: dt.datetime,
    filter_report: Path | None = None,
) -> CardStatement:
    """Build the unsigned card of a spec and a manifest, and write it to ``output``.

    The manifest is read once: its entries are counted per source and license while its
    digest, entry count, bytes and Merkle root are computed. A fingerprint sidecar beside it
    (``MANIFEST.fp``) is recorded by its digest, once checked to belong to this manifest.

    Args:
        filter_report: the report of ``provenance filter``, whose lists the card says were
            applied (none without it).

    Returns:
        The statement written.

    Raises:
        InputError, FormatError, SchemaError: a file is missing or malformed, an entry is
            claimed by no source, or the sidecar belongs to another manifest.
        LocalIOError: reading or writing failed.
    """
    from provenance.filter_report import read_filter_report

    spec = load_spec(read_bytes(spec_path, limit=MAX_SPEC_BYTES), what=str(spec_path))
    exclusions = read_filter_report(filter_report).lists if filter_report else ()
    summaries: list[manifest.ManifestSummary] = []
    statement = build_statement(
        spec,
        manifest.iter_manifest(manifest_path, on_summary=summaries.append),
        lambda: summaries[0],
        # A partitioned manifest's subject is its index (DESIGN §8).
        manifest_name="index.json" if manifest_path.is_dir() else manifest_path.name,
        created=at,
        exclusions=exclusions,
        fingerprints=_fingerprints_commitment(manifest_path),
    )
    atomic_write(output, _json.pretty(statement.to_dict()))
    return statement


def sign_card_file(card_path: Path, key: PrivateKey, *, output: Path) -> SignedCard:
    """Sign the card at ``card_path`` (or co-sign it, when it is signed) into ``output``.

    ``output`` may be ``card_path``: it is replaced atomically.

    Raises:
        InputError, FormatError, SchemaError: the file is missing or is not a card.
        LocalIOError: writing failed.
    """
    signed = sign_card(read_card_document(card_path), key, what=str(card_path))
    atomic_write(output, signed.envelope.to_json())
    return signed


def show_card_file(path: Path, trust: TrustStore | None, *, at: dt.datetime) -> CardView:
    """Decode the card at ``path`` for people, verified against ``trust`` when given.

    Raises:
        As :func:`show_card`, and InputError for a missing or unreadable file.
    """
    return show_card(read_card_document(path), trust, at=at, what=str(path))
