"""The Merkle tree of a tiled log, read from its tiles; and appending to it.

- **Proofs from tiles.** :class:`TiledTree` answers the hash of any range of leaves from the
  tiles a :class:`~provenance.tlog.tiles.TileReader` gives it (one batched read per proof), so
  inclusion and consistency proofs are :func:`provenance.merkle.inclusion_path` and
  :func:`~provenance.merkle.consistency_path` over tiles. Given the root of a verified
  checkpoint, a :class:`TiledTree` *authenticates* every tile before using it: the partial tiles
  on the right edge must hash to that root, each full tile to its hash in the tile above, and
  each entry to its leaf hash; a log serving anything else is caught (:class:`TileError`).
- **Appending** (:func:`extend`): the new tiles and entry bundles, and the new root, computed from
  the tiles of the current tree and the new entries; nothing already in the tree changes.

RFC 9162 (= RFC 6962) hashing and proof paths come from :mod:`provenance.merkle`. Pure code: no
I/O except through the injected reader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from provenance import merkle
from provenance.errors import InputError
from provenance.tlog.tiles import (
    ENTRIES,
    HASH_SIZE,
    MAX_ENTRY_BYTES,
    MAX_LEVEL,
    TILE_HEIGHT,
    TILE_WIDTH,
    OverlayReader,
    Tile,
    TileError,
    TileReader,
    decode_bundle,
    encode_bundle,
    level_count,
    right_edge,
    tile_at,
    tile_hashes,
)

_ZERO = bytes(HASH_SIZE)
_MAX_MEMO = 1 << 16

T = TypeVar("T")

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
        """Return the hashes a hash tile of this tree holds.

        Raises:
            ValueError: ``tile`` is not a tile of this tree (:meth:`_own`).
            TileError: it is malformed or (when authenticating) does not match.
        """
        self._own(tile)
        return tile_hashes(self._load([tile])[tile])

    def bundle(self, tile: Tile) -> list[bytes]:
        """Return the entries an entry bundle of this tree holds.

        Raises:
            ValueError: ``tile`` is not a bundle of this tree (:meth:`_own`).
            TileError: it is malformed or (when authenticating) does not match.
        """
        self._own(tile)
        data = self._load([tile])[tile]
        return decode_bundle(data, tile.width, what=f"{self.what}: {tile.path}")

    def _own(self, tile: Tile) -> None:
        """Refuse a tile this tree does not have. Its tiles are what its root authenticates: a
        partial tile of an older size (which a log keeps serving) is not on its right edge, and
        nothing above it would be checked against it."""
        try:
            own = tile_at(tile.level, tile.index * TILE_WIDTH, self.size)
        except ValueError:
            own = None
        if own != tile:
            raise ValueError(f"{tile.path} is not a tile of {self.what}'s tree of {self.size}")

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
        count = level_count(level, old)
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


__all__ = ["Extension", "PerfectHash", "TiledTree", "extend"]
