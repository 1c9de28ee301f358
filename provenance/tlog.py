"""Tiled transparency logs: tiles, proofs read from tiles, receipts, and the registry's log entry.

Formats (pinned): c2sp.org/tlog-tiles@v0.1.0 for tiles and entry bundles, c2sp.org/tlog-proof@v1
for receipts, RFC 9162 (= RFC 6962) for the Merkle tree, whose hashing and proof paths come from
:mod:`provenance.merkle`; signed notes and checkpoints are in :mod:`provenance.signednote`.

- **Tiles.** Height 8: a tile at level ``l`` holds up to 256 consecutive hashes, each the root of
  ``256**l`` leaves; level 0 holds leaf hashes. Full tiles hold 256 hashes (8,192 bytes); the
  rightmost tile of a level is *partial* (1..255 hashes, path suffix ``.p/<W>``) and is never
  hashed into the level above. Paths: ``tile/<L>/<N>[.p/<W>]``, with ``N`` in zero-padded
  3-digit groups, all but the last prefixed with ``x`` (1234067 is ``x001/x234/067``).
- **Entry bundles** (``tile/entries/<N>[.p/<W>]``) hold the entries of a level-0 tile, each
  prefixed with its length as a big-endian uint16, so an entry holds at most 65,535 bytes.
- **Proofs from tiles.** :class:`TiledTree` answers the hash of any range of leaves from the
  tiles a :class:`TileReader` gives it (one batched read per proof), so inclusion and
  consistency proofs are :func:`provenance.merkle.inclusion_path` and
  :func:`~provenance.merkle.consistency_path` over tiles. Given the root of a verified
  checkpoint, a :class:`TiledTree` *authenticates* every tile before using it: the partial tiles
  on the right edge must hash to that root, each full tile to its hash in the tile above, and
  each entry to its leaf hash; a log serving anything else is caught (:class:`TileError`).
- **Appending** (:func:`extend`): the new tiles and entry bundles, and the new root, computed from
  the tiles of the current tree and the new entries; nothing already in the tree changes.
- **Receipts** (:class:`Receipt`): ``c2sp.org/tlog-proof@v1`` text; the ``extra`` line carries
  the log entry itself (base64), so a receipt verifies offline (:func:`verify_receipt`).
- **The log entry** (:class:`LogEntry`): the RFC 8785 bytes of
  ``{"type": "provenance.card/v1", "card", "envelope", "manifest", "merkleRoot", "entries",
  "name", "version", "publisher", "registered"}`` (schema ``log-entry.v1.json``).

Pure code: no I/O except through the injected reader.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from provenance import _json, merkle, schema
from provenance.errors import FormatError, InputError, VerificationError
from provenance.signednote import NoteVerifier, VerifiedCheckpoint, verify_checkpoint
from provenance.trust import format_time, parse_time

if TYPE_CHECKING:
    from provenance.card import VerifiedCard

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_LEVEL = 63
ENTRIES = -1
"""The ``level`` of entry bundles in a :class:`Tile`."""
MAX_ENTRY_BYTES = 0xFFFF
HASH_SIZE = merkle.HASH_SIZE
MAX_BUNDLE_BYTES = TILE_WIDTH * (2 + MAX_ENTRY_BYTES)
RECEIPT_HEADER = "c2sp.org/tlog-proof@v1"
MAX_RECEIPT_BYTES = 2 * 1024 * 1024
MAX_PROOF_HASHES = 63
ENTRY_TYPE = "provenance.card/v1"
LOG_ENTRY_SCHEMA = "log-entry.v1.json"

_TILE_PATH = re.compile(
    r"tile/(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?\Z"
)
_DECIMAL = re.compile(r"(?:0|[1-9][0-9]{0,18})\Z")
_ZERO = bytes(HASH_SIZE)
_MAX_MEMO = 1 << 16

T = TypeVar("T")


class TileError(VerificationError):
    """A tile or entry bundle is malformed, or does not match the tree it should belong to."""


class ReceiptError(VerificationError):
    """A receipt is malformed (a damaged receipt does not verify)."""


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
        tile = cls(level, index, width)
        if tile.path != path:  # e.g. a leading x000 group
            raise FormatError(f"{path!r}: not the canonical path of tile {tile.path!r}")
        return tile


def _count(level: int, size: int) -> int:
    """How many hashes (or entries, for :data:`ENTRIES`) a tree of ``size`` has at ``level``."""
    return size >> (TILE_HEIGHT * max(level, 0))


def tile_at(level: int, n: int, size: int) -> Tile:
    """Return the tile of the tree of ``size`` that holds hash (or entry) ``n`` of ``level``.

    Raises:
        ValueError: the tree has no such hash.
    """
    count = _count(level, size)
    if not 0 <= n < count:
        raise ValueError(f"a tree of size {size} has no hash {n} at level {level}")
    index = n // TILE_WIDTH
    full = index < count // TILE_WIDTH
    return Tile(level, index, TILE_WIDTH if full else count % TILE_WIDTH)


def _level_tiles(level: int, size: int, start: int = 0) -> list[Tile]:
    count = _count(level, size)
    tiles = [Tile(level, i) for i in range(start, count // TILE_WIDTH)]
    if count % TILE_WIDTH:
        tiles.append(Tile(level, count // TILE_WIDTH, count % TILE_WIDTH))
    return tiles


def tiles_for_size(size: int) -> list[Tile]:
    """Return every hash tile of a tree of ``size`` leaves, by level then index."""
    tiles: list[Tile] = []
    level = 0
    while _count(level, size):
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
        old, new = _count(level, old_size), _count(level, new_size)
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
    while count := _count(level, size):
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


# --- the tree, read from tiles -----------------------------------------------------------------

PerfectHash = Callable[[int, int], bytes]
"""``perfect(lo, height)``: the root of the ``2**height`` leaves from ``lo`` (aligned)."""


def _range_hash(lo: int, hi: int, perfect: PerfectHash) -> bytes:
    """MTH(D[lo:hi]) from the roots of the perfect, aligned subtrees it splits into."""
    n = hi - lo
    if n & (n - 1) == 0 and lo % n == 0:
        return perfect(lo, n.bit_length() - 1)
    k = 1 << ((n - 1).bit_length() - 1)
    return merkle.node_hash(_range_hash(lo, lo + k, perfect), _range_hash(lo + k, hi, perfect))


def _root_of(size: int, perfect: PerfectHash) -> bytes:
    if size == 0:
        return merkle.EMPTY_ROOT
    return _range_hash(0, size, perfect)


class TiledTree:
    """The Merkle tree of ``size`` leaves whose tiles ``reader`` holds.

    Tiles are read in one batch per question and kept (except level-0 tiles and bundles read
    while streaming entries). With ``root`` (from a verified checkpoint) every tile is
    authenticated before use; see the module docstring.
    """

    def __init__(
        self, size: int, reader: TileReader, *, root: bytes | None = None, what: str = "log"
    ) -> None:
        if size < 0:
            raise ValueError("a tree size is not negative")
        if root is not None and len(root) != HASH_SIZE:
            raise ValueError("a root is 32 bytes")
        self.size = size
        self.reader = reader
        self.expected_root = root
        self.what = what
        self._tiles: dict[Tile, bytes] = {}
        # Roots of perfect subtrees already computed: proofs of nearby leaves share most of them.
        self._perfect_memo: dict[tuple[int, int], bytes] = {}
        self._edge_checked = root is None
        if root is not None and size == 0 and root != merkle.EMPTY_ROOT:
            raise TileError(f"{what}: an empty tree's root is SHA-256 of nothing, not this one")

    # -- reading and authenticating tiles --

    def _closure(self, tiles: Iterable[Tile]) -> set[Tile]:
        """``tiles`` plus what authenticates them: tiles above full ones, and the right edge."""
        needed: set[Tile] = set()
        stack = list(tiles)
        if not self._edge_checked:
            stack.extend(right_edge(self.size))
        while stack:
            tile = stack.pop()
            if tile in needed or tile in self._tiles:
                continue
            needed.add(tile)
            if tile.is_entries:
                stack.append(Tile(0, tile.index, tile.width))
            elif not tile.is_partial:
                stack.append(tile_at(tile.level + 1, tile.index, self.size))
        return needed

    def _load(self, tiles: Iterable[Tile], *, keep: bool = True) -> dict[Tile, bytes]:
        wanted = set(tiles)
        result = {tile: self._tiles[tile] for tile in wanted if tile in self._tiles}
        missing = wanted - result.keys()
        if not missing and self._edge_checked:
            return result
        needed = self._closure(missing) if self.expected_root is not None else missing
        order = sorted(needed)
        data = list(self.reader.read_tiles(order)) if order else []
        if len(data) != len(order):
            raise TileError(f"{self.what}: the tile store returned {len(data)} of {len(order)}")
        fresh = dict(zip(order, data, strict=True))
        for tile, blob in fresh.items():
            if not tile.is_entries and len(blob) != tile.width * HASH_SIZE:
                raise TileError(
                    f"{self.what}: tile {tile.path} holds {len(blob)} bytes, not"
                    f" {tile.width * HASH_SIZE}"
                )
        if self.expected_root is not None:
            self._authenticate(fresh)
        for tile, blob in fresh.items():
            if keep or tile.is_partial or tile.level >= 1:
                self._tiles[tile] = blob
        result.update((tile, fresh[tile]) for tile in missing)
        return result

    def _authenticate(self, fresh: dict[Tile, bytes]) -> None:
        def lookup(tile: Tile) -> bytes:
            found = fresh.get(tile)
            return found if found is not None else self._tiles[tile]

        if not self._edge_checked:
            root = _root_of(self.size, lambda lo, h: self._perfect(lo, h, lookup))
            if root != self.expected_root:
                raise TileError(
                    f"{self.what}: the tiles of the right edge do not hash to the checkpoint's"
                    f" root (size {self.size})"
                )
            self._edge_checked = True
        for tile, blob in fresh.items():
            if tile.is_entries:
                hashes = tile_hashes(lookup(Tile(0, tile.index, tile.width)))
                entries = decode_bundle(blob, tile.width, what=f"{self.what}: {tile.path}")
                for position, entry in enumerate(entries):
                    if merkle.leaf_hash(entry) != hashes[position]:
                        raise TileError(
                            f"{self.what}: entry {tile.index * TILE_WIDTH + position} in"
                            f" {tile.path} does not match its leaf hash"
                        )
            elif not tile.is_partial:
                parent = tile_at(tile.level + 1, tile.index, self.size)
                position = (tile.index % TILE_WIDTH) * HASH_SIZE
                expected = lookup(parent)[position : position + HASH_SIZE]
                if merkle.perfect_root(tile_hashes(blob)) != expected:
                    raise TileError(
                        f"{self.what}: tile {tile.path} does not match its hash in {parent.path}"
                    )

    def _perfect_tile(self, lo: int, height: int) -> Tile:
        level = min(height // TILE_HEIGHT, MAX_LEVEL)
        return tile_at(level, lo >> (TILE_HEIGHT * level), self.size)

    def _perfect(self, lo: int, height: int, lookup: Callable[[Tile], bytes]) -> bytes:
        level = height // TILE_HEIGHT
        first = lo >> (TILE_HEIGHT * level)
        count = 1 << (height - TILE_HEIGHT * level)
        data = lookup(tile_at(level, first, self.size))
        start = (first % TILE_WIDTH) * HASH_SIZE
        hashes = tile_hashes(data[start : start + count * HASH_SIZE])
        return hashes[0] if count == 1 else merkle.perfect_root(hashes)

    def _with_tiles(self, compute: Callable[[PerfectHash], T]) -> T:
        """Run ``compute`` twice: once to learn which tiles it needs, then on those tiles."""
        needed: set[Tile] = set()
        memo = self._perfect_memo
        if len(memo) > _MAX_MEMO:
            memo.clear()  # before planning: what the plan skips must still be here after it

        def plan(lo: int, height: int) -> bytes:
            if (lo, height) not in memo:
                needed.add(self._perfect_tile(lo, height))
            return _ZERO

        compute(plan)
        tiles = self._load(needed)

        def perfect(lo: int, height: int) -> bytes:
            found = memo.get((lo, height))
            if found is None:
                found = memo[lo, height] = self._perfect(lo, height, tiles.__getitem__)
            return found

        return compute(perfect)

    # -- questions --

    def root_hash(self) -> bytes:
        """Return the tree's root, computed from its tiles.

        Raises:
            TileError: a tile is malformed or (when authenticating) does not match.
        """
        return self._with_tiles(lambda perfect: _root_of(self.size, perfect))

    def range_hash(self, lo: int, hi: int) -> bytes:
        """Return MTH(D[lo:hi]), the hash of the leaves ``lo..hi-1``.

        Raises:
            ValueError: not a non-empty range inside the tree.
        """
        if not 0 <= lo < hi <= self.size:
            raise ValueError(f"[{lo}, {hi}) is not a non-empty range of a tree of {self.size}")
        return self._with_tiles(lambda perfect: _range_hash(lo, hi, perfect))

    def inclusion_proof(self, index: int) -> list[bytes]:
        """Return the RFC 9162 inclusion proof of leaf ``index``.

        Raises:
            IndexError: ``index`` is outside the tree.
            TileError: a tile is malformed or (when authenticating) does not match.
        """
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} is outside a tree of {self.size}")
        return self._with_tiles(
            lambda perfect: merkle.inclusion_path(
                index, self.size, lambda lo, hi: _range_hash(lo, hi, perfect)
            )
        )

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """Return the RFC 9162 consistency proof from the first ``old_size`` leaves.

        Raises:
            ValueError: ``old_size`` is not in 1..size.
            TileError: a tile is malformed or (when authenticating) does not match.
        """
        if not 0 < old_size <= self.size:
            raise ValueError(f"no consistency proof from size {old_size} to {self.size}")
        return self._with_tiles(
            lambda perfect: merkle.consistency_path(
                old_size, self.size, lambda lo, hi: _range_hash(lo, hi, perfect)
            )
        )

    def tile_hashes(self, tile: Tile) -> list[bytes]:
        """Return the hashes a hash tile of this tree holds."""
        return tile_hashes(self._load([tile])[tile])

    def bundle(self, tile: Tile) -> list[bytes]:
        """Return the entries an entry bundle of this tree holds."""
        data = self._load([tile])[tile]
        return decode_bundle(data, tile.width, what=f"{self.what}: {tile.path}")

    def entries(self, start: int, end: int, *, batch: int = 16) -> Iterator[tuple[int, bytes]]:
        """Yield ``(index, entry)`` for the leaves ``start..end-1``, reading bundles in batches.

        Memory stays bounded: level-0 tiles and bundles are not kept once their entries are
        yielded.

        Raises:
            ValueError: not a range inside the tree.
            TileError: a bundle is malformed or (when authenticating) does not match.
        """
        if not 0 <= start <= end <= self.size:
            raise ValueError(f"[{start}, {end}) is not a range of a tree of {self.size}")
        if start == end:
            return
        first, last = start // TILE_WIDTH, (end - 1) // TILE_WIDTH
        for group in range(first, last + 1, batch):
            tiles = [
                tile_at(ENTRIES, index * TILE_WIDTH, self.size)
                for index in range(group, min(group + batch, last + 1))
            ]
            loaded = self._load(tiles, keep=False)
            for tile in tiles:
                entries = decode_bundle(loaded[tile], tile.width, what=f"{self.what}: {tile.path}")
                base = tile.index * TILE_WIDTH
                for offset, entry in enumerate(entries):
                    if start <= base + offset < end:
                        yield base + offset, entry


# --- appending ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Extension:
    """What appending entries to a tree produces: the new tiles and bundles, and the new root."""

    old_size: int
    size: int
    root: bytes
    tiles: dict[Tile, bytes]


def extend(tree: TiledTree, entries: Sequence[bytes]) -> Extension:
    """Return the tiles, bundles and root of ``tree`` with ``entries`` appended.

    Only tiles that the current tree lacks are produced (:func:`new_tiles`); the existing partial
    tiles it builds on are read through ``tree`` (and so authenticated when ``tree`` has a root).

    Raises:
        InputError: an entry longer than 65,535 bytes.
        TileError: a stored tile is malformed or does not match the tree.
    """
    for position, entry in enumerate(entries):
        if len(entry) > MAX_ENTRY_BYTES:
            raise InputError(
                f"entry {position} of the batch has {len(entry)} bytes, more than the"
                f" {MAX_ENTRY_BYTES} a log entry may hold"
            )
    old = tree.size
    size = old + len(entries)
    tiles: dict[Tile, bytes] = {}
    first = old // TILE_WIDTH
    kept = tree.bundle(Tile(ENTRIES, first, old % TILE_WIDTH)) if old % TILE_WIDTH else []
    pending = [*kept, *entries]
    for offset in range(0, len(pending), TILE_WIDTH):
        chunk = pending[offset : offset + TILE_WIDTH]
        tiles[Tile(ENTRIES, first + offset // TILE_WIDTH, len(chunk))] = encode_bundle(chunk)
    appended = [merkle.leaf_hash(entry) for entry in entries]
    level = 0
    while appended:
        count = _count(level, old)
        first = count // TILE_WIDTH
        have = count % TILE_WIDTH
        hashes = [*(tree.tile_hashes(Tile(level, first, have)) if have else []), *appended]
        appended = []
        for offset in range(0, len(hashes), TILE_WIDTH):
            chunk = hashes[offset : offset + TILE_WIDTH]
            tiles[Tile(level, first + offset // TILE_WIDTH, len(chunk))] = b"".join(chunk)
            if len(chunk) == TILE_WIDTH:
                appended.append(merkle.perfect_root(chunk))
        level += 1
    grown = TiledTree(size, OverlayReader(tiles, _CachedReader(tree)), what=tree.what)
    return Extension(old, size, grown.root_hash(), tiles)


class _CachedReader:
    """Reads through an existing tree, so tiles it already read (and checked) are reused."""

    def __init__(self, tree: TiledTree) -> None:
        self.tree = tree

    def read_tiles(self, tiles: Sequence[Tile]) -> Sequence[bytes]:
        loaded = self.tree._load(tiles)  # noqa: SLF001 - the same module
        return [loaded[tile] for tile in tiles]


# --- receipts (c2sp.org/tlog-proof@v1) ---------------------------------------------------------


def _b64decode(text: str) -> bytes | None:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


@dataclass(frozen=True, slots=True)
class Receipt:
    """A tlog-proof: an entry's index, its inclusion proof, and the signed checkpoint."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint: bytes
    """The signed checkpoint note, verbatim."""
    extra: bytes | None = None
    """Opaque extra data; here, the log entry itself."""

    def to_bytes(self) -> bytes:
        """Return the receipt text (UTF-8)."""
        lines = [RECEIPT_HEADER]
        if self.extra is not None:
            lines.append(f"extra {base64.b64encode(self.extra).decode('ascii')}")
        lines.append(f"index {self.index}")
        lines.extend(base64.b64encode(item).decode("ascii") for item in self.proof)
        return ("\n".join(lines) + "\n\n").encode("ascii") + self.checkpoint

    @classmethod
    def parse(cls, unverified_data: bytes, *, what: str) -> Receipt:
        """Split a receipt into its parts; nothing in it is verified here.

        Raises:
            ReceiptError: larger than the limit, not a tlog-proof@v1, or a malformed line.
        """
        if len(unverified_data) > MAX_RECEIPT_BYTES:
            raise ReceiptError(f"{what}: larger than {MAX_RECEIPT_BYTES} bytes")
        split = unverified_data.find(b"\n\n")
        if split < 0:
            raise ReceiptError(f"{what}: not a tlog-proof (no blank line before the checkpoint)")
        try:
            lines = unverified_data[:split].decode("ascii").split("\n")
        except UnicodeDecodeError:
            raise ReceiptError(f"{what}: the receipt's header is not ASCII") from None
        if lines[0] != RECEIPT_HEADER:
            raise ReceiptError(f"{what}: not a {RECEIPT_HEADER} receipt")
        position = 1
        extra: bytes | None = None
        if position < len(lines) and lines[position].startswith("extra "):
            extra = _b64decode(lines[position][len("extra ") :])
            if extra is None:
                raise ReceiptError(f"{what}: the extra line is not base64")
            position += 1
        if position >= len(lines) or not lines[position].startswith("index "):
            raise ReceiptError(f"{what}: no index line")
        index_text = lines[position][len("index ") :]
        if not _DECIMAL.match(index_text):
            raise ReceiptError(f"{what}: index {index_text!r} is not a decimal number")
        proof_lines = lines[position + 1 :]
        if len(proof_lines) > MAX_PROOF_HASHES:
            raise ReceiptError(f"{what}: more than {MAX_PROOF_HASHES} proof hashes")
        proof: list[bytes] = []
        for number, line in enumerate(proof_lines, 1):
            digest = _b64decode(line)
            if digest is None or len(digest) != HASH_SIZE:
                raise ReceiptError(f"{what}: proof line {number} is not the base64 of 32 bytes")
            proof.append(digest)
        return cls(int(index_text), tuple(proof), unverified_data[split + 2 :], extra)


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    """A receipt whose checkpoint a trusted log key signed and whose proof holds."""

    index: int
    entry: bytes
    """The logged entry: its leaf hash is in the tree the checkpoint signs."""
    checkpoint: VerifiedCheckpoint


def verify_receipt(
    receipt: Receipt,
    verifiers: Sequence[NoteVerifier],
    *,
    entry: bytes | None = None,
    what: str,
) -> VerifiedReceipt:
    """Verify a receipt offline: the checkpoint, then the inclusion of the entry.

    ``entry`` is the logged entry when known out of band; otherwise the receipt's ``extra``
    line is taken as the entry, which the inclusion proof then authenticates.

    Raises:
        ReceiptError: no entry (no ``extra`` line and none given).
        NoteError, SignatureError: the checkpoint is malformed or not signed by a trusted log
            key named as its origin.
        ProofError: the inclusion proof does not lead from the entry to the checkpoint's root
            (wrong index, size, proof or entry).
    """
    leaf_data = entry if entry is not None else receipt.extra
    if leaf_data is None:
        raise ReceiptError(f"{what}: the receipt has no extra line holding the log entry")
    verified = verify_checkpoint(receipt.checkpoint, verifiers, what=f"{what}: checkpoint")
    checkpoint = verified.checkpoint
    try:
        merkle.verify_inclusion(
            receipt.index,
            checkpoint.size,
            merkle.leaf_hash(leaf_data),
            receipt.proof,
            checkpoint.root,
        )
    except merkle.ProofError as exc:
        raise merkle.ProofError(
            f"{what}: entry {receipt.index} is not in the tree of size {checkpoint.size} that"
            f" the checkpoint signs: {exc}"
        ) from None
    return VerifiedReceipt(receipt.index, leaf_data, verified)


# --- the registry's log entry -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One registration in the log (digests as lowercase hex)."""

    card: str
    """The card's id: SHA-256 of the statement (the DSSE payload bytes)."""
    envelope: str
    """SHA-256 of the envelope bytes pushed."""
    manifest: str
    """SHA-256 of the manifest bytes pushed."""
    merkle_root: str
    entries: int
    name: str
    version: str
    publisher: tuple[str, ...]
    """keyids of the card's trusted dataset-publisher signatures."""
    registered: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "type": ENTRY_TYPE,
            "card": self.card,
            "envelope": self.envelope,
            "manifest": self.manifest,
            "merkleRoot": self.merkle_root,
            "entries": self.entries,
            "name": self.name,
            "version": self.version,
            "publisher": list(self.publisher),
            "registered": format_time(self.registered),
        }

    def to_bytes(self) -> bytes:
        """Return the entry's RFC 8785 bytes, checked against the schema and the size cap.

        Raises:
            InputError: the entry does not match its schema, or exceeds 65,535 bytes.
        """
        document = self.to_dict()
        schema.validate(document, LOG_ENTRY_SCHEMA, what="log entry")
        data = _json.canonical(document)
        if len(data) > MAX_ENTRY_BYTES:
            raise InputError(f"the log entry has {len(data)} bytes, more than {MAX_ENTRY_BYTES}")
        return data

    @classmethod
    def for_card(
        cls,
        card: VerifiedCard,
        *,
        statement: bytes,
        envelope_sha256: str,
        manifest_sha256: str,
        at: dt.datetime,
    ) -> LogEntry:
        """Return the entry that registers ``card`` (verified from the DSSE payload ``statement``).

        ``envelope_sha256`` and ``manifest_sha256`` are the digests of the bytes pushed; ``at``
        is the time of registration.
        """
        predicate = card.predicate
        return cls(
            card=hashlib.sha256(statement).hexdigest(),
            envelope=envelope_sha256,
            manifest=manifest_sha256,
            merkle_root=predicate.manifest.merkle_root,
            entries=predicate.manifest.entries,
            name=predicate.name,
            version=predicate.version,
            publisher=tuple(sorted(card.publishers)),
            registered=at,
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, what: str) -> LogEntry:
        """Parse an entry: strict JSON, its schema, and its RFC 8785 form byte for byte.

        Raises:
            FormatError, SchemaError: not a ``provenance.card/v1`` entry in canonical form.
        """
        document = _json.loads_object(data, what=what)
        schema.validate(document, LOG_ENTRY_SCHEMA, what=what)
        if _json.canonical(document) != data:
            raise FormatError(f"{what}: the entry is not in RFC 8785 canonical form")
        return cls(
            card=document["card"],
            envelope=document["envelope"],
            manifest=document["manifest"],
            merkle_root=document["merkleRoot"],
            entries=document["entries"],
            name=document["name"],
            version=document["version"],
            publisher=tuple(document["publisher"]),
            registered=parse_time(document["registered"], what=f"{what}: registered"),
        )


__all__ = [
    "ENTRIES",
    "ENTRY_TYPE",
    "MAX_ENTRY_BYTES",
    "RECEIPT_HEADER",
    "TILE_WIDTH",
    "Extension",
    "LogEntry",
    "OverlayReader",
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
