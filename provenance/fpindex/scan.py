"""What a lookup keeps of one read of a manifest: line offsets, digest prefixes, ids."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from provenance.errors import InputError
from provenance.fpindex.layout import MAX_ENTRIES, U32, U64
from provenance.manifest import ManifestEntry, ManifestSummary, entry_bytes, iter_manifest
from provenance.merkle import leaf_hash


def prefix(hex_digest: str) -> int:
    """Return the first 8 bytes of a hex digest as a big-endian number (its index key)."""
    return int(hex_digest[:16], 16)


def prefixes(hex_digests: list[str]) -> U64:
    """:func:`prefix` of each digest, at once."""
    joined = "".join([digest[:16] for digest in hex_digests])
    return np.frombuffer(bytes.fromhex(joined), dtype=">u8").astype(np.uint64)


@dataclass(frozen=True, slots=True)
class ManifestScan:
    """What one read of a manifest yields for lookups (and, with ``leaves``, for proofs)."""

    digest: str
    """SHA-256 of the manifest file, of the bytes read."""
    ids: list[str]
    offsets: U64
    sha_prefix: U64
    text_prefix: U64  # textSha256 prefixes, sorted; ties in entry order
    text_entry: U32  # the entry of each
    digests: bytes = b""
    """With ``leaves``: every entry's sha256, 32 bytes each, in manifest order."""
    leaves: bytes = b""
    """With ``leaves``: every line's RFC 9162 leaf hash, 32 bytes each, in manifest order."""


def scan_entries(
    entries: Iterable[ManifestEntry],
    digest: Callable[[], str],
    *,
    leaves: bool = False,
    what: object = "manifest",
) -> ManifestScan:
    """Collect what lookups need from a manifest's entries as they are read, once.

    ``entries`` must be checked as :func:`provenance.manifest.iter_manifest` checks them (so
    that ``entry_bytes(entry)`` is the line read); ``digest`` returns the SHA-256 of the file
    they were read from, once they are exhausted. With ``leaves``, every entry's sha256 and
    leaf hash are kept too: what proofs against a card need, taken from the same bytes.

    Raises:
        InputError: more entries than a sidecar can number (named ``what``), or what reading
            ``entries`` raises.
    """
    ids: list[str] = []
    offsets = [0]
    sha_prefix: list[int] = []
    text_sha: list[tuple[int, int]] = []
    digests = bytearray()
    leaf_hashes = bytearray()
    from_hex = bytes.fromhex
    position = 0
    for number, entry in enumerate(entries):
        ids.append(entry.id)
        line = entry_bytes(entry)
        position += len(line) + 1
        offsets.append(position)
        sha_prefix.append(prefix(entry.sha256))
        if entry.textSha256 is not None:
            text_sha.append((prefix(entry.textSha256), number))
        if leaves:
            digests += from_hex(entry.sha256)
            leaf_hashes += leaf_hash(line)
    if len(ids) > MAX_ENTRIES:
        raise InputError(f"{what}: more than {MAX_ENTRIES} entries")
    text_sha.sort()
    return ManifestScan(
        digest(),
        ids,
        np.array(offsets, dtype=np.uint64),
        np.array(sha_prefix, dtype=np.uint64),
        np.array([p for p, _ in text_sha], dtype=np.uint64),
        np.array([e for _, e in text_sha], dtype=np.uint32),
        bytes(digests),
        bytes(leaf_hashes),
    )


def scan_manifest(manifest_path: Path, *, leaves: bool = False) -> ManifestScan:
    """Read a manifest once (checking it like iter_manifest) and collect what lookups need
    (see :func:`scan_entries`). Nothing is checked against a card.

    Raises:
        InputError, FormatError, LocalIOError: see :func:`provenance.manifest.iter_manifest`.
    """
    summaries: list[ManifestSummary] = []
    return scan_entries(
        iter_manifest(manifest_path, on_summary=summaries.append),
        lambda: summaries[0].digest,
        leaves=leaves,
        what=manifest_path,
    )
