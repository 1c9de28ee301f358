"""Partitioned manifests: ``OUT/index.json`` and ``OUT/part-NNNNN.jsonl``.

Part ``k`` of ``P`` holds the entries whose sha256's first 32 bits ``p`` satisfy
``p * P >> 32 == k``, in ``(sha256, id)`` order, so the parts concatenated in order are exactly
the single-file manifest of the same entries, and its RFC 9162 root is the root of that
concatenation. The index (``schemas/manifest-index.v1.json``) lists each part's file name,
SHA-256, entry count, file size, sum of entry sizes, first and last sha256, and the roots of
the aligned perfect subtrees that cover the part's leaves within the whole tree (at most two
per level): the whole root is computed from those alone, each part's can be computed by a task
that sees only that part, and a proof for one entry needs only its own part.

A partitioned manifest's digest (what a card commits to as its subject) is the SHA-256 of
``index.json``; reading one checks every part against the index and recomputes the root.

The package: :mod:`.index` (the index, part names and prefix ranges, the subtree roots) and
:mod:`.files` (writing and reading parts, lines re-read by offset).
"""

from __future__ import annotations

from provenance.partitions.files import (
    ManifestLines,
    PartSidecarWriter,
    check_output_dir,
    index_bytes,
    make_index,
    open_lines,
    publish,
    read_blocks,
    read_part,
    staging_dir,
    summary_of,
    write_part,
    write_partitioned,
)
from provenance.partitions.index import (
    INDEX_NAME,
    MAX_INDEX_BYTES,
    MAX_PARTITIONS,
    SIDECAR_SUFFIX,
    ManifestIndex,
    OffsetTree,
    PartInfo,
    SidecarPart,
    block_heights,
    check_index,
    check_partitions,
    first_prefix,
    index_path,
    is_partitioned,
    leaf_hashes,
    part_name,
    partition_of,
    read_index,
    root_of_parts,
    sidecar_name,
)

__all__ = [
    "INDEX_NAME",
    "MAX_INDEX_BYTES",
    "MAX_PARTITIONS",
    "SIDECAR_SUFFIX",
    "ManifestIndex",
    "ManifestLines",
    "PartSidecarWriter",
    "OffsetTree",
    "PartInfo",
    "SidecarPart",
    "block_heights",
    "check_index",
    "check_output_dir",
    "check_partitions",
    "first_prefix",
    "index_bytes",
    "index_path",
    "is_partitioned",
    "leaf_hashes",
    "make_index",
    "open_lines",
    "part_name",
    "partition_of",
    "publish",
    "read_blocks",
    "read_index",
    "read_part",
    "root_of_parts",
    "sidecar_name",
    "staging_dir",
    "summary_of",
    "write_part",
    "write_partitioned",
]
