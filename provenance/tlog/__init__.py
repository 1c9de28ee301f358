"""Tiled transparency logs: tiles, proofs read from tiles, receipts, and the registry's log entry.

Formats (pinned): c2sp.org/tlog-tiles@v0.1.0 for tiles and entry bundles, c2sp.org/tlog-proof@v1
for receipts, RFC 9162 (= RFC 6962) for the Merkle tree, whose hashing and proof paths come from
:mod:`provenance.merkle`; signed notes and checkpoints are in :mod:`provenance.signednote`.

The package, by concern:

- :mod:`.tiles`: tile paths and widths, entry bundles, the :class:`TileReader` interface;
- :mod:`.tree`: :class:`TiledTree`, the tree read (and authenticated) from tiles, its proofs,
  and :func:`extend`, the tiles that appending entries writes;
- :mod:`.receipts`: ``c2sp.org/tlog-proof@v1`` receipts and their offline verification;
- :mod:`.entry`: :class:`LogEntry`, the registry's ``provenance.card/v1`` entry.

The log's writer and its stores are in :mod:`provenance.tlog_store`. Pure code: no I/O except
through an injected reader.
"""

from __future__ import annotations

from provenance.tlog.entry import ENTRY_TYPE, LOG_ENTRY_SCHEMA, LogEntry
from provenance.tlog.receipts import (
    MAX_PROOF_HASHES,
    MAX_RECEIPT_BYTES,
    RECEIPT_HEADER,
    Receipt,
    ReceiptError,
    VerifiedReceipt,
    verify_receipt,
)
from provenance.tlog.tiles import (
    ENTRIES,
    HASH_SIZE,
    MAX_BUNDLE_BYTES,
    MAX_ENTRY_BYTES,
    MAX_LEVEL,
    TILE_HEIGHT,
    TILE_WIDTH,
    OverlayReader,
    Tile,
    TileError,
    TileReader,
    bundles_for_size,
    decode_bundle,
    encode_bundle,
    new_tiles,
    right_edge,
    tile_at,
    tile_hashes,
    tiles_for_size,
)
from provenance.tlog.tree import Extension, PerfectHash, TiledTree, extend

__all__ = [
    "ENTRIES",
    "ENTRY_TYPE",
    "HASH_SIZE",
    "LOG_ENTRY_SCHEMA",
    "MAX_BUNDLE_BYTES",
    "MAX_ENTRY_BYTES",
    "MAX_LEVEL",
    "MAX_PROOF_HASHES",
    "MAX_RECEIPT_BYTES",
    "RECEIPT_HEADER",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "Extension",
    "LogEntry",
    "OverlayReader",
    "PerfectHash",
    "Receipt",
    "ReceiptError",
    "Tile",
    "TileError",
    "TileReader",
    "TiledTree",
    "VerifiedReceipt",
    "bundles_for_size",
    "decode_bundle",
    "encode_bundle",
    "extend",
    "new_tiles",
    "right_edge",
    "tile_at",
    "tile_hashes",
    "tiles_for_size",
    "verify_receipt",
]
