"""Tiles and entry bundles of a tiled transparency log (c2sp.org/tlog-tiles@v0.1.0).

- **Tiles.** Height 8: a tile at level ``l`` holds up to 256 consecutive hashes, each the root of
  ``256**l`` leaves; level 0 holds leaf hashes. Full tiles hold 256 hashes (8,192 bytes); the
  rightmost tile of a level is *partial* (1..255 hashes, path suffix ``.p/<W>``) and is never
  hashed into the level above. Paths: ``tile/<L>/<N>[.p/<W>]``, with ``N`` in zero-padded
  3-digit groups, all but the last prefixed with ``x`` (1234067 is ``x001/x234/067``).
- **Entry bundles** (``tile/entries/<N>[.p/<W>]``) hold the entries of a level-0 tile, each
  prefixed with its length as a big-endian uint16, so an entry holds at most 65,535 bytes.

Pure code: stores read tiles through the :class:`TileReader` interface.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from provenance import merkle
from provenance.errors import FormatError, InputError, VerificationError
from provenance.signednote import MAX_TREE_SIZE

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_LEVEL = 63
ENTRIES = -1
"""The ``level`` of entry bundles in a :class:`Tile`."""
MAX_ENTRY_BYTES = 0xFFFF
HASH_SIZE = merkle.HASH_SIZE
MAX_BUNDLE_BYTES = TILE_WIDTH * (2 + MAX_ENTRY_BYTES)

# At most 7 groups of 3 digits: a checkpoint's size has at most 19 (2**63 - 1).
_TILE_PATH = re.compile(
    r"tile/(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/){0,6}[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?\Z"
)


class TileError(VerificationError):
    """A tile or entry bundle is malformed, or does not match the tree it should belong to."""


# --- tiles -------------------------------------------------------------------------------------


def _index_path(index: int) -> str:
    digits = str(index)
    digits = digits.zfill(-(-len(digits) // 3) * 3)
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


@dataclass(frozen=True, slots=True, order=True)
class Tile:
    """A hash tile (``level`` 0..63) or an entry bundle (``level`` = :data:`ENTRIES`)."""

    level: int
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if not (self.level == ENTRIES or 0 <= self.level <= MAX_LEVEL):
            raise ValueError(f"tile level {self.level} is outside 0..{MAX_LEVEL}")
        if self.index < 0 or not 1 <= self.width <= TILE_WIDTH:
            raise ValueError(f"tile index {self.index} or width {self.width} is out of range")

    @property
    def is_entries(self) -> bool:
        """Whether this is an entry bundle rather than a hash tile."""
        return self.level == ENTRIES

    @property
    def is_partial(self) -> bool:
        """Whether the tile holds fewer than 256 hashes or entries."""
        return self.width < TILE_WIDTH

    @property
    def path(self) -> str:
        """The tile's path under the log prefix, e.g. ``tile/0/x001/234.p/5``."""
        level = "entries" if self.level == ENTRIES else str(self.level)
        suffix = f".p/{self.width}" if self.is_partial else ""
        return f"tile/{level}/{_index_path(self.index)}{suffix}"

    @classmethod
    def from_path(cls, path: str) -> Tile:
        """Parse a tile path (the inverse of :attr:`path`; only the canonical spelling).

        Raises:
            FormatError: not a tile path.
        """
        match = _TILE_PATH.match(path)
        if match is None:
            raise FormatError(f"{path!r}: not a tile path")
        level_text, index_text, width_text = match.groups()
        level = ENTRIES if level_text == "entries" else int(level_text)
        index = int(index_text.replace("x", "").replace("/", ""))
        width = int(width_text) if width_text else TILE_WIDTH
        if level > MAX_LEVEL or (width_text and width >= TILE_WIDTH):
            raise FormatError(f"{path!r}: level or width out of range")
        # Above this no tree has the tile (a checkpoint's size is at most MAX_TREE_SIZE), and a
        # database's signed 64-bit integer could not hold its index.
        if index > MAX_TREE_SIZE:
            raise FormatError(f"{path!r}: tile index above 2**63 - 1")
        tile = cls(level, index, width)
        if tile.path != path:  # e.g. a leading x000 group
            raise FormatError(f"{path!r}: not the canonical path of tile {tile.path!r}")
        return tile


def level_count(level: int, size: int) -> int:
    """How many hashes (or entries, for :data:`ENTRIES`) a tree of ``size`` has at ``level``."""
    return size >> (TILE_HEIGHT * max(level, 0))


def tile_at(level: int, n: int, size: int) -> Tile:
    """Return the tile of the tree of ``size`` that holds hash (or entry) ``n`` of ``level``.

    Raises:
        ValueError: the tree has no such hash.
    """
    count = level_count(level, size)
    if not 0 <= n < count:
        raise ValueError(f"a tree of size {size} has no hash {n} at level {level}")
    index = n // TILE_WIDTH
    full = index < count // TILE_WIDTH
    return Tile(level, index, TILE_WIDTH if full else count % TILE_WIDTH)


def _level_tiles(level: int, size: int, start: int = 0) -> list[Tile]:
    count = level_count(level, size)
    tiles = [Tile(level, i) for i in range(start, count // TILE_WIDTH)]
    if count % TILE_WIDTH:
        tiles.append(Tile(level, count // TILE_WIDTH, count % TILE_WIDTH))
    return tiles


def tiles_for_size(size: int) -> list[Tile]:
    """Return every hash tile of a tree of ``size`` leaves, by level then index."""
    tiles: list[Tile] = []
    level = 0
    while level_count(level, size):
        tiles.extend(_level_tiles(level, size))
        level += 1
    return tiles


def bundles_for_size(size: int) -> list[Tile]:
    """Return every entry bundle of a tree of ``size`` leaves, by index."""
    return _level_tiles(ENTRIES, size)


def new_tiles(old_size: int, new_size: int) -> list[Tile]:
    """Return the tiles and bundles the tree of ``new_size`` has and that of ``old_size`` lacks.

    These are exactly what growing the log writes; a tile of the older tree is never among them.

    Raises:
        ValueError: ``new_size`` is below ``old_size``.
    """
    if new_size < old_size:
        raise ValueError("a log never shrinks")
    tiles: list[Tile] = []
    for level in (ENTRIES, *range(MAX_LEVEL + 1)):
        old, new = level_count(level, old_size), level_count(level, new_size)
        if old == new:
            if level >= 0:
                break
            continue
        tiles.extend(_level_tiles(level, new_size, start=old // TILE_WIDTH))
    return tiles


def right_edge(size: int) -> list[Tile]:
    """Return the partial hash tiles of a tree of ``size`` (one per level at most).

    The root of the tree is computed from these alone.
    """
    tiles: list[Tile] = []
    level = 0
    while count := level_count(level, size):
        if count % TILE_WIDTH:
            tiles.append(Tile(level, count // TILE_WIDTH, count % TILE_WIDTH))
        level += 1
    return tiles


def tile_hashes(data: bytes) -> list[bytes]:
    """Split a hash tile's bytes into its 32-byte hashes."""
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """Return an entry bundle: each entry prefixed with its length as a big-endian uint16.

    Raises:
        InputError: an entry is longer than 65,535 bytes, or more than 256 entries.
    """
    if len(entries) > TILE_WIDTH:
        raise InputError(f"an entry bundle holds at most {TILE_WIDTH} entries")
    parts: list[bytes] = []
    for entry in entries:
        if len(entry) > MAX_ENTRY_BYTES:
            raise InputError(
                f"a log entry of {len(entry)} bytes exceeds the {MAX_ENTRY_BYTES}-byte limit"
            )
        parts.append(len(entry).to_bytes(2, "big"))
        parts.append(entry)
    return b"".join(parts)


def decode_bundle(data: bytes, width: int, *, what: str) -> list[bytes]:
    """Split an entry bundle that must hold exactly ``width`` entries.

    Raises:
        TileError: truncated, too few or too many entries, or bytes left over.
    """
    entries: list[bytes] = []
    position = 0
    while position < len(data):
        if len(entries) == width or position + 2 > len(data):
            raise TileError(f"{what}: more than {width} entries or a truncated length")
        length = int.from_bytes(data[position : position + 2], "big")
        end = position + 2 + length
        if end > len(data):
            raise TileError(f"{what}: entry {len(entries)} is truncated")
        entries.append(data[position + 2 : end])
        position = end
    if len(entries) != width:
        raise TileError(f"{what}: holds {len(entries)} entries, expected {width}")
    return entries


class TileReader(Protocol):
    """Reads stored tiles (hash tiles and entry bundles) by :class:`Tile`.

    A store (a directory, a database, an HTTP server) implements this one call; it may batch.
    """

    def read_tiles(self, tiles: Sequence[Tile]) -> Sequence[bytes]:
        """Return the bytes of each tile, in order.

        Raises:
            ProvenanceError: a tile cannot be read (the store chooses the subclass).
        """
        ...


class OverlayReader:
    """Reads tiles from ``tiles`` first, then from ``base`` (new tiles over a stored tree)."""

    def __init__(self, tiles: Mapping[Tile, bytes], base: TileReader) -> None:
        self.tiles = tiles
        self.base = base

    def read_tiles(self, tiles: Sequence[Tile]) -> Sequence[bytes]:
        """Return the bytes of each tile, from the overlay where it has them."""
        missing = [tile for tile in tiles if tile not in self.tiles]
        found = dict(zip(missing, self.base.read_tiles(missing), strict=True)) if missing else {}
        return [self.tiles[tile] if tile in self.tiles else found[tile] for tile in tiles]


__all__ = [
    "ENTRIES",
    "HASH_SIZE",
    "MAX_BUNDLE_BYTES",
    "MAX_ENTRY_BYTES",
    "MAX_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "OverlayReader",
    "Tile",
    "TileError",
    "TileReader",
    "bundles_for_size",
    "decode_bundle",
    "encode_bundle",
    "level_count",
    "new_tiles",
    "right_edge",
    "tile_at",
    "tile_hashes",
    "tiles_for_size",
]
