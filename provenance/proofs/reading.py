"""The manifest as proofs and card-bound lookups read it: once, and checked against the card.

:func:`read_against_card` is the one place where :mod:`provenance.proofs` and
:mod:`provenance.lookup` read a manifest that a card commits to. Everything they keep of the
manifest (leaf hashes, line offsets, digests, ids) is taken from the entries it yields, so no
second, unchecked read of the file exists; lines read again later (to put an entry into a proof
or a lookup's answer) are checked against the leaf hashes taken here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from provenance.manifest import ManifestEntry, ManifestSummary, iter_manifest
from provenance.proofs.model import CardCommitment

__all__ = ["read_against_card"]


def read_against_card(manifest_path: Path, commitment: CardCommitment) -> Iterator[ManifestEntry]:
    """Stream the entries of the manifest at ``manifest_path``, reading the file once; once the
    entries are exhausted, check that they are the manifest ``commitment`` names.

    Every line is checked as :func:`provenance.manifest.iter_manifest` checks it (canonical
    form, order, unique ids), so ``entry_bytes(entry)`` is exactly the line read. A consumer
    must exhaust the stream before it relies on anything it kept.

    Raises:
        InputError, FormatError, LocalIOError: the manifest is missing, not a regular file,
            unreadable or invalid.
        DigestMismatchError: the file's digest, entry count or Merkle root is not the card's.
    """
    summaries: list[ManifestSummary] = []
    yield from iter_manifest(manifest_path, on_summary=summaries.append)
    summary = summaries[0]
    commitment.check_manifest(manifest_path, summary.digest, summary.entries, summary.root)
