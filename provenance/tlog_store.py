"""The log's writer, over an abstract tile store; and a store that is a directory of static files.

A :class:`TileStore` keeps the current signed checkpoint and the tiles and entry bundles of the
tree it signs. Its one writing primitive is :meth:`TileStore.transaction`: exclusive (one writer
at a time) and atomic (the tiles and the new checkpoint become current together, or not at all).
A database implements it with one transaction (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL row
lock); :class:`DirectoryTileStore` with a directory lock and a write order in which the
checkpoint is written last, so it never names a tile that is not on disk yet.

:class:`LogWriter` appends a batch of entries: in one transaction it verifies the stored
checkpoint with its own key, authenticates the tiles it builds on against that checkpoint's root,
computes the new tiles, checks that the new tree is consistent with the old (an RFC 9162
consistency proof, verified), signs the new checkpoint and commits. Tiles of the old tree are
never rewritten. So the writer never signs a checkpoint inconsistent with the one before it; what
it cannot see is a *different* store (the log restarted on another database): ``log monitor``
catches that.

The directory layout is that of tlog-tiles (``checkpoint``, ``tile/<L>/<N>[.p/<W>]``,
``tile/entries/<N>[.p/<W>]``), so any static web server can serve it as a log.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from provenance import merkle
from provenance._files import atomic_write, read_bytes
from provenance.errors import InputError, LocalIOError, VerificationError
from provenance.keys import PrivateKey
from provenance.lists._lock import fsync_directory, locked
from provenance.signednote import (
    MAX_NOTE_BYTES,
    Checkpoint,
    NoteSigner,
    VerifiedCheckpoint,
    verify_checkpoint,
)
from provenance.tlog import (
    HASH_SIZE,
    MAX_BUNDLE_BYTES,
    OverlayReader,
    Receipt,
    Tile,
    TiledTree,
    extend,
)

CHECKPOINT_NAME = "checkpoint"


class LogTransaction(Protocol):
    """What a writer may do inside :meth:`TileStore.transaction`."""

    def read_checkpoint(self) -> bytes | None:
        """Return the current signed checkpoint, or None if the log was never created."""
        ...

    def read_tiles(self, tiles: Sequence[Tile]) -> Sequence[bytes]:
        """Return the bytes of each stored tile, in order."""
        ...

    def write_tiles(self, tiles: Mapping[Tile, bytes]) -> None:
        """Store tiles; they take effect when the transaction commits."""
        ...

    def write_checkpoint(self, note: bytes) -> None:
        """Make ``note`` the current checkpoint when the transaction commits."""
        ...


class TileStore(Protocol):
    """Where a log keeps its checkpoint and tiles (see the module docstring)."""

    def read_checkpoint(self) -> bytes | None:
        """Return the current signed checkpoint, or None if the log was never created."""
        ...

    def read_tiles(self, tiles: Sequence[Tile]) -> Sequence[bytes]:
        """Return the bytes of each stored tile, in order."""
        ...

    def transaction(self) -> AbstractContextManager[LogTransaction]:
        """Exclusive and atomic: what is written inside commits on a clean exit, else nothing."""
        ...


# --- a directory of static files -----------------------------------------------------------------


class DirectoryTileStore:
    """A log kept as the static files of tlog-tiles under ``root`` (created when first written)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read_checkpoint(self) -> bytes | None:
        """Return the current checkpoint's bytes, or None if there is none.

        Raises:
            InputError, LocalIOError: the file cannot be read, or is too large.
        """
        path = self.root / CHECKPOINT_NAME
        if not path.exists():
            return None
        return read_bytes(path, limit=MAX_NOTE_BYTES, what=str(path))

    def read_tiles(self, tiles: Sequence[Tile]) -> list[bytes]:
        """Return the bytes of each tile.

        Raises:
            LocalIOError: a tile is missing or cannot be read.
        """
        found: list[bytes] = []
        for tile in tiles:
            path = self.root / tile.path
            limit = MAX_BUNDLE_BYTES if tile.is_entries else tile.width * HASH_SIZE
            try:
                found.append(read_bytes(path, limit=limit, what=str(path)))
            except InputError as exc:
                raise LocalIOError(f"the log's tile store lacks a tile: {exc}") from None
        return found

    @contextlib.contextmanager
    def transaction(self) -> Iterator[_DirectoryTransaction]:
        """Lock the directory; on a clean exit write the tiles, then the checkpoint.

        Raises:
            LocalIOError: the directory cannot be created, locked or written.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LocalIOError(f"{self.root}: cannot create the log: {exc.strerror}") from None
        with locked(self.root):
            transaction = _DirectoryTransaction(self)
            yield transaction
            transaction.commit()


class _DirectoryTransaction:
    def __init__(self, store: DirectoryTileStore) -> None:
        self.store = store
        self.tiles: dict[Tile, bytes] = {}
        self.checkpoint: bytes | None = None

    def read_checkpoint(self) -> bytes | None:
        return self.store.read_checkpoint()

    def read_tiles(self, tiles: Sequence[Tile]) -> Sequence[bytes]:
        return self.store.read_tiles(tiles)

    def write_tiles(self, tiles: Mapping[Tile, bytes]) -> None:
        self.tiles.update(tiles)

    def write_checkpoint(self, note: bytes) -> None:
        self.checkpoint = note

    def commit(self) -> None:
        root = self.store.root
        directories: set[Path] = set()
        for tile, data in sorted(self.tiles.items()):
            path = root / tile.path
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LocalIOError(f"{path.parent}: cannot create: {exc.strerror}") from None
            atomic_write(path, data)
            directories.add(path.parent)
        # Every tile is on disk (files and their directory entries) before the checkpoint that
        # names them; a crash in between leaves tiles that no checkpoint names yet.
        for directory in sorted(directories, key=lambda p: len(p.parts), reverse=True):
            fsync_directory(directory)
        if self.checkpoint is not None:
            atomic_write(root / CHECKPOINT_NAME, self.checkpoint)
            fsync_directory(root)


# --- the writer ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Appended:
    """The outcome of one append: where the batch went, the new checkpoint, a receipt each."""

    first_index: int
    checkpoint: Checkpoint
    note: bytes
    """The new signed checkpoint."""
    receipts: tuple[Receipt, ...]


class LogWriter:
    """Appends entries to the log in ``store``, signing checkpoints as ``origin`` with ``key``."""

    def __init__(self, store: TileStore, key: PrivateKey, *, origin: str) -> None:
        """Raises: InputError (``origin`` is not a valid key name), KeyFormatError (not Ed25519)."""
        self.store = store
        self.origin = origin
        self.signer = NoteSigner.ed25519(origin, key)

    def _current(self, transaction: LogTransaction) -> VerifiedCheckpoint:
        unverified = transaction.read_checkpoint()
        if unverified is None:
            raise InputError(f"the log {self.origin!r} has no checkpoint yet; create it first")
        try:
            return verify_checkpoint(unverified, [self.signer.verifier], what="stored checkpoint")
        except VerificationError as exc:
            raise VerificationError(
                f"the store's checkpoint is not one this log ({self.origin!r}, this key) signed;"
                f" refusing to write: {exc}"
            ) from None

    def create(self) -> bytes:
        """Start an empty log: sign and store its size-0 checkpoint.

        Returns:
            The signed checkpoint.

        Raises:
            InputError: the store already holds a checkpoint.
        """
        with self.store.transaction() as transaction:
            if transaction.read_checkpoint() is not None:
                raise InputError("the store already holds a log; it is never started again")
            note = Checkpoint(self.origin, 0, merkle.EMPTY_ROOT).sign([self.signer])
            transaction.write_checkpoint(note)
        return note

    def checkpoint(self) -> VerifiedCheckpoint:
        """Return the current checkpoint, verified with this log's key.

        Raises:
            InputError: the log was never created.
            VerificationError: the stored checkpoint is not this log's.
        """
        unverified = self.store.read_checkpoint()
        if unverified is None:
            raise InputError(f"the log {self.origin!r} has no checkpoint yet; create it first")
        return verify_checkpoint(unverified, [self.signer.verifier], what="stored checkpoint")

    def append(self, entries: Sequence[bytes], *, receipts: bool = True) -> Appended:
        """Append ``entries`` in one transaction and sign the new checkpoint.

        Returns:
            The index of the first entry, the new checkpoint and (unless ``receipts`` is false)
            a verified receipt for each entry.

        Raises:
            InputError: no entries, an entry over 65,535 bytes, or the log was never created.
            VerificationError: the stored checkpoint is not this log's, or the stored tiles do
                not match it (nothing is signed then).
        """
        if not entries:
            raise InputError("nothing to append: the batch is empty")
        with self.store.transaction() as transaction:
            current = self._current(transaction).checkpoint
            tree = TiledTree(
                current.size, transaction, root=current.root, what=f"log {self.origin!r}"
            )
            grown = extend(tree, entries)
            new_tree = TiledTree(grown.size, OverlayReader(grown.tiles, transaction))
            if current.size:
                # Belt and braces: prove the new tree extends the old before signing it.
                merkle.verify_consistency(
                    current.size,
                    grown.size,
                    current.root,
                    grown.root,
                    new_tree.consistency_proof(current.size),
                )
            checkpoint = Checkpoint(self.origin, grown.size, grown.root)
            note = checkpoint.sign([self.signer])
            made: list[Receipt] = []
            if receipts:
                for offset, entry in enumerate(entries):
                    index = current.size + offset
                    proof = new_tree.inclusion_proof(index)
                    merkle.verify_inclusion(
                        index, grown.size, merkle.leaf_hash(entry), proof, grown.root
                    )
                    made.append(Receipt(index, tuple(proof), note, extra=entry))
            transaction.write_tiles(grown.tiles)
            transaction.write_checkpoint(note)
        return Appended(current.size, checkpoint, note, tuple(made))


__all__ = [
    "Appended",
    "DirectoryTileStore",
    "LogTransaction",
    "LogWriter",
    "TileStore",
]
