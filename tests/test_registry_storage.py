"""The registry's storage in process: the fast lookup path held equal to the plain query, range
answers against a brute-force reading of the manifests, and the rate limiter's arithmetic."""

from __future__ import annotations

import logging
import random
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import func, select

from provenance.errors import LocalIOError
from provenance.keys import PrivateKey
from provenance.manifest import ManifestEntry, decode_entry
from provenance.manifest.entry import entry_bytes
from provenance.registry import db, storage
from provenance.registry.admission import RefusedError, Registrar, Upload
from provenance.registry.db import KIND_SHA256, KIND_TEXT_SHA256, Database
from provenance.registry.ratelimit import RateLimiter
from provenance.registry.storage import Storage
from provenance.tlog_store import LogWriter
from provenance.trust import TrustStore
from tests.registry_support import AT, ORIGIN, synthetic_card

Listed = list[list[tuple[str, str, str]]]
"""Per card: (card id, entry id, digest), a textSha256 digest prefixed with ``t:``."""


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Storage, Listed]:
    """A registry database holding three cards, the third listing the first's digests again."""
    work = tmp_path_factory.mktemp("storage")
    publisher = PrivateKey.generate()
    trust = TrustStore().with_key(publisher.public, name="Lab", role="dataset-publisher")
    database = Database.open(f"sqlite:///{work / 'r.db'}")
    registrar = Registrar(database, trust, PrivateKey.generate(), origin=ORIGIN)
    registrar.start_log()
    first = synthetic_card(work / "0", publisher, "storage-0", 300, texts=True)
    copies = [
        msgspec.structs.replace(decode_entry(line, what="manifest"), id="copy/" + str(n))
        for n, line in enumerate(first.manifest.read_bytes().splitlines())
    ]
    cards = [
        first,
        synthetic_card(work / "1", publisher, "storage-1", 300, texts=True),
        synthetic_card(work / "2", publisher, "storage-2", entries=copies),
    ]
    listed: Listed = []
    for made in cards:
        registrar.register(Upload(made.signed, made.manifest), at=AT)
        entries = []
        for line in made.manifest.read_bytes().splitlines():
            entry = decode_entry(line, what="manifest")
            entries.append((made.id, entry.id, entry.sha256))
            if entry.textSha256 is not None:
                entries.append((made.id, entry.id, "t:" + entry.textSha256))
        listed.append(entries)
    return Storage(database), listed


def _random_wanted(rng: random.Random, known: list[str]) -> list[tuple[str, int]]:
    wanted = []
    for _ in range(rng.randrange(1, 80)):
        pick = rng.choice(known) if rng.random() < 0.7 else f"{rng.getrandbits(256):064x}"
        kind = KIND_TEXT_SHA256 if pick.startswith("t:") else KIND_SHA256
        if rng.random() < 0.1:  # a digest asked as the other kind: no match
            kind = 1 - kind
        wanted.append((pick.removeprefix("t:"), kind))
    return wanted


def test_the_fast_lookup_equals_the_plain_query(
    filled: tuple[Storage, Listed],
) -> None:
    storage, listed = filled
    rng = random.Random(5)
    known = [digest for entries in listed for _, _, digest in entries]
    for _ in range(30):
        wanted = _random_wanted(rng, known)
        assert storage.lookup_fast(wanted) == storage.lookup(wanted)
    assert storage.lookup_fast([]) == storage.lookup([]) == []


def test_answers_agree_with_the_manifests(
    filled: tuple[Storage, Listed],
) -> None:
    storage, listed = filled
    expected: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for entries in listed:
        for card_id, entry_id, digest in entries:
            kind = "textSha256" if digest.startswith("t:") else "sha256"
            expected.setdefault((digest.removeprefix("t:"), kind), set()).add((card_id, entry_id))
    shared = [key for key, found in expected.items() if len(found) == 2]
    assert shared  # the third card repeats the first one's digests
    for digest, kind in shared[:20] + list(expected)[:40]:
        answer = storage.lookup([(digest, KIND_SHA256 if kind == "sha256" else KIND_TEXT_SHA256)])
        found = {(m["card"], m["entry"]) for m in answer[0]["matches"]}
        assert found == expected[(digest, kind)]
        prefix = digest[:5]
        ranged = storage.range(prefix)
        want = {key for key in expected if key[0].startswith(prefix)}
        assert {(item["digest"], item["kind"]) for item in ranged} == want
        for item in ranged:
            got = {(m["card"], m["entry"]) for m in item["matches"]}
            assert got == expected[(item["digest"], item["kind"])]


def test_the_rate_limiter_allows_a_burst_then_its_rate() -> None:
    now = [100.0]
    limiter = RateLimiter(2.0, 3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [None, None, None]
    assert limiter.take("a") == 1  # half a second to the next token: 1 s, rounded up
    assert limiter.take("b") is None  # per client
    now[0] += 0.5
    assert limiter.take("a") is None and limiter.take("a") == 1
    now[0] += 100
    assert [limiter.take("a") for _ in range(4)] == [None, None, None, 1]  # never above the burst
    slow = RateLimiter(1 / 30, 1, clock=lambda: now[0])
    assert slow.take("c") is None and slow.take("c") == 30
    assert RateLimiter(0, 1).take("d") is None and not RateLimiter(0, 1).enabled
    with pytest.raises(ValueError):
        RateLimiter(-1, 1)


def test_the_lookup_decoder_accepts_exactly_what_the_documented_model_accepts() -> None:
    import json

    import msgspec
    import pydantic

    from provenance.registry import models

    hex64, hex16 = "ab" * 32, "0f" * 8
    documents: list[object] = [
        {},
        {"sha256": [hex64], "textSha256": [hex64]},
        {"sha256": [hex64.upper()]},
        {"sha256": [hex64 + "\n"]},
        {"sha256": [hex64[:-1]]},
        {"sha256": hex64},
        {"sha256": [hex64] * 1000},
        {"sha256": [hex64] * 1001},
        {"fingerprints": [{"text": [hex16], "image": hex16}]},
        {"fingerprints": [{"text": [hex16 + "0"]}]},
        {"fingerprints": [{"image": None}]},
        {"fingerprints": [{"other": 1}]},
        {"fingerprints": [{}] * 101},
        {"other": []},
        [],
        {"sha256": [1]},
        {"textSha256": None},
        {"textSha256": [hex64, "g" * 64]},
        {"sha256": [hex64[:-2] + " a"]},
        {"sha256": [hex64[:-1] + "\u0663"]},
        {"sha256": [hex64[:-1] + "é"]},
        {"sha256": [hex64] * 999, "textSha256": [hex64[:-1] + "F"]},
        {"sha256": [hex64, hex64[:-1]], "fingerprints": [{"other": 1}]},
        {"sha256": [hex64] * 20 + [hex64.upper()]},
        {"sha256": [hex64] * 20 + [hex64 + "\n"]},
        {"textSha256": [hex64] * 20 + ["ab" * 31 + "a\u0663"]},
    ]
    for document in documents:
        data = json.dumps(document).encode()
        try:
            models.LookupRequest.model_validate_json(data)
            documented = True
        except pydantic.ValidationError:
            documented = False
        try:
            strict = models.LOOKUP_DECODER.decode(data)
            decoded, error = True, ""
        except msgspec.ValidationError as exc:
            decoded, error = False, str(exc)
        assert decoded == documented, document
        # The request path's decoder: the same verdict, body and error.
        try:
            assert models.decode_lookup(data) == strict, document
        except msgspec.ValidationError as exc:
            assert not decoded and str(exc) == error, document


def _odd_entries(count: int) -> list[ManifestEntry]:
    """Entries whose ids need escaping in JSON or COPY text, half of them text."""
    rng = random.Random(17)
    names = ["plain", 'quote"d', "back\\slash", "tab-less é ü 漢字", "emoji 🙂", "a\\\\b", "x'y"]
    return [
        ManifestEntry(
            id=f"{rng.choice(names)}/{i}",
            sha256=f"{rng.getrandbits(256):064x}",
            size=i,
            textSha256=f"{rng.getrandbits(256):064x}" if i % 2 else None,
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_prepared_bulk_insert_stores_what_the_plain_rows_store(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'r.db'}"
    else:
        url = request.getfixturevalue("pg_cluster").database("prepared_insert")
    database = Database.open(url)
    entries = _odd_entries(700)
    blocks = [(0, entries[:300]), (300, entries[300:301]), (301, entries[301:])]
    try:
        with database.write(lock_log=False) as conn:
            writer = storage.DigestWriter(conn, 2)
            for first, block in blocks:
                storage.insert_digests(conn, storage.digest_rows(1, first, block))
                prepared = storage.prepare_digests(conn.dialect.name, 2, first, block)
                assert prepared.plain is None  # the fast statement, not the fallback
                writer.write(prepared)
            writer.close()
        with database.read() as conn:
            rows = conn.execute(
                select(db.digest).order_by(db.digest.c.card_no, db.digest.c.entry_no)
            ).all()
    finally:
        database.close()
    plain = sorted((bytes(r[0]), r[1], r[3], r[4]) for r in rows if r[2] == 1)
    fast = sorted((bytes(r[0]), r[1], r[3], r[4]) for r in rows if r[2] == 2)
    assert len(plain) == 700 + 350
    assert fast == plain
    expected = {(bytes.fromhex(e.sha256), 0, n, e.id) for n, e in enumerate(entries)}
    expected |= {
        (bytes.fromhex(e.textSha256), 1, n, e.id)
        for n, e in enumerate(entries)
        if e.textSha256 is not None
    }
    assert set(fast) == expected


def test_an_id_sqlite_json_might_misread_takes_the_plain_path() -> None:
    entry = ManifestEntry(id="a\u0001b", sha256="ab" * 32, size=1)
    prepared = storage.prepare_digests("sqlite", 1, 0, [entry])
    assert prepared.sqlite is None
    assert prepared.plain == storage.digest_rows(1, 0, [entry])


def test_staged_rows_go_in_sorted_at_close_and_leave_with_a_rollback(tmp_path: Path) -> None:
    # On SQLite the textSha256 rows wait in a temporary table until close: a rollback takes them
    # and the table away, and the connection takes the next registration's rows as before.
    database = Database.open(f"sqlite:///{tmp_path / 'r.db'}")
    entries = _odd_entries(300)
    prepared = storage.prepare_digests("sqlite", 1, 0, entries)
    stage = "SELECT count(*) FROM sqlite_temp_master WHERE name = 'digest_stage'"
    count = select(db.digest.c.kind).with_only_columns(db.digest.c.kind)
    try:
        with database.engine.connect() as conn:
            transaction = conn.begin()
            writer = storage.DigestWriter(conn, 1)
            writer.write(prepared)
            kinds = [row.kind for row in conn.execute(count)]
            assert kinds == [KIND_SHA256] * 300  # the text rows are staged, not in yet
            assert conn.exec_driver_sql(stage).scalar() == 1
            transaction.rollback()
            assert conn.exec_driver_sql(stage).scalar() == 0
            assert conn.execute(count).all() == []
            conn.rollback()
            with conn.begin():
                writer = storage.DigestWriter(conn, 1)
                writer.write(prepared)
                writer.close()
                assert conn.exec_driver_sql(stage).scalar() == 0
            rows = conn.execute(select(db.digest)).all()
    finally:
        database.close()
    assert sorted((bytes(r[0]), r[1], r[2], r[3], r[4]) for r in rows) == sorted(
        storage.digest_rows(1, 0, entries)
    )


def _stored(database: Database) -> dict[str, object]:
    """Everything a registration writes: the rows of every table, and the checkpoint."""
    with database.read() as conn:
        counted = {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (db.card, db.card_name, db.digest, db.blob, db.tile)
        }
        counted["checkpoint"] = conn.execute(select(db.log_state.c.checkpoint)).scalar_one()
    return counted


def _retouched(manifest: Path, target: Path, how: str) -> Upload:
    """The manifest with its last line changed: its size (every line still valid, in order,
    so only the commitment tells) or swapped with the line before (out of order)."""
    lines = manifest.read_bytes().splitlines()
    if how == "size":
        last = decode_entry(lines[-1], what="manifest")
        lines[-1] = entry_bytes(msgspec.structs.replace(last, size=(last.size or 0) + 1))
    else:
        lines[-2], lines[-1] = lines[-1], lines[-2]
    target.write_bytes(b"\n".join(lines) + b"\n")
    return target


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_manifest_refused_late_in_the_overlapped_insert_leaves_nothing_stored(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'r.db'}"
    else:
        url = request.getfixturevalue("pg_cluster").database("refused_late")
    publisher = PrivateKey.generate()
    trust = TrustStore().with_key(publisher.public, name="Lab", role="dataset-publisher")
    database = Database.open(url)
    registrar = Registrar(database, trust, PrivateKey.generate(), origin=ORIGIN)
    registrar.start_log()
    written: list[int] = []
    write = storage.DigestWriter.write

    def counted(self: storage.DigestWriter, prepared: storage.PreparedDigests) -> None:
        written.append(prepared.rows)
        write(self, prepared)

    monkeypatch.setattr(storage.DigestWriter, "write", counted)
    writers: list[storage.DigestWriter] = []
    start = storage.DigestWriter.__init__

    def noted(self: storage.DigestWriter, *args: Any) -> None:
        start(self, *args)
        writers.append(self)

    monkeypatch.setattr(storage.DigestWriter, "__init__", noted)
    try:
        small = synthetic_card(tmp_path / "small", publisher, "small", 40, texts=True)
        registrar.register(Upload(small.signed, small.manifest), at=AT)
        before = _stored(database)
        # About 10 MiB of manifest: three blocks of digests at least, half of them with text.
        big = synthetic_card(tmp_path / "big", publisher, "big", 60_000, texts=True)
        for how in ("size", "order"):
            written.clear()
            upload = Upload(big.signed, _retouched(big.manifest, tmp_path / f"{how}.jsonl", how))
            with pytest.raises(RefusedError) as refused:
                registrar.register(upload, at=AT)
            assert refused.value.status == 422, str(refused.value)
            # Blocks of rows went in before the refusal: with a valid last line, every one.
            assert len(written) >= 2
            assert (sum(written) == 90_000) is (how == "size")
            assert _stored(database) == before
            # The failed registration's raw cursor is closed, not left to the collector.
            assert _cursor_closed(writers[-1]._cursor)
        # A failure after every digest went in (the log's append) stores nothing either.
        with monkeypatch.context() as patch:
            patch.setattr(LogWriter, "append", _fail)
            with pytest.raises(LocalIOError, match="the disk is full"):
                registrar.register(Upload(big.signed, big.manifest), at=AT)
        assert _stored(database) == before
        registered = registrar.register(Upload(big.signed, big.manifest), at=AT)
        assert registered.created
        after = _stored(database)
        assert after["digest"] == before["digest"] + 90_000  # type: ignore[operator]
        with database.read() as conn:
            rows = conn.execute(
                select(db.digest.c.digest, db.digest.c.kind).where(
                    db.digest.c.card_no == registered.record.no
                )
            ).all()
        expected = {(bytes.fromhex(d), KIND_SHA256) for d in big.digests}
        assert {(bytes(d), k) for d, k in rows if k == KIND_SHA256} == expected
    finally:
        database.close()


def _cursor_closed(cursor: Any) -> bool:
    """Whether a DB-API cursor (sqlite3's or psycopg's) is closed."""
    if hasattr(cursor, "closed"):  # psycopg
        return bool(cursor.closed)
    try:
        cursor.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False


def test_a_statement_the_database_refuses_is_its_error_not_the_pushs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sorted pass fails (as on a full disk): an UnavailableError (503), not a 422 refusal,
    # and nothing is stored.
    publisher, database, registrar = _registry(tmp_path)
    made = synthetic_card(tmp_path / "a", publisher, "a", 500, texts=True)
    try:
        before = _stored(database)
        monkeypatch.setattr(storage, "_SQLITE_STAGED", "INSERT INTO no_such_table VALUES (:card)")
        with pytest.raises(storage.DatabaseError, match="could not answer: no such table"):
            registrar.register(Upload(made.signed, made.manifest), at=AT)
        assert _stored(database) == before
        monkeypatch.undo()
        assert registrar.register(Upload(made.signed, made.manifest), at=AT).created
        assert _stored(database)["digest"] == 750
    finally:
        database.close()


def _fail(*_: object, **__: object) -> None:
    raise LocalIOError("tile store: the disk is full")


def test_the_streamed_blob_is_stored_in_chunks_and_checked(tmp_path: Path) -> None:
    import hashlib

    database = Database.open(f"sqlite:///{tmp_path / 'r.db'}")
    data = random.Random(3).randbytes(db.BLOB_CHUNK * 2 + 12345)
    expected = hashlib.sha256(data).hexdigest()
    try:
        with database.write(lock_log=False) as conn:
            writer = storage.BlobWriter(conn, expected, what="manifest")
            for start in range(0, len(data), 300_001):
                writer.write(data[start : start + 300_001])
            writer.close()
        reader = storage.Storage(database)
        chunks = reader.blob(expected)
        assert chunks is not None
        stored = list(chunks)
        assert b"".join(stored) == data and reader.blob_size(expected) == len(data)
        assert [len(c) for c in stored] == [db.BLOB_CHUNK, db.BLOB_CHUNK, 12345]
        with (
            pytest.raises(LocalIOError, match="not the ones committed to"),
            database.write(lock_log=False) as conn,
        ):
            writer = storage.BlobWriter(conn, "00" * 32, what="manifest")
            writer.write(data)
            writer.close()
        assert reader.blob("00" * 32) is None  # rolled back
    finally:
        database.close()


def _registry(tmp_path: Path) -> tuple[PrivateKey, Database, Registrar]:
    """A publisher's key and a registry on SQLite in ``tmp_path`` that trusts it, its log
    started."""
    publisher = PrivateKey.generate()
    trust = TrustStore().with_key(publisher.public, name="Lab", role="dataset-publisher")
    database = Database.open(f"sqlite:///{tmp_path / 'r.db'}")
    registrar = Registrar(database, trust, PrivateKey.generate(), origin=ORIGIN)
    registrar.start_log()
    return publisher, database, registrar


def test_the_digest_index_answers_as_the_database_before_and_after_a_push(
    tmp_path: Path,
) -> None:
    publisher, database, registrar = _registry(tmp_path)
    reader = Storage(database)
    rng = random.Random(9)
    known: list[str] = []

    def push(name: str) -> None:
        made = synthetic_card(tmp_path / name, publisher, name, 200, texts=True)
        registrar.register(Upload(made.signed, made.manifest), at=AT)
        for line in made.manifest.read_bytes().splitlines():
            entry = decode_entry(line, what="manifest")
            known.append(entry.sha256)
            if entry.textSha256 is not None:
                known.append("t:" + entry.textSha256)

    def agree() -> None:
        for _ in range(20):
            wanted = _random_wanted(rng, known)
            assert msgspec.json.decode(reader.lookup_json(wanted)) == reader.lookup(wanted)
            assert reader.lookup_json(wanted) == msgspec.json.encode(reader.lookup(wanted))

    try:
        push("a")
        assert reader.wait_for_index(60)
        agree()
        # A new card: the index is old (the first lookup sees it so, and must take the
        # database: the index would miss the new card's matches), until it is rebuilt.
        push("b")
        builder = reader._builder
        assert reader._index is not None and reader._index.last_card == 1
        agree()
        assert reader._builder is not builder  # a rebuild was started by the lookups
        assert reader.wait_for_index(60)
        assert reader._index is not None and reader._index.last_card == 2
        agree()
        assert reader.lookup_json([]) == b"[]"
        # More rows than it may hold in memory: no index, the database answers.
        small = Storage(database, index_rows=100)
        assert not small.wait_for_index(60)
        wanted = _random_wanted(rng, known)
        assert msgspec.json.decode(small.lookup_json(wanted)) == small.lookup(wanted)
    finally:
        database.close()


def test_a_digest_index_that_cannot_be_built_is_said_and_lookups_take_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    publisher, database, registrar = _registry(tmp_path)
    made = synthetic_card(tmp_path / "a", publisher, "a", 50, texts=False)
    registrar.register(Upload(made.signed, made.manifest), at=AT)
    lines = made.manifest.read_bytes().splitlines()
    known = [decode_entry(line, what="manifest").sha256 for line in lines]

    def broken(self: Storage) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Storage, "_read_index", broken)
    reader = Storage(database)
    try:
        with caplog.at_level(logging.WARNING, logger="provenance.registry"):
            assert not reader.wait_for_index(60)
        said = [r.getMessage() for r in caplog.records if r.name == "provenance.registry"]
        assert len(said) == 1
        assert "digest index could not be built (OperationalError: disk I/O error)" in said[0]
        wanted = [(digest, KIND_SHA256) for digest in known[:5]] + [("ab" * 32, KIND_SHA256)]
        assert msgspec.json.decode(reader.lookup_json(wanted)) == reader.lookup(wanted)
        found = {answer["digest"]: answer["matches"] for answer in reader.lookup(wanted)}
        assert all(found.get(digest) for digest in known[:5])  # from the database
        assert not found.get("ab" * 32)
        # The same state is not tried (nor said) again.
        caplog.clear()
        assert not reader.wait_for_index(60)
        assert not [r for r in caplog.records if r.name == "provenance.registry"]
    finally:
        database.close()


def test_the_digest_index_finds_digests_that_share_their_first_bytes() -> None:
    from provenance._kernels import hex_digest_rows
    from provenance.registry.digestindex import DigestIndex

    rng = random.Random(4)
    stem = "ab" * 8
    digests = sorted({stem + f"{rng.getrandbits(192):048x}" for _ in range(6)})
    digests += sorted({f"{rng.getrandbits(256):064x}" for _ in range(6)})
    rows = sorted(
        (bytes.fromhex(d), kind, card, n, f"e{n}-{card}")
        for n, d in enumerate(digests)
        for kind in (0, 1)
        for card in (1, 2)
        if rng.random() < 0.6
    )
    cards = {n: {"card": f"{n:064x}", "name": "x", "version": "1", "publisher": []} for n in (1, 2)}
    index = DigestIndex.build(rows, cards, last_card=2)
    wanted = [(d, kind) for d in digests + [stem + "0" * 48, "f" * 64] for kind in (0, 1)]
    rng.shuffle(wanted)
    answer = msgspec.json.decode(index.answer(wanted, hex_digest_rows([d for d, _ in wanted])))
    expected = [
        {
            "digest": d,
            "kind": "sha256" if kind == 0 else "textSha256",
            "matches": [
                {**cards[card], "entry": entry}
                for digest, k, card, _, entry in rows
                if digest.hex() == d and k == kind
            ],
        }
        for d, kind in wanted
    ]
    assert answer == expected
    assert any(item["matches"] for item in answer) and any(not i["matches"] for i in answer)
    empty = DigestIndex.build([], cards, last_card=0)
    assert msgspec.json.decode(
        empty.answer(wanted[:3], hex_digest_rows([d for d, _ in wanted[:3]]))
    ) == [{**item, "matches": []} for item in expected[:3]]
    with pytest.raises(ValueError, match="order"):
        DigestIndex.build(list(reversed(rows)), cards, last_card=2)
