"""Manifests: one canonical JSON line per file or record, ordered by ``(sha256, id)``.

The package, by concern (each module's docstring says more):

- :mod:`.entry`: the entry format: :class:`ManifestEntry`, its canonical line, the id rules
  (:func:`id_problem`) and the manifest order. Pure.
- :mod:`.reader`: one checked read of a manifest file, :class:`ManifestReader`, which yields
  the entries and then their :class:`ManifestSummary` (file digest, entry count, bytes, Merkle
  root); :func:`read_committed` streams a manifest into a consumer and releases its result only
  if the bytes read are those a card commits to. The Merkle tree of a big file is computed in a
  forked child (:mod:`._leaves`).
- :mod:`.writer`: writing manifests atomically, shard records, merging shards.
- :mod:`.walk`: the regular files under a directory, as ids (:func:`walk_files`).
- :mod:`.hashing`: hashing files on all cores (:func:`hash_files`), with typed errors
  (:class:`HashError`).
- :mod:`.build`: the entries of a directory or a records file, in manifest order.

Example::

    entries = manifest.build_from_directory(Path("data"), workers=4)
    summary = manifest.write_manifest(entries, Path("manifest.jsonl"))
    facts = manifest.read_committed(Path("manifest.jsonl"), committed, consume=gather)
"""

from __future__ import annotations

from provenance.manifest.build import (
    build_from_directory,
    build_from_records,
    hash_tree,
    parse_shard,
)
from provenance.manifest.entry import (
    MAX_ID_LENGTH,
    MAX_LINE_BYTES,
    EntryId,
    ManifestEntry,
    Sha256Hex,
    ShortText,
    Size,
    check_id,
    decode_entry,
    entry_bytes,
    entry_from_mapping,
    entry_lines,
    id_problem,
    sort_entries,
)
from provenance.manifest.hashing import (
    FINGERPRINT_MAX_BYTES,
    FileDigest,
    HashError,
    HashErrorKind,
    hash_file,
    hash_files,
)
from provenance.manifest.reader import (
    BlockChecker,
    CheckedEntries,
    Manifest,
    ManifestBlock,
    ManifestReader,
    ManifestSummary,
    iter_manifest,
    read_committed,
    read_manifest,
)
from provenance.manifest.walk import (
    FileRef,
    SymlinkPolicy,
    WalkStats,
    exclusion_matcher,
    walk_files,
    walk_files_in_order,
)
from provenance.manifest.writer import (
    MAX_SHARD_RECORD_BYTES,
    SHARD_RECORD_SUFFIX,
    ShardRecord,
    merge_manifests,
    read_shard_record,
    shard_record_path,
    write_manifest,
    write_shard_record,
)

__all__ = [
    "FINGERPRINT_MAX_BYTES",
    "MAX_ID_LENGTH",
    "MAX_LINE_BYTES",
    "MAX_SHARD_RECORD_BYTES",
    "SHARD_RECORD_SUFFIX",
    "BlockChecker",
    "CheckedEntries",
    "EntryId",
    "FileDigest",
    "FileRef",
    "HashError",
    "HashErrorKind",
    "Manifest",
    "ManifestBlock",
    "ManifestEntry",
    "ManifestReader",
    "ManifestSummary",
    "Sha256Hex",
    "ShardRecord",
    "ShortText",
    "Size",
    "SymlinkPolicy",
    "WalkStats",
    "build_from_directory",
    "build_from_records",
    "check_id",
    "decode_entry",
    "entry_bytes",
    "entry_from_mapping",
    "entry_lines",
    "exclusion_matcher",
    "hash_file",
    "hash_files",
    "hash_tree",
    "id_problem",
    "iter_manifest",
    "merge_manifests",
    "parse_shard",
    "read_committed",
    "read_manifest",
    "read_shard_record",
    "shard_record_path",
    "sort_entries",
    "walk_files",
    "walk_files_in_order",
    "write_manifest",
    "write_shard_record",
]
