"""The fingerprint sidecar ``<manifest>.fp``: lookup indexes kept next to a manifest.

The manifest stays lean (one ``textSha256`` per text entry); everything a creator's lookup
needs beyond it lives in this binary file, whose SHA-256 the dataset card records in
``predicate.manifest.fingerprints``. Layout (all integers little-endian)::

    b"PVFPIDX1"                    8 bytes, magic
    header length                  uint64
    header                         RFC 8785 JSON, padded with spaces to a multiple of 8 bytes
    sections                       raw arrays in the order the header lists them, each padded
                                   with zero bytes to a multiple of 8 bytes

The header names the format and version (2; version 1 is still read), the manifest it belongs
to (``manifest.sha256`` and ``manifest.entries``), the fingerprint methods and parameters, the
widths ``entryBytes`` (1 to 4: the fewest that number every entry) and ``lineBytes`` (2, or 4
when a line reaches 64 KiB), and each section's ``{"name", "dtype", "count"}``. Sections
(entries are numbered by their manifest line, from 0; ``entry`` is an ``entryBytes``-byte
unsigned integer):

- ``lineLengths`` [N]: the byte length of every manifest line, newline included (``lineBytes``
  each); readers add them up into line offsets;
- ``shaPrefix`` ``<u4`` [N]: the first 4 bytes of each entry's ``sha256`` as a big-endian
  number; non-decreasing since the manifest is ordered by ``sha256`` (a lookup reads every
  candidate line and compares the whole digest);
- ``textShaPrefix`` ``<u4`` [T] and ``textShaEntry`` ``entry`` [T]: the same for
  ``textSha256``, in the order of (8-byte prefix, entry);
- ``fpBuckets`` ``<u4`` [2**keyBits + 1], ``fpKeys`` [M] and ``fpEntry`` ``entry`` [M]: an
  inverted index of the text fingerprints by key (the fingerprint times an odd constant,
  modulo 2**64), sorted by (key, entry): where each bucket of keys (their top ``keyBits``
  bits) starts, and each key's other bits in ``keyBytes`` bytes (see
  :class:`~provenance.fpindex.layout.PackedKeys`); each entry's fingerprint count is counted
  from it;
- ``imageEntry`` ``entry`` [I] and ``imageHash`` ``<u8`` [I]: the pHash of every image entry,
  by entry.

Version 1 had ``lineOffsets`` ``<u8`` [N+1], 8-byte prefixes, ``fpHash`` ``<u8`` [M] sorted by
(hash, entry), 4-byte entry numbers and a ``textFpCount`` ``<u4`` [N] section.

A partitioned manifest has one sidecar per part (``part-NNNNN.jsonl.fp``, the sidecar of that
part as a manifest file), listed with its digest in the manifest's ``index.json``.

The file is a pure function of the manifest and its entries' fingerprints, so it is
byte-identical whatever the number of workers, and merging shards gives the single build's
file. Opening checks the layout, every invariant above and that the manifest is the one named.

Modules: :mod:`~provenance.fpindex.layout` (the format, pure), :mod:`~provenance.fpindex.scan`
(what a lookup keeps of one read of a manifest), :mod:`~provenance.fpindex.index` (opening a
manifest for lookups), :mod:`~provenance.fpindex.writing` (writing and merging sidecars). When a
sidecar may be used at all, given a card, is :func:`provenance.fpsidecar.open_sidecar`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from provenance import _files
from provenance.errors import InputError
from provenance.fpindex.index import FingerprintIndex, LineCheck
from provenance.fpindex.layout import FORMAT, MAGIC, MAX_ENTRIES, MAX_HEADER_BYTES, VERSION
from provenance.fpindex.scan import ManifestScan, scan_entries, scan_manifest
from provenance.fpindex.writing import (
    merge_sidecars,
    merged_prints,
    pack_prints,
    prints_of,
    read_entry_prints,
    unpack_prints,
    write_sidecar,
    write_sidecar_for,
)
from provenance.fpsidecar import SUFFIX, Sidecar, open_sidecar, sidecar_path

__all__ = [
    "FORMAT",
    "MAGIC",
    "MAX_ENTRIES",
    "MAX_HEADER_BYTES",
    "SUFFIX",
    "VERSION",
    "FingerprintIndex",
    "LineCheck",
    "ManifestScan",
    "Sidecar",
    "file_sha256",
    "merge_sidecars",
    "merged_prints",
    "open_sidecar",
    "pack_prints",
    "prints_of",
    "read_entry_prints",
    "scan_entries",
    "scan_manifest",
    "sidecar_commitment",
    "sidecar_path",
    "unpack_prints",
    "write_sidecar",
    "write_sidecar_for",
]


def file_sha256(path: Path) -> str:
    """Return the SHA-256 (hex) of the file at ``path`` (see :func:`provenance._files.file_sha256`).

    Raises:
        InputError: missing or unreadable.
        LocalIOError: a read fails.
    """
    return _files.file_sha256(path)


def sidecar_commitment(manifest_path: Path) -> dict[str, str] | None:
    """Return what a card built now records of the manifest's sidecar (``{"sha256", "name"}``),
    or None when there is none beside it.

    The sidecar is read once (:func:`~provenance.fpsidecar.open_sidecar`, no card yet): its
    layout is checked and that it was built for this very manifest, and the digest recorded is
    that of the same bytes.

    For a partitioned manifest whose index lists sidecar parts, every part is read once and
    checked (the digest the index lists, its layout, built for its part), and what is recorded
    is the index's digest and name: the card commits to the index, which lists the parts'.

    Raises:
        InputError: the sidecar belongs to another manifest, is not a regular file, or (a
            partitioned manifest) a part's sidecar is missing.
        FormatError: the sidecar is corrupt.
        DigestMismatchError: a part's sidecar is not the one the index lists.
    """
    from provenance.partitions import is_partitioned

    if is_partitioned(manifest_path):
        return _parts_commitment(manifest_path)
    sidecar = open_sidecar(manifest_path, None)
    if not sidecar.used:
        return None
    with FingerprintIndex.from_sidecar(manifest_path, sidecar):
        return {"sha256": sidecar.sha256(), "name": sidecar.path.name}


def _parts_commitment(manifest_path: Path) -> dict[str, str] | None:
    from provenance.fpsidecar import open_part_sidecars
    from provenance.partitions import index_path

    sidecars = open_part_sidecars(manifest_path, None)
    if not sidecars.index.has_fingerprints:
        return None
    if not sidecars.used:  # listed, but none present: a card must not commit to absent files
        raise InputError(f"{sidecars.note}; rebuild the manifest, or build it without them")
    for k, part in enumerate(sidecars.index.parts):
        opened = FingerprintIndex.for_part(
            sidecars.directory / part.file,
            sidecars.open_part(k),
            manifest_sha256=part.sha256,
            manifest_bytes=part.bytes,
        )
        with opened:
            opened.postings(np.zeros(0, dtype=np.uint64))  # checks the fingerprint sections
    return {"sha256": sidecars.index_sha256, "name": index_path(manifest_path).name}
