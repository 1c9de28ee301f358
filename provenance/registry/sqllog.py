"""The transparency log kept in SQL: a :class:`~provenance.tlog_store.TileStore`.

:class:`SqlTileStore` implements the tile store interface over the ``tile`` and ``log_state``
tables. Its :meth:`~SqlTileStore.transaction` is the database's write transaction (SQLite
``BEGIN IMMEDIATE``, a PostgreSQL row lock; :meth:`provenance.registry.db.Database.write`),
so appends are exclusive and a new checkpoint commits with its tiles or not at all.

A registration appends inside the transaction that also stores the card: :func:`bound` gives a
store whose "transaction" is that one, already open, so the card's rows, the tiles and the
checkpoint commit together.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select, tuple_, update

from provenance.errors import LocalIOError
from provenance.registry import db
from provenance.tlog import Tile

_READ_BATCH = 200
_TILE_SQL = "SELECT data FROM tile WHERE level = ? AND idx = ? AND width = ?"
_CHECKPOINT_SQL = "SELECT checkpoint FROM log_state WHERE id = 1"


def _read_checkpoint(conn: Connection) -> bytes | None:
    found = conn.execute(select(db.log_state.c.checkpoint).where(db.log_state.c.id == 1)).first()
    return None if found is None or found[0] is None else bytes(found[0])


def _read_tiles(conn: Connection, tiles: Sequence[Tile]) -> list[bytes]:
    found: dict[tuple[int, int, int], bytes] = {}
    wanted = list(dict.fromkeys(tiles))
    columns = (db.tile.c.level, db.tile.c.idx, db.tile.c.width)
    for start in range(0, len(wanted), _READ_BATCH):
        keys = [(t.level, t.index, t.width) for t in wanted[start : start + _READ_BATCH]]
        rows = conn.execute(
            select(*columns, db.tile.c.data).where(tuple_(*columns).in_(keys))
        ).all()
        for level, index, width, data in rows:
            found[(level, index, width)] = bytes(data)
    result = []
    for tile in tiles:
        data = found.get((tile.level, tile.index, tile.width))
        if data is None:
            raise LocalIOError(f"the log's tile store lacks tile {tile.path}")
        result.append(data)
    return result


class _OnConnection:
    """Reads of the log through one connection whose transaction the caller holds open."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def read_checkpoint(self) -> bytes | None:
        return _read_checkpoint(self.conn)

    def read_tiles(self, tiles: Sequence[Tile]) -> Sequence[bytes]:
        return _read_tiles(self.conn, tiles)


class _Transaction(_OnConnection):
    """A :class:`~provenance.tlog_store.LogTransaction` on an open write transaction."""

    def write_tiles(self, tiles: Mapping[Tile, bytes]) -> None:
        if tiles:
            # A tile's bytes never change once written (tiles of the old tree are never
            # among those an append writes), so a plain insert is right: a duplicate is a bug.
            self.conn.execute(
                db.tile.insert(),
                [
                    {"level": t.level, "idx": t.index, "width": t.width, "data": data}
                    for t, data in tiles.items()
                ],
            )

    def write_checkpoint(self, note: bytes) -> None:
        self.conn.execute(
            update(db.log_state).where(db.log_state.c.id == 1).values(checkpoint=note)
        )


class SqlTileStore:
    """The log in the registry's database (see the module docstring).

    Reads outside a write transaction need no snapshot: a tile, named by its level, index and
    width, never changes once written. On SQLite they run on a sqlite3 connection kept per
    thread (a point query per tile), elsewhere through SQLAlchemy.
    """

    def __init__(self, database: db.Database) -> None:
        self.database = database
        self._local = threading.local()

    def _cursor(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self.database.raw_sqlite()
        return connection.cursor()

    def read_checkpoint(self) -> bytes | None:
        """Return the current signed checkpoint, or None before the log is created."""
        if self.database.is_sqlite:
            found = self._cursor().execute(_CHECKPOINT_SQL).fetchone()
            return None if found is None or found[0] is None else bytes(found[0])
        with self.database.read() as conn:
            return _read_checkpoint(conn)

    def read_tiles(self, tiles: Sequence[Tile]) -> Sequence[bytes]:
        """Return the bytes of each tile, in order.

        Raises:
            LocalIOError: a tile is not stored.
        """
        if not self.database.is_sqlite:
            with self.database.read() as conn:
                return _read_tiles(conn, tiles)
        result = []
        for tile in tiles:
            data = self.read_tile(tile)
            if data is None:
                raise LocalIOError(f"the log's tile store lacks tile {tile.path}")
            result.append(data)
        return result

    def read_tile(self, tile: Tile) -> bytes | None:
        """Return the bytes of one tile, or None if it is not stored (for serving)."""
        if self.database.is_sqlite:
            found = (
                self._cursor().execute(_TILE_SQL, (tile.level, tile.index, tile.width)).fetchone()
            )
            return None if found is None else bytes(found[0])
        with self.database.read() as conn:
            found = conn.execute(
                select(db.tile.c.data).where(
                    db.tile.c.level == tile.level,
                    db.tile.c.idx == tile.index,
                    db.tile.c.width == tile.width,
                )
            ).first()
        return None if found is None else bytes(found[0])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[_Transaction]:
        """The database's write transaction: exclusive, committed on a clean exit."""
        with self.database.write() as conn:
            yield _Transaction(conn)


class _BoundStore(_OnConnection):
    """A tile store whose transaction is one the caller already holds open."""

    @contextlib.contextmanager
    def transaction(self) -> Iterator[_Transaction]:
        yield _Transaction(self.conn)


def bound(conn: Connection) -> _BoundStore:
    """A tile store appending within ``conn``'s open write transaction (the caller commits)."""
    return _BoundStore(conn)


__all__ = ["SqlTileStore", "bound"]
