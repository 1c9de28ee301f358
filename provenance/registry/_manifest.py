"""Reading an uploaded manifest once, against the card that commits to it.

The registry's only use of the manifest reader, kept behind one function so that the reader
can change without touching the rest of the package.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from provenance import manifest
from provenance.errors import DigestMismatchError
from provenance.manifest import ManifestEntry, ManifestSummary

_BLOCK = 8192


def read_against_card(
    path: Path, committed: ManifestSummary, consume: Callable[[int, list[ManifestEntry]], None]
) -> None:
    """Read the manifest at ``path`` once, handing ``consume(first, entries)`` each block of
    checked entries (``first`` is the position of the block's first entry), then check that
    the bytes read are the manifest ``committed`` describes.

    Every line is checked as it is read, including the manifest order ``(sha256, id)`` that
    absence proofs rest on. ``consume`` sees entries before the commitment can be checked: it
    must be able to undo what it did (the registry writes them in a transaction that is
    rolled back on any error).

    Raises:
        FormatError: a line is invalid, not canonical or out of order, or an id repeats.
        DigestMismatchError: the file's SHA-256, entry count, bytes or Merkle root differ from
            ``committed``.
        InputError, LocalIOError: the file cannot be read.
    """
    found: list[manifest.ManifestSummary] = []
    block: list[ManifestEntry] = []
    first = 0
    for entry in manifest.iter_manifest(path, on_summary=found.append):
        block.append(entry)
        if len(block) == _BLOCK:
            consume(first, block)
            first += len(block)
            block = []
    if block:
        consume(first, block)
    differences = found[0].differences(committed)
    if differences:
        raise DigestMismatchError(
            "the manifest is not the one the card commits to: " + "; ".join(differences)
        )


__all__ = ["read_against_card"]
