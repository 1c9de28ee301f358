"""Checking a registry's lookup answer against the bytes of the cards it names.

A registry's answer says "this work is entry E of card C, with this status". The card's log
entry (authenticated by its receipt, signed by a trusted log key) binds the card's envelope,
statement and manifest by their SHA-256, and the statement binds the fingerprint sidecar; so
the client fetches those bytes, checks each against what binds it, and runs the matching of
``provenance lookup`` itself (:func:`provenance.lookup.lookup_prepared`). What it reports for a
card is what it computed; an entry the answer claims that the card's own bytes do not match is
a false answer and refused. (Absence cannot be checked: a registry may leave a card out.)
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from provenance import _json
from provenance._files import atomic_writer
from provenance.card.statement import parse_statement
from provenance.envelope import MAX_ENVELOPE_BYTES, Envelope
from provenance.errors import FormatError, SchemaError, VerificationError
from provenance.fingerprints import ContentPrints
from provenance.lookup import Match, lookup_prepared, open_for_lookup
from provenance.manifest import MAX_LINE_BYTES
from provenance.tlog import LogEntry

if TYPE_CHECKING:
    from provenance._http import Fetcher


def _download(
    fetcher: Fetcher, url: str, target: Path, expected: str, max_bytes: int | None, *, what: str
) -> None:
    """Stream ``url`` into ``target`` (at most ``max_bytes``, and the fetcher's own cap); its
    SHA-256 must be ``expected``.

    Raises:
        VerificationError: the bytes are not ``expected``.
        FetchError: as :meth:`provenance._http.Fetcher.open`.
    """
    digest = hashlib.sha256()
    with atomic_writer(target) as handle:
        for chunk in fetcher.open(url, max_bytes=max_bytes):
            digest.update(chunk)
            handle.write(chunk)
        if digest.hexdigest() != expected:
            raise VerificationError(
                f"{what}: the registry serves bytes of SHA-256 {digest.hexdigest()}, not the"
                f" {expected} its log entry binds"
            )


def _sidecar_commitment(fetcher: Fetcher, base: str, entry: LogEntry) -> str | None:
    """The fingerprint sidecar digest the card of ``entry`` commits to (None: none), read from
    its envelope as served, which must be the envelope and statement the log entry binds."""
    what = f"{base}: card {entry.card}"
    data = fetcher.get(f"{base}/v1/cards/{entry.card}/envelope", max_bytes=MAX_ENVELOPE_BYTES)
    if hashlib.sha256(data).hexdigest() != entry.envelope:
        raise VerificationError(f"{what}: the registry serves another envelope than it logged")
    try:
        envelope = Envelope.from_json(data, what=what)
        if hashlib.sha256(envelope.payload).hexdigest() != entry.card:
            raise VerificationError(f"{what}: its logged envelope holds another statement")
        # Bound by the log entry (the envelope's digest, the statement's as the card id): what
        # the registry admitted after checking its signatures, as its log key attests.
        logged = parse_statement(
            _json.loads_object(envelope.payload, what=f"{what}: statement"), what=what
        )
    except (FormatError, SchemaError) as exc:
        raise VerificationError(f"{what}: its logged envelope is not a card's ({exc})") from None
    fingerprints = logged.predicate.manifest.fingerprints
    return fingerprints.sha256 if fingerprints is not None else None


def matches_in_card(
    fetcher: Fetcher,
    base: str,
    entry: LogEntry,
    works: Sequence[tuple[str, str, ContentPrints]],
) -> list[tuple[Match, ...]]:
    """Look ``works`` (label, SHA-256, prints) up in the card of ``entry`` (a verified log entry)
    from its bytes as the registry serves them, each checked against what binds it.

    Returns:
        Each work's matches in that card, in order (as :func:`provenance.lookup.lookup_prepared`).

    Raises:
        VerificationError: a served file is not the one the log entry (or the statement) binds.
        FetchError: the registry could not be read.
        FormatError: the manifest or sidecar is corrupt.
    """
    committed = _sidecar_commitment(fetcher, base, entry)
    url = f"{base}/v1/cards/{entry.card}"
    with tempfile.TemporaryDirectory(prefix="provenance-card-") as directory:
        manifest = Path(directory) / "manifest.jsonl"
        cap = max(entry.entries, 1) * (MAX_LINE_BYTES + 1)  # the longest of that many lines
        what = f"{base}: the manifest of card {entry.card}"
        _download(fetcher, f"{url}/manifest", manifest, entry.manifest, cap, what=what)
        if committed is not None:
            sidecar = Path(directory) / "manifest.jsonl.fp"
            what = f"{base}: the fingerprint sidecar of card {entry.card}"
            _download(fetcher, f"{url}/fingerprints", sidecar, committed, None, what=what)
        # No sidecar beside the manifest but the one its statement commits to (checked above).
        with open_for_lookup(manifest, warn=lambda _: None) as (index, _):
            return [result.matches for result in lookup_prepared(works, index)]


__all__ = ["matches_in_card"]
