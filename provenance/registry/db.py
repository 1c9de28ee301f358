"""The registry's database: tables, engines for SQLite and PostgreSQL, and the single writer.

SQLAlchemy 2 Core (no ORM); one set of tables for both databases. Digests are stored as 32
bytes. SQLite runs in WAL mode (readers never wait for the writer); PostgreSQL through psycopg 3.

**One writer at a time.** Every change (a registration, creating the log) happens in a write
transaction (:meth:`Database.write`) that first takes the database's write lock: on SQLite
``BEGIN IMMEDIATE``, on PostgreSQL a row lock on the log's state (``SELECT ... FOR UPDATE``).
The log's append and its new checkpoint commit in that same transaction as the card's rows, so
a crash leaves either all of a registration or none of it, and never a signed checkpoint
without its tiles.

Tables:

- ``card``: one row per registered card (its id is the SHA-256 of its statement), with the
  first push's answer (log index, receipt);
- ``card_name``: (publisher keyid, name, version) -> card, for the one-card-per-version rule;
- ``digest``: every ``sha256`` and ``textSha256`` of every registered manifest entry, with the
  card and the entry (its number and id); ``WITHOUT ROWID`` on SQLite;
- ``blob``: the exact bytes pushed (envelope, manifest, fingerprint sidecar), content-addressed
  by SHA-256, in chunks of 1 MiB;
- ``log_state``: the log's current signed checkpoint (one row); ``tile``: its tiles and entry
  bundles.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    create_engine,
    event,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from provenance.errors import InputError, LocalIOError

SCHEMA_VERSION = 1
_CREATE_LOCK = 0x70726F76  # "prov": the advisory lock key under which the schema is created
BLOB_CHUNK = 1 << 20
KIND_SHA256 = 0
KIND_TEXT_SHA256 = 1
KINDS = {KIND_SHA256: "sha256", KIND_TEXT_SHA256: "textSha256"}
_SQLITE_BUSY_MS = 600_000
SQLITE_CACHE_KIB = 65536

metadata = MetaData()

meta = Table(
    "registry_meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

card = Table(
    "card",
    metadata,
    Column("no", Integer, primary_key=True, autoincrement=True),
    Column("id", LargeBinary(32), nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("publisher", Text, nullable=False),  # JSON array of keyids
    Column("entries", BigInteger, nullable=False),
    Column("merkle_root", LargeBinary(32), nullable=False),
    Column("envelope_sha256", LargeBinary(32), nullable=False),
    Column("manifest_sha256", LargeBinary(32), nullable=False),
    Column("fingerprints_sha256", LargeBinary(32)),
    Column("registered", Text, nullable=False),
    Column("log_index", BigInteger, nullable=False),
    Column("receipt", LargeBinary, nullable=False),
)

card_name = Table(
    "card_name",
    metadata,
    Column("publisher", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("card_no", Integer, nullable=False),
    PrimaryKeyConstraint("publisher", "name", "version"),
)

digest = Table(
    "digest",
    metadata,
    Column("digest", LargeBinary(32), nullable=False),
    Column("kind", SmallInteger, nullable=False),
    Column("card_no", Integer, nullable=False),
    Column("entry_no", Integer, nullable=False),
    Column("entry_id", Text, nullable=False),
    PrimaryKeyConstraint("digest", "kind", "card_no", "entry_no"),
    sqlite_with_rowid=False,
)

blob = Table(
    "blob",
    metadata,
    Column("sha256", LargeBinary(32), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("sha256", "seq"),
)

log_state = Table(
    "log_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("checkpoint", LargeBinary),
)

tile = Table(
    "tile",
    metadata,
    Column("level", SmallInteger, nullable=False),
    Column("idx", BigInteger, nullable=False),
    Column("width", SmallInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("level", "idx", "width"),
)


def default_url() -> str:
    """Return ``sqlite:///$PROVENANCE_HOME/registry.db`` (``~/.cache/provenance`` by default)."""
    home = os.environ.get("PROVENANCE_HOME")
    base = Path(home) if home else Path.home() / ".cache" / "provenance"
    return f"sqlite:///{base / 'registry.db'}"


def shown(url: str) -> str:
    """Return the database URL ``url`` as it may be shown: without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def engine_url(text: str) -> str:
    """Return the SQLAlchemy URL for a ``--db`` value.

    ``sqlite:///PATH``, ``postgresql://...`` (run through psycopg 3) and
    ``postgresql+psycopg://...`` are accepted.

    Raises:
        InputError: any other URL.
    """
    try:
        url = make_url(text)
    except ArgumentError:
        raise InputError(
            f"{text!r}: not a database URL (sqlite:///PATH or postgresql://...)"
        ) from None
    if url.drivername in ("postgresql", "postgresql+psycopg"):
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if url.drivername == "sqlite" and url.database and url.database != ":memory:":
        return url.render_as_string(hide_password=False)
    raise InputError(
        f"{url.render_as_string()}: use sqlite:///PATH or postgresql://... (psycopg 3)"
    )


class Database:
    """An engine over the registry's tables, with the single-writer transaction.

    Use :meth:`open`.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        # Writers of this process queue here rather than spinning on the database's lock.
        self._writer = threading.Lock()

    @classmethod
    def open(cls, url: str, *, create: bool = True) -> Database:
        """Connect to the database at ``url`` (see :func:`engine_url`) and create the tables.

        Raises:
            InputError: a bad URL, or a database of another schema version.
            LocalIOError: the database cannot be opened or created.
        """
        target = engine_url(url)
        if target.startswith("sqlite:"):
            path = Path(make_url(target).database or "")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LocalIOError(f"{path.parent}: cannot create: {exc.strerror}") from None
            engine = create_engine(target, connect_args={"check_same_thread": False})
            _sqlite_events(engine)
        else:
            engine = create_engine(target, pool_size=8, max_overflow=8, pool_pre_ping=True)
        database = cls(engine)
        try:
            if create:
                database._create()
        except SQLAlchemyError as exc:
            engine.dispose()
            raise LocalIOError(f"database {_safe(target)}: {reason(exc)}") from None
        return database

    def _create(self) -> None:
        with self.write(lock_log=False) as conn:
            if not self.is_sqlite:
                # Registries started at once on an empty database would race to create the
                # tables (PostgreSQL's catalog refuses the second CREATE TYPE of a table): one
                # at a time, until this transaction ends. (SQLite's BEGIN IMMEDIATE does this.)
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_CREATE_LOCK})")
            metadata.create_all(conn)
            found = conn.execute(select(meta.c.value).where(meta.c.key == "schema")).scalar()
            if found is None:
                conn.execute(meta.insert().values(key="schema", value=str(SCHEMA_VERSION)))
            elif found != str(SCHEMA_VERSION):
                raise InputError(
                    f"the database holds a registry of schema version {found}; this version"
                    f" reads version {SCHEMA_VERSION}"
                )
            if not self.is_sqlite:
                # The bytes pushed are stored as they are, out of line: compressing them
                # (PostgreSQL's default for bytea) costs more than it saves on a manifest.
                storage = conn.exec_driver_sql(
                    "SELECT attstorage FROM pg_attribute"
                    " WHERE attrelid = 'blob'::regclass AND attname = 'data'"
                ).scalar()
                if storage != "e":  # else the ALTER would lock the table on every start
                    conn.exec_driver_sql("ALTER TABLE blob ALTER COLUMN data SET STORAGE EXTERNAL")
            insert = (sqlite_insert if self.is_sqlite else pg_insert)(log_state)
            conn.execute(insert.values(id=1, checkpoint=None).on_conflict_do_nothing())

    def close(self) -> None:
        """Close every connection."""
        self.engine.dispose()

    @contextlib.contextmanager
    def write(self, *, lock_log: bool = True) -> Iterator[Connection]:
        """A write transaction holding the database's write lock; commits on a clean exit.

        On SQLite the transaction starts with ``BEGIN IMMEDIATE``; on PostgreSQL it locks the
        log's state row (``lock_log``), which every writer does first.
        """
        with self._writer, self.engine.connect() as conn:
            if self.is_sqlite:
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                if not self.is_sqlite and lock_log:
                    conn.execute(
                        select(log_state.c.id).where(log_state.c.id == 1).with_for_update()
                    )
                yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection (a consistent snapshot for the statements run in it)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def raw_sqlite(self) -> Any:
        """A sqlite3 connection for the fast read paths, outside any transaction.

        The caller keeps it for its thread and closes it (returning it to the pool).
        """
        assert self.is_sqlite
        return self.engine.raw_connection()


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling is off: transactions begin in "begin" below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
        # A larger page cache: indexing a big manifest inserts into a large B-tree.
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def reason(exc: BaseException) -> str:
    """A one-line reason for a database error (the driver's message, without SQL)."""
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0][:300] if text else type(exc).__name__


__all__ = [
    "BLOB_CHUNK",
    "KINDS",
    "KIND_SHA256",
    "KIND_TEXT_SHA256",
    "Database",
    "blob",
    "card",
    "card_name",
    "default_url",
    "shown",
    "digest",
    "engine_url",
    "log_state",
    "metadata",
    "reason",
    "tile",
]
