"""The registry's log under load and under a split view, on SQLite and PostgreSQL.

- Six pushes at once while lookups run: every push gets a receipt that verifies, every card is
  in the log, and the tree stays consistent (``log monitor`` from the state before the pushes).
- ``log monitor`` against the real registry catches a split view: the registry restarted on
  another database with the same log key signs a checkpoint inconsistent with the one seen.
- The SQL tile store holds the same tiles and checkpoints as the directory store for the same
  appends, and commits the tiles and the checkpoint together.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provenance.keys import PrivateKey, load_private_key, write_key_pair
from provenance.logclient import monitor, verify_receipt_file
from provenance.registry import client
from provenance.tlog import Tile, TiledTree, tiles_for_size
from provenance.tlog_store import Appended, DirectoryTileStore, LogWriter
from provenance.trust import TrustStore
from tests.conftest import one_error_line, run_cli
from tests.registry_support import (
    ORIGIN,
    Keys,
    RegistryServer,
    free_port,
    http,
    make_keys,
    post_json,
    synthetic_card,
)

pytestmark = pytest.mark.timeout(300)

AT = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)


@dataclass
class World:
    work: Path
    keys: Keys
    key: PrivateKey
    store: TrustStore


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    work = tmp_path_factory.mktemp("log")
    keys = make_keys(work / "keys")
    store = TrustStore.from_json(keys.trust.read_bytes(), what="trust")
    return World(work, keys, load_private_key(keys.dev_key), store)


def _database(request: pytest.FixtureRequest, kind: str, path: Path, name: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{path / f'{name}.db'}"
    return str(request.getfixturevalue("pg_cluster").database(name))


def _server(world: World, database: str, *, port: int = 0) -> RegistryServer:
    return RegistryServer(
        ["--trust", str(world.keys.cards_trust), "--log-key", str(world.keys.log_key)]
        + ["--db", database, "--lookup-rate", "0"],
        port=port,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


def test_registries_opening_one_empty_database_at_once_all_start(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> None:
    """Six registries open one empty database at the same moment (a service started on several
    hosts): each creates or finds the schema and the log (before, on PostgreSQL, all but one
    failed on the catalog's unique constraint while creating the tables)."""
    from provenance.registry.db import Database

    url = _database(request, backend, tmp_path, "started_at_once")
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def start() -> None:
        barrier.wait()
        try:
            Database.open(url).close()
            outcomes.append("ok")
        except Exception as exc:  # the outcome is what is asserted
            outcomes.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert outcomes == ["ok"] * 6


def test_six_concurrent_pushes_while_lookups_run(
    request: pytest.FixtureRequest, backend: str, world: World, tmp_path: Path
) -> None:
    cards = [
        synthetic_card(tmp_path / f"card{n}", world.key, f"concurrent-{n}", 2000 + 50 * n)
        for n in range(6)
    ]
    with _server(world, _database(request, backend, tmp_path, "concurrent")) as server:
        state = tmp_path / "monitor.json"
        before = monitor(server.url, world.store, state, at=AT)
        assert before.ok and before.checkpoint.size == 0
        done = threading.Event()
        answers: list[int] = []

        def look() -> None:
            wanted = [digest for c in cards for digest in c.digests[:40]]
            while not done.is_set():
                status, _ = post_json(f"{server.url}/v1/lookup", {"sha256": wanted[:240]})
                answers.append(status)
                answers.append(http("GET", f"{server.url}/v1/range/{wanted[7][:5]}")[0])

        lookers = [threading.Thread(target=look) for _ in range(2)]
        for thread in lookers:
            thread.start()
        try:
            with concurrent.futures.ThreadPoolExecutor(6) as pool:
                reports = list(
                    pool.map(
                        lambda c: client.push(server.url, c.signed, c.manifest, world.store, at=AT),
                        cards,
                    )
                )
        finally:
            done.set()
            for thread in lookers:
                thread.join()
        assert answers and set(answers) == {200}
        # Every push registered, each at its own index, with a receipt that verifies offline.
        assert all(report.created for report in reports)
        assert sorted(report.index for report in reports) == list(range(6))
        for pushed, report in zip(cards, reports, strict=True):
            receipt = tmp_path / f"{pushed.id}.tlog-proof"
            receipt.write_bytes(report.receipt)
            verified = verify_receipt_file(receipt, world.store, at=AT, card=pushed.signed)
            assert verified.entry.card == pushed.id
            assert verified.entry.entries == len(pushed.digests)
        # The tree is consistent with the one before, and holds every card.
        seen: list[str] = []
        after = monitor(
            server.url,
            world.store,
            state,
            at=AT,
            on_registration=lambda index, entry: seen.append(entry.card),
        )
        assert after.ok and after.checkpoint.size == 6 and after.registrations == 6
        assert sorted(seen) == sorted(c.id for c in cards)
        # Every digest of every card was indexed.
        status, answer = post_json(
            f"{server.url}/v1/lookup", {"sha256": [c.digests[-1] for c in cards]}
        )
        assert status == 200
        assert [r["matches"][0]["card"] for r in answer["results"]] == [c.id for c in cards]


def test_log_monitor_catches_a_split_view_after_a_restart_on_another_database(
    request: pytest.FixtureRequest, world: World, tmp_path: Path
) -> None:
    first = synthetic_card(tmp_path / "first", world.key, "split-first", 10)
    second = synthetic_card(tmp_path / "second", world.key, "split-second", 10)
    state = tmp_path / "monitor.json"
    watch = ("log", "monitor", "--trust", world.keys.trust, "--state", state)
    port = free_port()
    sqlite = _database(request, "sqlite", tmp_path, "first")
    with _server(world, sqlite, port=port) as server:
        client.push(server.url, first.signed, first.manifest, world.store, at=AT)
        result = run_cli(*watch[:2], server.url, *watch[2:])
        assert result.returncode == 0, result.stderr
        assert "1 new registration(s)" in result.stdout
        url = server.url
    # The same registry (URL and log key) restarted on another database: PostgreSQL.
    postgres = _database(request, "postgresql", tmp_path, "second")
    with _server(world, postgres, port=port) as server:
        assert server.url == url
        for pushed in (second, first):  # the first card again, after another one
            client.push(server.url, pushed.signed, pushed.manifest, world.store, at=AT)
        result = run_cli(*watch[:2], url, *watch[2:])
        assert result.returncode == 1
        assert "split view" in result.stderr and "does not extend" in result.stderr
        previous = json.loads(state.read_bytes())["checkpoint"]
        assert previous.startswith(f"{ORIGIN}\n1\n") and previous in result.stdout
        status, _, current = http("GET", f"{url}/log/checkpoint")
        assert current.decode().startswith(f"{ORIGIN}\n2\n") and current.decode() in result.stdout
    # Back on the first database: consistent with what was verified.
    with _server(world, sqlite, port=port):
        result = run_cli(*watch[:2], url, *watch[2:])
        assert result.returncode == 0, result.stderr


def test_the_sql_tile_store_equals_the_directory_store(tmp_path: Path) -> None:
    from provenance.registry.db import Database
    from provenance.registry.sqllog import SqlTileStore

    key = PrivateKey.generate()
    database = Database.open(f"sqlite:///{tmp_path / 'log.db'}")
    sql = LogWriter(SqlTileStore(database), key, origin=ORIGIN)
    directory = LogWriter(DirectoryTileStore(tmp_path / "dir"), key, origin=ORIGIN)
    assert sql.create() == directory.create()
    rng = random.Random(3)
    size = 0
    while size < 1500:
        batch = [rng.randbytes(rng.randrange(1, 300)) for _ in range(rng.choice([1, 7, 255, 300]))]
        a, b = sql.append(batch), directory.append(batch)
        # Ed25519 is deterministic: the same checkpoint bytes.
        assert a.note == b.note and a.receipts == b.receipts
        size += len(batch)
    tiles: list[Tile] = tiles_for_size(size)
    assert SqlTileStore(database).read_tiles(tiles) == DirectoryTileStore(
        tmp_path / "dir"
    ).read_tiles(tiles)
    checkpoint = sql.checkpoint().checkpoint
    tree = TiledTree(size, SqlTileStore(database), root=checkpoint.root)
    assert tree.inclusion_proof(1234) == TiledTree(
        size, DirectoryTileStore(tmp_path / "dir")
    ).inclusion_proof(1234)
    # A failed append (an entry too large) leaves the store as it was: nothing half-written.
    with pytest.raises(Exception, match="65535"):
        sql.append([b"ok", b"x" * 70_000])
    assert sql.checkpoint().checkpoint == checkpoint
    database.close()


def test_a_database_holding_another_logs_checkpoints_is_refused(
    world: World, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'r.db'}"
    with _server(world, database):
        pass  # the log is created with its size-0 checkpoint
    other = tmp_path / "other.key"
    write_key_pair(PrivateKey.generate(), other)
    base = ["registry", "serve", "--trust", world.keys.cards_trust, "--db", database, "--port", "0"]
    result = run_cli(*base, "--log-key", other)
    assert result.returncode == 1
    assert "holds another log than 'localhost/provenance'" in one_error_line(result)
    result = run_cli(*base, "--log-key", world.keys.log_key, "--origin", "example.org/log")
    assert result.returncode == 1 and "another log than 'example.org/log'" in result.stderr
    result = run_cli(*base, "--log-key", world.keys.log_key, "--origin", "has space")
    assert result.returncode == 2 and "cannot be a log origin" in one_error_line(result)


def test_two_writers_on_one_database_append_one_linear_log(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Two registries on one database (two Database objects: no lock of this process is shared)
    append at once. Only the database's lock (SQLite BEGIN IMMEDIATE, the PostgreSQL row lock
    on the log's state) keeps them from both extending the same checkpoint: every append must
    land, in one linear tree that each signed checkpoint is a prefix of."""
    from provenance import merkle
    from provenance.registry.db import Database
    from provenance.registry.sqllog import SqlTileStore

    url = _database(request, backend, tmp_path, "writers")
    key = PrivateKey.generate()
    databases = [Database.open(url) for _ in range(2)]
    try:
        writers = [LogWriter(SqlTileStore(d), key, origin=ORIGIN) for d in databases]
        writers[0].create()
        barrier = threading.Barrier(2)

        def run(n: int) -> list[tuple[list[bytes], Appended]]:
            barrier.wait()
            done = []
            for i in range(30):
                batch = [f"writer {n} batch {i} entry {j}".encode() for j in range(3)]
                done.append((batch, writers[n].append(batch)))
            return done

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(run, n) for n in range(2)]
            appended = [a for future in futures for a in future.result()]
        final = writers[1].checkpoint().checkpoint
        assert final.size == 2 * 30 * 3
        starts = sorted(a.first_index for _, a in appended)
        assert starts == list(range(0, final.size, 3))  # no two appends took the same place
        tree = TiledTree(final.size, SqlTileStore(databases[0]), root=final.root)
        for batch, result in appended:
            old = result.checkpoint
            proof = tree.consistency_proof(old.size)
            merkle.verify_consistency(old.size, final.size, old.root, final.root, proof)
            for offset, entry in enumerate(batch):
                index = result.first_index + offset
                merkle.verify_inclusion(
                    index, final.size, merkle.leaf_hash(entry), tree.inclusion_proof(index),
                    final.root,
                )  # fmt: skip
    finally:
        for database in databases:
            database.close()
