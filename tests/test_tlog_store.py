"""The log writer over a directory of static files: layout, receipts, refusals, crashes, races."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from provenance import merkle, tlog_store
from provenance.errors import InputError, LocalIOError, VerificationError
from provenance.keys import PrivateKey, load_private_key, write_key_pair
from provenance.signednote import NoteVerifier, verify_checkpoint
from provenance.tlog import (
    MAX_ENTRY_BYTES,
    Receipt,
    TiledTree,
    TileError,
    bundles_for_size,
    tiles_for_size,
    verify_receipt,
)
from provenance.tlog_store import DirectoryTileStore, LogWriter

ORIGIN = "localhost/provenance"


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


def numbered(start: int, count: int) -> list[bytes]:
    return [b"registration %d" % i for i in range(start, start + count)]


@pytest.fixture
def key() -> PrivateKey:
    return PrivateKey.generate()


@pytest.fixture
def writer(tmp_path: Path, key: PrivateKey) -> LogWriter:
    writer = LogWriter(DirectoryTileStore(tmp_path / "log"), key, origin=ORIGIN)
    writer.create()
    return writer


def test_a_new_log_has_a_size_zero_checkpoint(writer: LogWriter, tmp_path: Path) -> None:
    checkpoint = writer.checkpoint().checkpoint
    assert (checkpoint.origin, checkpoint.size, checkpoint.root) == (ORIGIN, 0, merkle.EMPTY_ROOT)
    assert sorted(snapshot(tmp_path / "log")) == ["checkpoint"]


def test_appends_write_exactly_the_static_layout(writer: LogWriter, tmp_path: Path) -> None:
    root = tmp_path / "log"
    seen: dict[str, bytes] = {}
    size = 0
    for count in (1, 300, 255, 1, 600):
        appended = writer.append(numbered(size, count))
        assert appended.first_index == size
        size += count
        files = snapshot(root)
        # What the earlier trees served is never rewritten (tiles are immutable).
        for name, data in seen.items():
            if name != "checkpoint":
                assert files[name] == data, name
        seen = files
        expected = {t.path for t in [*tiles_for_size(size), *bundles_for_size(size)]}
        assert expected <= set(files)
    verifier = writer.signer.verifier
    checkpoint = verify_checkpoint(seen["checkpoint"], [verifier], what="c").checkpoint
    leaves = [merkle.leaf_hash(entry) for entry in numbered(0, size)]
    assert (checkpoint.size, checkpoint.root) == (size, merkle.root(leaves))


def test_every_receipt_verifies_offline(writer: LogWriter) -> None:
    writer.append(numbered(0, 10))
    appended = writer.append(numbered(10, 300))
    verifiers = [writer.signer.verifier]
    assert len(appended.receipts) == 300
    for offset, receipt in enumerate(appended.receipts):
        parsed = Receipt.parse(receipt.to_bytes(), what="r")
        verified = verify_receipt(parsed, verifiers, what="r")
        assert (verified.index, verified.entry) == (10 + offset, b"registration %d" % (10 + offset))
        assert verified.checkpoint.note == appended.note


def test_receipts_can_be_skipped(writer: LogWriter) -> None:
    assert writer.append(numbered(0, 5), receipts=False).receipts == ()


def test_the_log_is_created_once(writer: LogWriter, tmp_path: Path, key: PrivateKey) -> None:
    writer.append(numbered(0, 3))
    before = snapshot(tmp_path / "log")
    with pytest.raises(InputError, match="already holds a log"):
        LogWriter(DirectoryTileStore(tmp_path / "log"), key, origin=ORIGIN).create()
    assert snapshot(tmp_path / "log") == before


def test_append_needs_a_created_log(tmp_path: Path, key: PrivateKey) -> None:
    writer = LogWriter(DirectoryTileStore(tmp_path / "log"), key, origin=ORIGIN)
    with pytest.raises(InputError, match="create it first"):
        writer.append([b"x"])
    assert not (tmp_path / "log" / "checkpoint").exists()


@pytest.mark.parametrize("other", ["key", "origin"])
def test_append_refuses_another_logs_store(writer: LogWriter, tmp_path: Path, other: str) -> None:
    writer.append(numbered(0, 3))
    before = snapshot(tmp_path / "log")
    if other == "key":
        intruder = LogWriter(writer.store, PrivateKey.generate(), origin=ORIGIN)
    else:
        intruder = LogWriter(writer.store, writer.signer.key, origin="elsewhere/log")
    with pytest.raises(VerificationError, match="not one this log"):
        intruder.append([b"x"])
    assert snapshot(tmp_path / "log") == before


def test_append_refuses_tiles_that_do_not_match_the_checkpoint(
    writer: LogWriter, tmp_path: Path
) -> None:
    writer.append(numbered(0, 300))
    tile = tmp_path / "log" / "tile" / "0" / "001.p" / "44"
    data = bytearray(tile.read_bytes())
    data[0] ^= 1
    tile.write_bytes(bytes(data))
    before = snapshot(tmp_path / "log")
    with pytest.raises(
        TileError, match="the tiles of the right edge do not hash to the checkpoint's root"
    ):
        writer.append([b"x"])
    assert snapshot(tmp_path / "log") == before


def test_append_refuses_a_missing_tile(writer: LogWriter, tmp_path: Path) -> None:
    writer.append(numbered(0, 300))
    (tmp_path / "log" / "tile" / "entries" / "001.p" / "44").unlink()
    with pytest.raises(LocalIOError, match="lacks a tile"):
        writer.append([b"x"])


def test_bad_batches_write_nothing(writer: LogWriter, tmp_path: Path) -> None:
    writer.append(numbered(0, 3))
    before = snapshot(tmp_path / "log")
    with pytest.raises(InputError, match="empty"):
        writer.append([])
    with pytest.raises(InputError, match="65535"):
        writer.append([b"fine", b"x" * (MAX_ENTRY_BYTES + 1)])
    assert snapshot(tmp_path / "log") == before
    writer.append([b"x" * MAX_ENTRY_BYTES])  # the largest entry fits


def test_a_crash_before_the_checkpoint_leaves_the_old_log(
    writer: LogWriter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer.append(numbered(0, 250))
    old = writer.checkpoint().note
    real = tlog_store.atomic_write

    def crash_on_checkpoint(path: Path, data: bytes, **kwargs: Any) -> None:
        if path.name == "checkpoint":
            raise LocalIOError("disk full (simulated)")
        real(path, data, **kwargs)

    monkeypatch.setattr(tlog_store, "atomic_write", crash_on_checkpoint)
    with pytest.raises(LocalIOError, match="simulated"):
        writer.append(numbered(250, 20))  # its tiles were written; its checkpoint was not
    monkeypatch.undo()
    assert writer.checkpoint().note == old
    # The next append builds on the old checkpoint; the orphan tiles are overwritten.
    appended = writer.append(numbered(1000, 20))
    assert appended.first_index == 250
    leaves = [merkle.leaf_hash(e) for e in [*numbered(0, 250), *numbered(1000, 20)]]
    assert appended.checkpoint.root == merkle.root(leaves)


def test_writer_needs_an_ed25519_key_and_a_valid_origin(tmp_path: Path) -> None:
    store = DirectoryTileStore(tmp_path / "log")
    with pytest.raises(InputError, match="cannot name a note key"):
        LogWriter(store, PrivateKey.generate(), origin="has space")
    with pytest.raises(InputError, match="is ecdsa-p256, not Ed25519"):
        LogWriter(store, PrivateKey.generate("ecdsa-p256"), origin=ORIGIN)


def _append_worker(args: tuple[str, str, int]) -> list[bytes]:
    directory, key_path, worker = args
    writer = LogWriter(
        DirectoryTileStore(Path(directory)), load_private_key(Path(key_path)), origin=ORIGIN
    )
    notes = []
    for batch in range(5):
        appended = writer.append([b"w%d b%d e%d" % (worker, batch, i) for i in range(1 + batch)])
        for receipt in appended.receipts:
            verify_receipt(receipt, [writer.signer.verifier], what="r")
        notes.append(appended.note)
    return notes


def test_concurrent_writers_never_sign_inconsistent_checkpoints(
    writer: LogWriter, tmp_path: Path
) -> None:
    key_path = tmp_path / "log.key"
    write_key_pair(writer.signer.key, key_path)
    jobs = [(str(tmp_path / "log"), str(key_path), worker) for worker in range(4)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        notes = [note for result in pool.map(_append_worker, jobs) for note in result]
    verifier: NoteVerifier = writer.signer.verifier
    final = writer.checkpoint().checkpoint
    assert final.size == 4 * (1 + 2 + 3 + 4 + 5)
    tree = TiledTree(final.size, writer.store, root=final.root)
    sizes = set()
    for note in notes:
        checkpoint = verify_checkpoint(note, [verifier], what="c").checkpoint
        sizes.add(checkpoint.size)
        proof = tree.consistency_proof(checkpoint.size)
        merkle.verify_consistency(checkpoint.size, final.size, checkpoint.root, final.root, proof)
    assert len(sizes) == len(notes)  # every append saw the one before it
    entries = [entry for _, entry in tree.entries(0, final.size)]
    assert len(set(entries)) == final.size


def test_the_writer_refuses_to_sign_a_tree_that_does_not_extend_the_old(
    writer: LogWriter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever computed the new tiles, a tree that does not extend the old is never signed."""
    writer.append(numbered(0, 300))
    before = snapshot(tmp_path / "log")
    honest = tlog_store.extend

    def rewriting_history(tree: TiledTree, entries: Any) -> Any:
        forked, _ = build_elsewhere([b"another history %d" % i for i in range(300)])
        return honest(TiledTree(300, forked), entries)

    monkeypatch.setattr(tlog_store, "extend", rewriting_history)
    with pytest.raises(merkle.ProofError, match="does not link the two roots"):
        writer.append([b"x"], receipts=False)  # the consistency proof alone refuses it
    with pytest.raises(
        merkle.ProofError, match="the consistency proof does not link the two roots"
    ):
        writer.append([b"x"])
    assert snapshot(tmp_path / "log") == before


def build_elsewhere(entries: list[bytes]) -> tuple[Any, bytes]:
    """A tile store in memory holding a log of ``entries``."""
    from provenance.tlog import OverlayReader, extend

    class Empty:
        def read_tiles(self, tiles: Any) -> list[bytes]:
            raise AssertionError("nothing stored")

    grown = extend(TiledTree(0, Empty()), entries)
    return OverlayReader(grown.tiles, Empty()), grown.root
