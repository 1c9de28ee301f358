"""What the registry stores and answers from: cards, their digests, the bytes pushed.

Reads (:class:`Storage`): the registered cards, the exact bytes pushed (streamed from the
``blob`` table), and digest lookups, by full digest (:meth:`Storage.lookup`) or by a 5-hex
prefix (:meth:`Storage.range`). Lookups on SQLite run on a sqlite3 connection kept per thread
(:meth:`Storage.lookup_fast`), held equal to the plain SQLAlchemy query by a test; batches
are answered from an in-memory copy of the digests (:meth:`Storage.lookup_json`,
:mod:`provenance.registry.digestindex`) while it holds every registered card.

Writes (:func:`insert_card`, :func:`insert_prepared`, :class:`BlobWriter`, :func:`store_blob`)
happen inside a registration's write transaction (:mod:`provenance.registry.admission`); each
block of digests is one ``INSERT ... SELECT`` over ``json_each`` on SQLite and one ``COPY``
on PostgreSQL (:func:`prepare_digests`), held equal by a test to the plain rows of
:func:`digest_rows` and :func:`insert_digests`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import Connection, and_, func, select
from sqlalchemy.exc import SQLAlchemyError

from provenance._kernels import hex_digest_rows
from provenance.errors import LocalIOError
from provenance.manifest import ManifestEntry
from provenance.registry import db
from provenance.registry.digestindex import DigestIndex

_log = logging.getLogger("provenance.registry")

MAX_LOOKUP_DIGESTS = 1000
MAX_INDEX_ROWS = 4_000_000
"""The most digest rows kept in memory for batched lookups (about 80 bytes each)."""
_SHA256 = attrgetter("sha256")
_ID = attrgetter("id")
_READ_CHUNK = db.BLOB_CHUNK
_DIGEST_COLUMNS = "digest, kind, card_no, entry_no, entry_id"


@dataclass(frozen=True, slots=True)
class CardRecord:
    """A registered card: what its first push answered, and what was stored."""

    no: int
    id: str
    name: str
    version: str
    publisher: tuple[str, ...]
    entries: int
    merkle_root: str
    envelope_sha256: str
    manifest_sha256: str
    fingerprints_sha256: str | None
    registered: str
    log_index: int
    receipt: bytes

    def to_dict(self, *, receipt: bool) -> dict[str, Any]:
        """Return the JSON form: ``{"id", "name", "version", "publisher", "entries",
        "logIndex", "registered", "fingerprints"}``, plus ``"receipt"`` when asked."""
        document: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "publisher": list(self.publisher),
            "entries": self.entries,
            "logIndex": self.log_index,
            "registered": self.registered,
            "fingerprints": self.fingerprints_sha256 is not None,
        }
        if receipt:
            document["receipt"] = self.receipt.decode("utf-8")
        return document

    def match(self, entry_id: str) -> dict[str, Any]:
        """Return a lookup match of entry ``entry_id`` of this card."""
        return {
            "card": self.id,
            "name": self.name,
            "version": self.version,
            "publisher": list(self.publisher),
            "entry": entry_id,
        }


def _hex(value: bytes | None) -> str | None:
    return None if value is None else bytes(value).hex()


def _record(row: Any) -> CardRecord:
    return CardRecord(
        no=row.no,
        id=bytes(row.id).hex(),
        name=row.name,
        version=row.version,
        publisher=tuple(json.loads(row.publisher)),
        entries=row.entries,
        merkle_root=bytes(row.merkle_root).hex(),
        envelope_sha256=bytes(row.envelope_sha256).hex(),
        manifest_sha256=bytes(row.manifest_sha256).hex(),
        fingerprints_sha256=_hex(row.fingerprints_sha256),
        registered=row.registered,
        log_index=row.log_index,
        receipt=bytes(row.receipt),
    )


# --- writing (inside a registration's transaction) ---------------------------------------------


def card_by_id(conn: Connection, card_id: str) -> CardRecord | None:
    """Return the card registered under ``card_id`` (hex), or None."""
    row = conn.execute(select(db.card).where(db.card.c.id == bytes.fromhex(card_id))).first()
    return None if row is None else _record(row)


def card_under(conn: Connection, publisher: str, name: str, version: str) -> CardRecord | None:
    """Return the card registered under (publisher keyid, name, version), or None."""
    row = conn.execute(
        select(db.card)
        .join(db.card_name, db.card_name.c.card_no == db.card.c.no)
        .where(
            db.card_name.c.publisher == publisher,
            db.card_name.c.name == name,
            db.card_name.c.version == version,
        )
    ).first()
    return None if row is None else _record(row)


def insert_card(conn: Connection, record: CardRecord) -> int:
    """Insert the card's row and its (publisher, name, version) rows; return its number."""
    values = {
        "id": bytes.fromhex(record.id),
        "name": record.name,
        "version": record.version,
        "publisher": json.dumps(list(record.publisher)),
        "entries": record.entries,
        "merkle_root": bytes.fromhex(record.merkle_root),
        "envelope_sha256": bytes.fromhex(record.envelope_sha256),
        "manifest_sha256": bytes.fromhex(record.manifest_sha256),
        "fingerprints_sha256": (
            None
            if record.fingerprints_sha256 is None
            else bytes.fromhex(record.fingerprints_sha256)
        ),
        "registered": record.registered,
        "log_index": record.log_index,
        "receipt": record.receipt,
    }
    number = conn.execute(db.card.insert().values(**values).returning(db.card.c.no)).scalar_one()
    conn.execute(
        db.card_name.insert(),
        [
            {"publisher": p, "name": record.name, "version": record.version, "card_no": number}
            for p in record.publisher
        ],
    )
    return int(number)


def set_log_entry(conn: Connection, number: int, log_index: int, receipt: bytes) -> None:
    """Record where card ``number`` went in the log and its receipt."""
    conn.execute(
        db.card.update().where(db.card.c.no == number).values(log_index=log_index, receipt=receipt)
    )


def digest_rows(
    card_no: int, first: int, entries: Sequence[ManifestEntry]
) -> list[tuple[Any, ...]]:
    """The ``digest`` rows of a block of entries (``first`` is the first entry's number)."""
    fromhex = bytes.fromhex
    numbers = range(first, first + len(entries))
    rows = list(
        zip(
            map(fromhex, map(_SHA256, entries)),
            repeat(db.KIND_SHA256),
            repeat(card_no),
            numbers,
            map(_ID, entries),
            strict=False,
        )
    )
    texts = [(n, e) for n, e in zip(numbers, entries, strict=True) if e.textSha256 is not None]
    rows.extend(
        (fromhex(entry.textSha256), db.KIND_TEXT_SHA256, card_no, number, entry.id)  # type: ignore[arg-type]
        for number, entry in texts
    )
    return rows


def insert_digests(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Bulk insert ``digest`` rows: ``executemany`` on SQLite, binary ``COPY`` on PostgreSQL.

    The plain path; registrations use :func:`prepare_digests` and :class:`DigestWriter`, which
    a test holds equal to it.
    """
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.executemany(f"INSERT INTO digest ({_DIGEST_COLUMNS}) VALUES (?, ?, ?, ?, ?)", rows)
        cursor.close()
        return
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY digest ({_DIGEST_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["bytea", "int2", "int4", "int4", "text"])
        for row in rows:
            copy.write_row(row)


# SQLite: one statement per kind and block, which runs in C from end to end (and without the
# GIL, so that the manifest's next block is checked meanwhile): the block's digests are one
# blob of 32-byte rows, its ids one JSON array (encoded here from the checked entries), its
# entries' numbers their positions in that array.
_SQLITE_BLOCK = (
    f"INSERT INTO digest ({_DIGEST_COLUMNS})"
    " SELECT substr(:digests, key * 32 + 1, 32), :kind, :card, :first + key, value"
    " FROM json_each(:ids)"
)
# The textSha256 rows come in no order (the manifest is ordered by sha256): inserted as they
# come, each would land on a random page of the digest B-tree, which costs more than twice
# the B-tree work of inserting them in key order. So they are staged in a temporary table (an
# append; on disk past its page cache, not in memory) and go into the digest table at the end
# in one sorted pass (:class:`DigestWriter`).
_STAGE = "digest_stage"
_SQLITE_TEXT_STAGE = (
    f"INSERT INTO temp.{_STAGE} (digest, entry_no, entry_id)"
    " SELECT substr(:digests, key * 32 + 1, 32), :first + key, value"
    " FROM json_each(:ids) WHERE substr(:has, key + 1, 1) = x'01'"
)
_SQLITE_STAGED = (
    f"INSERT INTO digest ({_DIGEST_COLUMNS})"
    f" SELECT digest, {db.KIND_TEXT_SHA256}, :card, entry_no, entry_id FROM temp.{_STAGE}"
    " ORDER BY digest, entry_no"
)
_NO_TEXT = "0" * 64
_ENCODE = msgspec.json.Encoder().encode
_INDEX_FROM = 16
"""Lookups of fewer digests take the database (a query is as fast for a few)."""


@dataclass(frozen=True, slots=True)
class PreparedDigests:
    """The ``digest`` rows of a block of entries, made ready for one bulk insert.

    On SQLite, :attr:`sqlite` holds the parameters of the block's statements (or None when the
    block must take the plain path); on PostgreSQL, :attr:`copy` holds the rows as ``COPY``
    text. :attr:`rows` is the number of rows.
    """

    rows: int
    sqlite: list[tuple[str, dict[str, Any]]] | None = None
    copy: bytes | None = None
    plain: list[tuple[Any, ...]] | None = None


def prepare_digests(
    dialect: str, card_no: int, first: int, entries: Sequence[ManifestEntry]
) -> PreparedDigests:
    """The rows :func:`digest_rows` gives for a block of checked entries, prepared for
    :meth:`DigestWriter.write` on the database ``dialect`` (``sqlite`` or ``postgresql``)."""
    ids = list(map(_ID, entries))
    sha256 = list(map(_SHA256, entries))
    texts = [entry.textSha256 for entry in entries]
    text_count = len(texts) - texts.count(None)
    rows = len(entries) + text_count
    if dialect == "sqlite":
        encoded = _ENCODE(ids)
        # Ids hold no control character (the manifest's id rules), so the only escapes are
        # for quotes and backslashes; anything else (which SQLite's JSON reader might read
        # differently) takes the plain path.
        if b"\\u" in encoded:
            return PreparedDigests(rows, plain=digest_rows(card_no, first, entries))
        common = {"first": first, "ids": encoded}
        digests = bytes.fromhex("".join(sha256))
        sha_parameters = {**common, "card": card_no, "kind": db.KIND_SHA256, "digests": digests}
        statements = [(_SQLITE_BLOCK, sha_parameters)]
        if text_count:
            text_parameters = {
                **common,
                "digests": bytes.fromhex("".join([t or _NO_TEXT for t in texts])),
                "has": bytes([t is not None for t in texts]),
            }
            statements.append((_SQLITE_TEXT_STAGE, text_parameters))
        return PreparedDigests(rows, sqlite=statements)
    # COPY text: bytea as \\x<hex> (the digests are checked lowercase hex already); ids hold
    # no control character (no tab or newline), so only a backslash needs escaping.
    card = str(card_no)
    escaped = [i.replace("\\", "\\\\") if "\\" in i else i for i in ids]
    lines = [
        f"\\\\x{digest}\t0\t{card}\t{number}\t{entry_id}\n"
        for number, digest, entry_id in zip(
            range(first, first + len(entries)), sha256, escaped, strict=True
        )
    ]
    if text_count:
        lines.extend(
            f"\\\\x{text}\t1\t{card}\t{number}\t{entry_id}\n"
            for number, text, entry_id in zip(
                range(first, first + len(entries)), texts, escaped, strict=True
            )
            if text is not None
        )
    return PreparedDigests(rows, copy="".join(lines).encode("utf-8"))


class DatabaseError(LocalIOError):
    """The database refused a statement of a registration (not the push's fault)."""


class DigestWriter:
    """Writes the ``digest`` rows of card ``card_no``'s manifest, a block at a time (the blocks
    of :func:`prepare_digests`), inside a registration's write transaction.

    On SQLite the sha256 rows go in as each block comes (the manifest is ordered by sha256, so
    they arrive in key order), while the textSha256 rows are staged and go in at
    :meth:`close`, sorted. On PostgreSQL each block is one ``COPY``. Every row is in the
    ``digest`` table once :meth:`close` returns; a test holds the rows equal to those of
    :func:`digest_rows` and :func:`insert_digests`. Until then the rows are only in the
    transaction, whose rollback takes them (and the staging table) away.
    """

    def __init__(self, conn: Connection, card_no: int) -> None:
        """Raises: DatabaseError: the database refused a statement (as :meth:`write`)."""
        self._conn = conn
        self._card_no = card_no
        self._errors: type[Exception] = conn.dialect.loaded_dbapi.Error
        self._cursor: Any = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        self._staging = conn.dialect.name == "sqlite"
        if self._staging:
            with self._said():
                # Temporary tables belong to this connection and to this transaction.
                self._cursor.execute(f"DROP TABLE IF EXISTS temp.{_STAGE}")
                self._cursor.execute(
                    f"CREATE TEMP TABLE {_STAGE}"
                    " (digest BLOB NOT NULL, entry_no INTEGER NOT NULL, entry_id TEXT NOT NULL)"
                )

    @contextlib.contextmanager
    def _said(self) -> Iterator[None]:
        # The raw cursor's errors are the driver's, not SQLAlchemy's: said as the server says
        # a database error (503), not left to surface as a server error.
        try:
            yield
        except self._errors as exc:
            message = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise DatabaseError(f"the registry's database could not answer: {message}") from None

    def write(self, prepared: PreparedDigests) -> None:
        """Write (or, for textSha256 rows on SQLite, stage) the rows of ``prepared``.

        Raises:
            DatabaseError: the database refused a statement (a full disk, ...).
        """
        with self._said():
            if prepared.plain is not None:
                insert_digests(self._conn, prepared.plain)
            elif prepared.sqlite is not None:
                for statement, parameters in prepared.sqlite:
                    self._cursor.execute(statement, parameters)
            elif prepared.copy:
                with self._cursor.copy(f"COPY digest ({_DIGEST_COLUMNS}) FROM STDIN") as copy:
                    copy.write(prepared.copy)

    def close(self) -> None:
        """Insert the staged rows, in key order, and drop the staging table.

        Raises:
            DatabaseError: as :meth:`write`.
        """
        try:
            if self._staging:
                with self._said():
                    self._cursor.execute(_SQLITE_STAGED, {"card": self._card_no})
                    self._cursor.execute(f"DROP TABLE temp.{_STAGE}")
                self._staging = False
        finally:
            self._cursor.close()

    def abandon(self) -> None:
        """Close the raw cursor of a registration that failed: its rows, and the staging table,
        stay in the transaction, whose rollback takes them away. Raises nothing."""
        self._staging = False
        with contextlib.suppress(Exception):
            self._cursor.close()


def store_blob(conn: Connection, path: Path, expected: str, *, what: str) -> None:
    """Store the bytes of ``path`` under their SHA-256, which must be ``expected`` (hex).

    The digest is computed from the very bytes stored; a file that is not ``expected`` raises
    (and the transaction, rolled back, stores nothing). Bytes already stored are kept.

    Raises:
        LocalIOError: the file cannot be read, or its bytes are not ``expected``.
    """
    key = bytes.fromhex(expected)
    if conn.execute(select(db.blob.c.seq).where(db.blob.c.sha256 == key).limit(1)).first():
        return
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            seq = 0
            while chunk := handle.read(_READ_CHUNK):
                digest.update(chunk)
                conn.execute(db.blob.insert().values(sha256=key, seq=seq, data=chunk))
                seq += 1
            if seq == 0:  # empty: one empty chunk, so that it is stored (Storage.blob)
                conn.execute(db.blob.insert().values(sha256=key, seq=0, data=b""))
    except OSError as exc:
        raise LocalIOError(f"{what}: cannot read the upload: {exc.strerror}") from None
    if digest.hexdigest() != expected:
        raise LocalIOError(f"{what}: the upload changed while it was stored")


class BlobWriter:
    """Stores bytes handed to it in pieces under their SHA-256, which must be ``expected``
    (hex): :func:`store_blob` for bytes that arrive while they are read for another purpose.

    Nothing is written when those bytes are stored already. :meth:`close` checks the digest
    of exactly the bytes given (and stored).
    """

    def __init__(self, conn: Connection, expected: str, *, what: str) -> None:
        self._conn = conn
        self._key = bytes.fromhex(expected)
        self._expected = expected
        self._what = what
        self._digest = hashlib.sha256()
        self._buffer = bytearray()
        self._seq = 0
        self._stored = (
            conn.execute(
                select(db.blob.c.seq).where(db.blob.c.sha256 == self._key).limit(1)
            ).first()
            is not None
        )

    def write(self, data: bytes) -> None:
        """Take the next ``data``; whole chunks of 1 MiB are stored as they fill up."""
        self._digest.update(data)
        if self._stored:
            return
        self._buffer += data
        if len(self._buffer) >= _READ_CHUNK:
            view = memoryview(self._buffer)
            whole = len(view) - len(view) % _READ_CHUNK
            for start in range(0, whole, _READ_CHUNK):
                self._insert(bytes(view[start : start + _READ_CHUNK]))
            rest = bytes(view[whole:])
            view.release()
            self._buffer = bytearray(rest)

    def _insert(self, chunk: bytes) -> None:
        self._conn.execute(db.blob.insert().values(sha256=self._key, seq=self._seq, data=chunk))
        self._seq += 1

    def close(self) -> None:
        """Store the last chunk and check the digest of everything given.

        Raises:
            LocalIOError: the bytes given are not ``expected``.
        """
        # Empty bytes are stored too, as one empty chunk: a blob without rows is one not stored.
        if (self._buffer or self._seq == 0) and not self._stored:
            self._insert(bytes(self._buffer))
            self._buffer = bytearray()
        if self._digest.hexdigest() != self._expected:
            raise LocalIOError(f"{self._what}: the bytes stored are not the ones committed to")


# --- reading -------------------------------------------------------------------------------------


class Storage:
    """Read access to the registry's database (see the module docstring)."""

    def __init__(self, database: db.Database, *, index_rows: int = MAX_INDEX_ROWS) -> None:
        """``index_rows``: the most digest rows kept in memory for batched lookups (0: none)."""
        self.database = database
        self._cards: dict[int, CardRecord] = {}
        self._templates: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._index_rows = index_rows
        self._index: DigestIndex | None = None
        self._builder: threading.Thread | None = None
        self._failed_at: int | None = None

    def close(self) -> None:
        """Forget the cache (connections are the database's)."""
        self._cards = {}

    # -- cards --

    def cards(self) -> list[CardRecord]:
        """Every registered card, newest first."""
        with self.database.read() as conn:
            rows = conn.execute(select(db.card).order_by(db.card.c.log_index.desc())).all()
        return [_record(row) for row in rows]

    def card(self, card_id: str) -> CardRecord | None:
        """The card registered under ``card_id`` (lowercase hex), or None."""
        with self.database.read() as conn:
            return card_by_id(conn, card_id)

    def count(self) -> int:
        """How many cards are registered."""
        with self.database.read() as conn:
            return int(conn.execute(select(func.count()).select_from(db.card)).scalar_one())

    def _card_numbers(self, numbers: Iterable[int]) -> dict[int, CardRecord]:
        """The cards of ``numbers``, from the cache (refreshed when one is new)."""
        wanted = set(numbers)
        if not wanted <= self._cards.keys():
            with self._lock, self.database.read() as conn:
                rows = conn.execute(select(db.card).where(db.card.c.no.in_(wanted))).all()
                cards = dict(self._cards)
                cards.update((row.no, _record(row)) for row in rows)
                # What every match of a card starts from (its entry is added per match).
                self._templates = {
                    number: {k: v for k, v in card.match("").items() if k != "entry"}
                    for number, card in cards.items()
                }
                self._cards = cards
        return self._cards

    def blob(self, sha256: str) -> Iterator[bytes] | None:
        """The stored bytes with SHA-256 ``sha256`` (hex) in chunks, or None if not stored."""
        key = bytes.fromhex(sha256)
        with self.database.read() as conn:
            count = conn.execute(
                select(func.count()).select_from(db.blob).where(db.blob.c.sha256 == key)
            ).scalar_one()
        if not count:
            return None

        def chunks() -> Iterator[bytes]:
            for seq in range(count):
                with self.database.read() as conn:
                    data = conn.execute(
                        select(db.blob.c.data).where(
                            and_(db.blob.c.sha256 == key, db.blob.c.seq == seq)
                        )
                    ).scalar_one()
                yield bytes(data)

        return chunks()

    def blob_size(self, sha256: str) -> int:
        """The size of the stored bytes with SHA-256 ``sha256`` (0 if not stored)."""
        with self.database.read() as conn:
            total = conn.execute(
                select(func.sum(func.length(db.blob.c.data))).where(
                    db.blob.c.sha256 == bytes.fromhex(sha256)
                )
            ).scalar()
        return int(total or 0)

    # -- digests --

    def _answer(
        self, wanted: Sequence[tuple[str, int]], rows: Iterable[tuple[Any, ...]]
    ) -> list[dict[str, Any]]:
        """Group ``(digest, kind, card_no, entry_no, entry_id)`` rows by requested digest."""
        found: dict[tuple[str, int], list[tuple[int, int, str]]] = {}
        for digest, kind, card_no, entry_no, entry_id in rows:
            found.setdefault((digest.hex(), kind), []).append((card_no, entry_no, entry_id))
        self._card_numbers({number for hits in found.values() for number, _, _ in hits})
        templates = self._templates
        kinds = db.KINDS
        results = []
        for key in wanted:
            hits = found.get(key)
            matches = []
            if hits:
                hits.sort()
                for number, _, entry_id in hits:
                    match = templates[number].copy()
                    match["entry"] = entry_id
                    matches.append(match)
            results.append({"digest": key[0], "kind": kinds[key[1]], "matches": matches})
        return results

    def lookup(self, wanted: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
        """Answer ``(digest hex, kind)`` pairs, in order, with every registered match.

        The plain query (SQLAlchemy Core); :meth:`lookup_fast` is held equal to it.
        """
        keys = sorted({bytes.fromhex(d) for d, _ in wanted})
        rows: list[tuple[Any, ...]] = []
        if keys:
            with self.database.read() as conn:
                columns = (db.digest.c[name.strip()] for name in _DIGEST_COLUMNS.split(","))
                rows = [
                    tuple(row)
                    for row in conn.execute(select(*columns).where(db.digest.c.digest.in_(keys)))
                ]
        return self._answer(wanted, rows)

    def lookup_fast(self, wanted: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
        """:meth:`lookup` on a sqlite3 connection kept for this thread (SQLite only)."""
        if not self.database.is_sqlite:
            return self.lookup(wanted)
        keys = [bytes.fromhex(d) for d in {d for d, _ in wanted}]
        rows: list[tuple[Any, ...]] = []
        if keys:
            cursor = self._cursor()
            marks = ",".join("?" * len(keys))
            rows = cursor.execute(
                f"SELECT {_DIGEST_COLUMNS} FROM digest WHERE digest IN ({marks})", keys
            ).fetchall()
        return self._answer(wanted, rows)

    def lookup_json(self, wanted: Sequence[tuple[str, int]]) -> bytes:
        """:meth:`lookup`, encoded as a JSON array: for a batch, from the in-memory index of
        the digests when it holds every registered card, else from the database (while a new
        index is built in the background, when the rows fit in memory)."""
        if len(wanted) < _INDEX_FROM:
            return _ENCODE(self.lookup_fast(wanted))
        state = self._state()
        index = self._index
        if index is not None and index.last_card == state[0]:
            return index.answer(wanted, hex_digest_rows([d for d, _ in wanted]))
        self._refresh(state)
        return _ENCODE(self.lookup_fast(wanted))

    def _state(self) -> tuple[int, int]:
        """The highest card number and the total of the cards' entries."""
        query = "SELECT coalesce(max(no), 0), coalesce(sum(entries), 0) FROM card"
        if self.database.is_sqlite:
            last, entries = self._cursor().execute(query).fetchone()
        else:
            with self.database.read() as conn:
                last, entries = conn.exec_driver_sql(query).one()
        return int(last), int(entries)

    def refresh_index(self) -> None:
        """Start building the in-memory index of the digests in the background, if it is
        missing or old (lookups take the database meanwhile)."""
        state = self._state()
        index = self._index
        if index is None or index.last_card != state[0]:
            self._refresh(state)

    def _refresh(self, state: tuple[int, int]) -> None:
        """Start building the index in the background, unless one is being built, the last
        build for this state failed, or the digests would not fit (two rows per entry at
        most)."""
        if 2 * state[1] > self._index_rows or self._failed_at == state[0]:
            self._index = None
            return
        with self._lock:
            if self._builder is not None and self._builder.is_alive():
                return
            self._builder = threading.Thread(
                target=self._build_index, name="digest-index", daemon=True
            )
            self._builder.start()

    def wait_for_index(self, timeout: float | None = None) -> bool:
        """Build the index now if it is missing or old; return whether it is current."""
        self.refresh_index()
        builder = self._builder
        if builder is not None:
            builder.join(timeout)
        index = self._index
        return index is not None and index.last_card == self._state()[0]

    def _build_index(self) -> None:
        try:
            self._index = self._read_index()
        except (SQLAlchemyError, ValueError, sqlite3.Error) as exc:
            # Lookups keep taking the database (slower, never wrong); a new card starts another
            # try. Said once per failed state, so that an operator sees why lookups are slow.
            _log.warning(
                "the in-memory digest index could not be built (%s: %s); lookups are answered "
                "from the database until the next card",
                type(exc).__name__,
                exc,
            )
            with contextlib.suppress(SQLAlchemyError, sqlite3.Error):
                self._failed_at = self._state()[0]

    def _read_index(self) -> DigestIndex:
        columns = [db.digest.c[name.strip()] for name in _DIGEST_COLUMNS.split(",")]
        with self.database.read() as conn:
            # One snapshot: the cards and the digests as of the same moment.
            cards = {row.no: _record(row) for row in conn.execute(select(db.card))}
            rows = conn.execution_options(yield_per=65536).execute(
                select(*columns).order_by(*db.digest.primary_key.columns)
            )
            index = DigestIndex.build(
                rows,
                {number: card.match("") for number, card in cards.items()},
                last_card=max(cards, default=0),
            )
        return index

    def _cursor(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self.database.raw_sqlite()
        return connection.cursor()

    def range(self, prefix: str) -> list[dict[str, Any]]:
        """Every registered digest starting with the hex ``prefix`` (5 digits), by digest and
        kind, each with its matches."""
        low = bytes.fromhex(prefix + "0" * (64 - len(prefix)))
        high = bytes.fromhex(prefix + "f" * (64 - len(prefix)))
        if self.database.is_sqlite:
            rows = (
                self._cursor()
                .execute(
                    f"SELECT {_DIGEST_COLUMNS} FROM digest WHERE digest BETWEEN ? AND ?",
                    (low, high),
                )
                .fetchall()
            )
        else:
            with self.database.read() as conn:
                rows = [
                    tuple(row)
                    for row in conn.execute(
                        select(
                            db.digest.c.digest,
                            db.digest.c.kind,
                            db.digest.c.card_no,
                            db.digest.c.entry_no,
                            db.digest.c.entry_id,
                        ).where(db.digest.c.digest.between(low, high))
                    )
                ]
        wanted = sorted({(bytes(row[0]).hex(), row[1]) for row in rows})
        return self._answer(wanted, rows)


__all__ = [
    "MAX_INDEX_ROWS",
    "MAX_LOOKUP_DIGESTS",
    "BlobWriter",
    "DatabaseError",
    "DigestWriter",
    "PreparedDigests",
    "CardRecord",
    "Storage",
    "card_by_id",
    "card_under",
    "digest_rows",
    "insert_card",
    "insert_digests",
    "prepare_digests",
    "set_log_entry",
    "store_blob",
]
