"""The manifest as proofs and card-bound lookups read it: once, and checked against the card.

:func:`read_against_card` is the one place where :mod:`provenance.proofs` and
:mod:`provenance.lookup` read a manifest that a card commits to, through the one committed
reader every check of a manifest against a card uses
(:func:`provenance.manifest.read_committed`). Everything they keep of the manifest (leaf
hashes, line offsets, digests, ids) is computed by a consumer from the entries of that one
read, and released only once the bytes read are known to be the card's; lines read again later
(to put an entry into a proof or a lookup's answer) are checked against the leaf hashes kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from provenance.manifest import ManifestEntry, ManifestSummary, read_committed
from provenance.proofs.inputs import CardRef

__all__ = ["read_against_card"]

T = TypeVar("T")


def read_against_card(
    manifest_path: Path, card: CardRef, consume: Callable[[Iterator[ManifestEntry]], T]
) -> T:
    """Stream the manifest at ``manifest_path`` into ``consume`` in one read, and return what
    it returns only if the bytes read are the manifest ``card`` commits to.

    Every line is checked as :func:`provenance.manifest.iter_manifest` checks it (canonical
    form, order, unique ids), so ``entry_bytes(entry)`` is exactly the line read. ``consume``
    sees the entries before the commitment can be checked (once the file is exhausted), so it
    must only compute its result from them; whatever it leaves unread is read and checked too.

    Raises:
        InputError, FormatError, LocalIOError: the manifest is missing, not a regular file,
            unreadable or invalid (when it is the card's: see
            :meth:`provenance.manifest.ManifestReader.consume`).
        DigestMismatchError: the file's digest, entry count, bytes or Merkle root is not the
            card's.
    """
    verified = card.card
    committed = ManifestSummary.from_card(verified.manifest_digest, verified.predicate.manifest)
    return read_committed(manifest_path, committed, consume)
