"""Reading an uploaded manifest once, against the card that commits to it.

The registry's only use of the manifest reader, kept behind one function so that the reader
can change without touching the rest of the package.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from provenance.errors import DigestMismatchError
from provenance.manifest import ManifestEntry, ManifestReader, ManifestSummary

_BLOCK = 8192


def read_against_card(
    path: Path,
    committed: ManifestSummary,
    consume: Callable[[int, list[ManifestEntry], bytes], None],
) -> None:
    """Read the manifest at ``path`` once, handing ``consume(first, entries, data)`` each block
    of checked entries (``first`` is the position of the block's first entry, ``data`` the
    bytes of their lines: all blocks' ``data`` together are the file's bytes), then check
    that the bytes read are the manifest ``committed`` describes.

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
    reader = ManifestReader(path)
    block: list[ManifestEntry] = []
    data: list[bytes] = []
    first = 0
    try:
        # The reader's blocks are about 4 MiB of lines; near a line that fails the fast check
        # it yields entries one at a time, which are gathered again here.
        for read in reader.blocks():
            block.extend(read.entries)
            data.append(read.data)
            if len(block) >= _BLOCK:
                consume(first, block, data[0] if len(data) == 1 else b"".join(data))
                first += len(block)
                block, data = [], []
        if block:
            consume(first, block, b"".join(data))
    finally:
        reader.close()
    summary = reader.summary
    differences = summary.differences(committed)
    if differences:
        raise DigestMismatchError(
            "the manifest is not the one the card commits to: " + "; ".join(differences)
        )


__all__ = ["read_against_card"]
