"""Tiles, proofs read from tiles, appending, receipts and the log entry (provenance.tlog)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance import merkle
from provenance.errors import FormatError, InputError, SchemaError, SignatureError
from provenance.keys import PrivateKey
from provenance.signednote import Checkpoint, NoteError, NoteSigner
from provenance.tlog import (
    ENTRIES,
    MAX_ENTRY_BYTES,
    LogEntry,
    Receipt,
    ReceiptError,
    Tile,
    TiledTree,
    TileError,
    bundles_for_size,
    decode_bundle,
    encode_bundle,
    extend,
    new_tiles,
    right_edge,
    tile_at,
    tiles_for_size,
    verify_receipt,
)
from tests.conftest import VECTORS

TILES_SPEC: dict[str, Any] = json.loads((VECTORS / "c2sp" / "tlog-tiles-examples.json").read_text())
REFERENCE: dict[str, Any] = json.loads((VECTORS / "merkle" / "rfc6962_reference.json").read_text())
TRANSPARENCY_DEV = VECTORS / "merkle" / "transparency-dev"
ORIGIN = "example.com/log"


class MemoryTiles:
    """A tile store in a dict, counting reads."""

    def __init__(self) -> None:
        self.tiles: dict[Tile, bytes] = {}
        self.reads = 0

    def read_tiles(self, tiles: Sequence[Tile]) -> list[bytes]:
        self.reads += 1
        return [self.tiles[tile] for tile in tiles]


def build(entries: Sequence[bytes], batches: Sequence[int] = ()) -> tuple[MemoryTiles, bytes]:
    """Append ``entries`` in batches of the given sizes (then the rest); return store and root."""
    store = MemoryTiles()
    size, root, position = 0, merkle.EMPTY_ROOT, 0
    for count in [*batches, len(entries)]:
        batch = entries[position : position + count]
        if not batch:
            continue
        grown = extend(TiledTree(size, store, root=root), batch)
        assert not set(grown.tiles) & set(store.tiles), "an existing tile was rewritten"
        store.tiles.update(grown.tiles)
        size, root, position = grown.size, grown.root, position + len(batch)
    return store, root


def leaves_of(entries: Sequence[bytes]) -> list[bytes]:
    return [merkle.leaf_hash(entry) for entry in entries]


def numbered(count: int) -> list[bytes]:
    return [b"entry %d" % i for i in range(count)]


# --- tile paths and layout ----------------------------------------------------------------------


def test_spec_index_path_example() -> None:
    for index, path in TILES_SPEC["index_paths"].items():
        assert Tile(0, int(index)).path == f"tile/0/{path}"
        assert Tile.from_path(f"tile/0/{path}") == Tile(0, int(index))


@pytest.mark.parametrize("size", sorted(TILES_SPEC["trees"]))
def test_spec_tile_layout_examples(size: str) -> None:
    expected = TILES_SPEC["trees"][size]
    tiles = tiles_for_size(int(size))
    partial = [tile.path for tile in tiles if tile.is_partial]
    assert partial == expected["partial_tiles"]
    full: dict[str, int] = {}
    for tile in tiles:
        if not tile.is_partial:
            full[str(tile.level)] = full.get(str(tile.level), 0) + 1
    assert full == expected["full_tiles_by_level"]
    assert [t.path for t in right_edge(int(size))] == expected["partial_tiles"]


@pytest.mark.parametrize(
    ("tile", "path"),
    [
        (Tile(0, 0), "tile/0/000"),
        (Tile(0, 5, 7), "tile/0/005.p/7"),
        (Tile(63, 999), "tile/63/999"),
        (Tile(1, 1000), "tile/1/x001/000"),
        (Tile(ENTRIES, 1234067, 255), "tile/entries/x001/x234/067.p/255"),
        (Tile(0, 2**63 - 1), "tile/0/x009/x223/x372/x036/x854/x775/807"),  # the largest index
    ],
)
def test_tile_paths_round_trip(tile: Tile, path: str) -> None:
    assert tile.path == path
    assert Tile.from_path(path) == tile


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/5",
        "tile/0/0005",
        "tile/00/000",
        "tile/64/000",
        "tile/0/x000/005",  # not canonical
        "tile/0/001/002",  # the x prefix is missing
        "tile/0/x001",  # the last group has an x
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/07",
        "tile/data/000",
        "tile/0/000/",
        "/tile/0/000",
        "tile/0/000.p/5\n",
        "tile/-1/000",
        "tile/0/" + "x999/" * 1500 + "999",  # an index of thousands of digits
    ],
)
def test_bad_tile_paths_are_refused(path: str) -> None:
    with pytest.raises(
        FormatError,
        match=r"not a tile path|level or width out of range|not the canonical path of tile",
    ):
        Tile.from_path(path)


@pytest.mark.parametrize(
    "path",
    ["tile/0/x009/x223/x372/x036/x854/x775/808", "tile/entries/x099/x999/x999/x999/x999/x999/999"],
)
def test_a_tile_index_no_database_integer_holds_is_refused(path: str) -> None:
    """Above 2**63 - 1 no tree has the tile (nor can a signed 64-bit integer hold its index)."""
    with pytest.raises(FormatError, match=r"tile index above 2\*\*63 - 1"):
        Tile.from_path(path)


def test_tiles_of_small_and_boundary_sizes() -> None:
    assert tiles_for_size(0) == []
    assert bundles_for_size(0) == []
    assert tiles_for_size(1) == [Tile(0, 0, 1)]
    assert tiles_for_size(256) == [Tile(0, 0), Tile(1, 0, 1)]
    assert tiles_for_size(257) == [Tile(0, 0), Tile(0, 1, 1), Tile(1, 0, 1)]
    assert bundles_for_size(513) == [Tile(ENTRIES, 0), Tile(ENTRIES, 1), Tile(ENTRIES, 2, 1)]
    assert tile_at(0, 255, 300) == Tile(0, 0)
    assert tile_at(0, 256, 300) == Tile(0, 1, 44)
    with pytest.raises(ValueError, match="a tree of size 300 has no hash 300 at level 0"):
        tile_at(0, 300, 300)


@given(st.integers(0, 200_000), st.integers(0, 200_000))
def test_new_tiles_are_the_difference_of_the_layouts(a: int, b: int) -> None:
    old, new = min(a, b), max(a, b)
    layout_old = set(tiles_for_size(old)) | set(bundles_for_size(old))
    layout_new = set(tiles_for_size(new)) | set(bundles_for_size(new))
    assert set(new_tiles(old, new)) == layout_new - layout_old


def test_entry_bundles() -> None:
    entries = [b"", b"a", b"x" * MAX_ENTRY_BYTES]
    data = encode_bundle(entries)
    assert data[:2] == b"\x00\x00" and data[2:5] == b"\x00\x01a"
    assert decode_bundle(data, 3, what="b") == entries
    for bad, width in ((data[:-1], 3), (data, 2), (data, 4), (data + b"\x00", 3)):
        with pytest.raises(
            TileError,
            match=(
                r"entry \d+ is truncated|more than \d+ entries or a truncated length"
                r"|holds \d+ entries, expected \d+"
            ),
        ):
            decode_bundle(bad, width, what="b")
    with pytest.raises(InputError, match="65535"):
        encode_bundle([b"x" * (MAX_ENTRY_BYTES + 1)])


# --- proofs from tiles --------------------------------------------------------------------------


def test_reference_tree_roots_from_tiles() -> None:
    entries = [bytes.fromhex(h) for h in REFERENCE["leaf_inputs_hex"]]
    for size, expected in enumerate(REFERENCE["root_by_size_hex"]):
        store, root = build(entries[:size])
        assert root.hex() == expected
        assert TiledTree(size, store).root_hash().hex() == expected


def _happy(kind: str) -> list[dict[str, Any]]:
    """The happy-path probes of the numbered sets, which are all over the reference tree."""
    paths = sorted((TRANSPARENCY_DEV / kind).glob("[0-9]/happy-path.json"))
    return [json.loads(path.read_text()) for path in paths]


def test_transparency_dev_inclusion_vectors_from_tiles() -> None:
    entries = [bytes.fromhex(h) for h in REFERENCE["leaf_inputs_hex"]]
    cases = _happy("inclusion")
    assert len(cases) == 5
    for case in cases:
        size = case["treeSize"]
        store, root = build(entries[:size])
        assert base64.b64encode(root).decode() == case["root"]
        proof = TiledTree(size, store, root=root).inclusion_proof(case["leafIdx"])
        assert [base64.b64encode(p).decode() for p in proof] == (case["proof"] or [])


def test_transparency_dev_consistency_vectors_from_tiles() -> None:
    entries = [bytes.fromhex(h) for h in REFERENCE["leaf_inputs_hex"]]
    cases = _happy("consistency")
    assert len(cases) == 5
    for case in cases:
        store, root = build(entries[: case["size2"]])
        assert base64.b64encode(root).decode() == case["root2"]
        proof = TiledTree(case["size2"], store, root=root).consistency_proof(case["size1"])
        assert [base64.b64encode(p).decode() for p in proof] == (case["proof"] or [])


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 2000),
    st.lists(st.integers(1, 700), max_size=6),
    st.data(),
)
def test_proofs_from_tiles_equal_proofs_over_all_leaves(
    size: int, batches: list[int], data: st.DataObject
) -> None:
    entries = numbered(size)
    leaves = leaves_of(entries)
    store, root = build(entries, batches)
    assert root == merkle.root(leaves)
    tree = TiledTree(size, store, root=root)
    for index in data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=5)):
        assert tree.inclusion_proof(index) == merkle.inclusion_proof(index, leaves)
    for old in data.draw(st.lists(st.integers(1, size), min_size=1, max_size=5)):
        assert tree.consistency_proof(old) == merkle.consistency_proof(old, leaves)
    lo = data.draw(st.integers(0, size - 1))
    hi = data.draw(st.integers(lo + 1, size))
    assert tree.range_hash(lo, hi) == merkle.root(leaves[lo:hi])
    start = data.draw(st.integers(0, size))
    assert list(tree.entries(start, size)) == list(enumerate(entries))[start:]


def test_only_the_trees_own_tiles_are_read() -> None:
    """A tree of 300 entries, its tiles authenticated against its root, is asked for tiles of
    older sizes (partial tiles a log keeps serving, which its root does not cover) and for tiles
    beyond it: refused, even when a store serves forged ones; its own tiles are read."""
    entries = numbered(300)
    store, root = build(entries, [5])
    forged = numbered(1005)[1000:]
    store.tiles[Tile(ENTRIES, 0, 5)] = encode_bundle(forged)
    store.tiles[Tile(0, 0, 5)] = b"".join(leaves_of(forged))
    tree = TiledTree(300, store, root=root)
    for wrong in (Tile(ENTRIES, 0, 5), Tile(ENTRIES, 2), Tile(ENTRIES, 1, 45)):
        with pytest.raises(ValueError, match="is not a tile of"):
            tree.bundle(wrong)
    for wrong in (Tile(0, 0, 5), Tile(0, 1), Tile(1, 0, 2), Tile(0, 1, 45)):
        with pytest.raises(ValueError, match="is not a tile of"):
            tree.tile_hashes(wrong)
    assert tree.bundle(Tile(ENTRIES, 1, 44)) == entries[256:]
    assert tree.bundle(Tile(ENTRIES, 0)) == entries[:256]
    assert tree.tile_hashes(Tile(1, 0, 1)) == [merkle.root(leaves_of(entries[:256]))]


def test_a_large_tree_from_tiles() -> None:
    """70,000+ entries over three levels, appended in uneven batches."""
    entries = numbered(70_123)
    leaves = leaves_of(entries)
    store, root = build(entries, [1, 255, 257, 65_536, 3000])
    assert root == merkle.root(leaves)
    assert {t for t in store.tiles if not t.is_entries} >= set(tiles_for_size(70_123))
    tree = TiledTree(70_123, store, root=root)
    for index in (0, 255, 256, 65_535, 65_536, 70_122):
        assert tree.inclusion_proof(index) == merkle.inclusion_proof(index, leaves)
    for old in (1, 256, 65_536, 70_000):
        assert tree.consistency_proof(old) == merkle.consistency_proof(old, leaves)


def test_one_batched_read_per_proof() -> None:
    store, root = build(numbered(5000))
    tree = TiledTree(5000, store, root=root)
    before = store.reads
    tree.inclusion_proof(1234)
    assert store.reads == before + 1


def test_built_tiles_equal_tiles_built_at_once() -> None:
    entries = numbered(3000)
    one, _ = build(entries)
    many, _ = build(entries, [1, 1, 254, 1, 511, 7, 300])
    for tile in [*tiles_for_size(3000), *bundles_for_size(3000)]:
        assert one.tiles[tile] == many.tiles[tile]


def test_extend_refuses_an_oversized_entry() -> None:
    with pytest.raises(InputError, match="entry 1 of the batch has 65536 bytes"):
        extend(TiledTree(0, MemoryTiles()), [b"ok", b"x" * (MAX_ENTRY_BYTES + 1)])


# --- authentication of tiles --------------------------------------------------------------------


def _flip(data: bytes, position: int = 0) -> bytes:
    return data[:position] + bytes([data[position] ^ 1]) + data[position + 1 :]


def test_a_tampered_right_edge_tile_is_caught() -> None:
    store, root = build(numbered(600))
    store.tiles[Tile(0, 2, 88)] = _flip(store.tiles[Tile(0, 2, 88)])
    with pytest.raises(TileError, match="right edge"):
        TiledTree(600, store, root=root).inclusion_proof(599)
    # Without a root to check against, the same tiles give a wrong proof silently.
    proof = TiledTree(600, store).inclusion_proof(599)
    assert proof != merkle.inclusion_proof(599, leaves_of(numbered(600)))


def test_a_tampered_full_tile_is_caught() -> None:
    store, root = build(numbered(600))
    store.tiles[Tile(0, 0)] = _flip(store.tiles[Tile(0, 0)], 40)
    tree = TiledTree(600, store, root=root)
    tree.inclusion_proof(599)  # does not use tile 0/000's leaves... only its hash, from above
    with pytest.raises(TileError, match="tile/0/000 does not match its hash in tile/1/000.p/2"):
        tree.inclusion_proof(3)


def test_a_tampered_entry_is_caught() -> None:
    store, root = build(numbered(600))
    bundle = Tile(ENTRIES, 1)
    store.tiles[bundle] = store.tiles[bundle].replace(b"entry 300", b"entry 3O0")
    tree = TiledTree(600, store, root=root)
    assert len(list(tree.entries(0, 256))) == 256
    with pytest.raises(TileError, match="entry 300 in tile/entries/001"):
        list(tree.entries(256, 600))


def test_a_truncated_tile_is_caught() -> None:
    store, root = build(numbered(600))
    store.tiles[Tile(0, 1)] = store.tiles[Tile(0, 1)][:-1]
    with pytest.raises(TileError, match="holds 8191 bytes"):
        TiledTree(600, store).inclusion_proof(300)


def test_a_malformed_bundle_is_caught() -> None:
    store, root = build(numbered(600))
    store.tiles[Tile(ENTRIES, 0)] += b"\x00"
    with pytest.raises(TileError, match="more than 256 entries or a truncated length"):
        list(TiledTree(600, store, root=root).entries(0, 10))


def test_the_empty_tree_has_the_empty_root() -> None:
    assert TiledTree(0, MemoryTiles(), root=merkle.EMPTY_ROOT).root_hash() == merkle.EMPTY_ROOT
    with pytest.raises(TileError, match="an empty tree's root is SHA-256 of nothing"):
        TiledTree(0, MemoryTiles(), root=bytes(32))


def test_extend_refuses_tiles_that_do_not_match_the_root() -> None:
    store, root = build(numbered(300))
    store.tiles[Tile(0, 1, 44)] = _flip(store.tiles[Tile(0, 1, 44)])
    with pytest.raises(TileError, match="right edge"):
        extend(TiledTree(300, store, root=root), [b"more"])


# --- receipts -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed_log() -> dict[str, Any]:
    key = PrivateKey.generate()
    signer = NoteSigner.ed25519(ORIGIN, key)
    entries = numbered(300)
    store, root = build(entries)
    note = Checkpoint(ORIGIN, 300, root).sign([signer])
    tree = TiledTree(300, store, root=root)
    receipt = Receipt(257, tuple(tree.inclusion_proof(257)), note, extra=entries[257])
    return {"key": key, "signer": signer, "receipt": receipt, "tree": tree, "note": note}


def test_receipt_round_trip(signed_log: dict[str, Any]) -> None:
    receipt: Receipt = signed_log["receipt"]
    text = receipt.to_bytes()
    assert text.startswith(b"c2sp.org/tlog-proof@v1\nextra ZW50cnkgMjU3\nindex 257\n")
    assert Receipt.parse(text, what="r") == receipt
    verified = verify_receipt(
        Receipt.parse(text, what="r"), [signed_log["signer"].verifier], what="r"
    )
    assert (verified.index, verified.entry) == (257, b"entry 257")
    assert verified.checkpoint.checkpoint.size == 300


def test_receipt_of_a_one_entry_tree_has_no_proof_lines() -> None:
    signer = NoteSigner.ed25519(ORIGIN, PrivateKey.generate())
    root = merkle.leaf_hash(b"only")
    receipt = Receipt(0, (), Checkpoint(ORIGIN, 1, root).sign([signer]), extra=b"only")
    parsed = Receipt.parse(receipt.to_bytes(), what="r")
    assert parsed == receipt
    assert verify_receipt(parsed, [signer.verifier], what="r").entry == b"only"


def _verify_text(text: bytes, signed_log: dict[str, Any]) -> None:
    verify_receipt(Receipt.parse(text, what="r"), [signed_log["signer"].verifier], what="r")


def test_receipt_with_the_wrong_index_fails(signed_log: dict[str, Any]) -> None:
    text = signed_log["receipt"].to_bytes().replace(b"index 257", b"index 258")
    with pytest.raises(merkle.ProofError, match="entry 258"):
        _verify_text(text, signed_log)


def test_receipt_with_the_wrong_extra_fails(signed_log: dict[str, Any]) -> None:
    other = base64.b64encode(b"entry 258")
    text = signed_log["receipt"].to_bytes().replace(base64.b64encode(b"entry 257"), other)
    with pytest.raises(merkle.ProofError, match="another root"):
        _verify_text(text, signed_log)


def test_receipt_with_a_tampered_proof_fails(signed_log: dict[str, Any]) -> None:
    receipt: Receipt = signed_log["receipt"]
    proof = (_flip(receipt.proof[0]), *receipt.proof[1:])
    text = Receipt(receipt.index, proof, receipt.checkpoint, receipt.extra).to_bytes()
    with pytest.raises(merkle.ProofError, match="the inclusion proof leads to another root"):
        _verify_text(text, signed_log)
    short = Receipt(receipt.index, receipt.proof[:-1], receipt.checkpoint, receipt.extra)
    with pytest.raises(merkle.ProofError, match="shorter"):
        _verify_text(short.to_bytes(), signed_log)


def test_receipt_with_the_wrong_size_fails(signed_log: dict[str, Any]) -> None:
    receipt: Receipt = signed_log["receipt"]
    root = signed_log["tree"].root_hash()
    # A checkpoint of another size over the same root (as a lying log would sign): the path
    # of leaf 257 has another shape in a tree of 258 or 512, and 257 is outside a tree of 257.
    for size in (257, 258, 512):
        forged = Checkpoint(ORIGIN, size, root).sign([signed_log["signer"]])
        text = Receipt(receipt.index, receipt.proof, forged, receipt.extra).to_bytes()
        with pytest.raises(
            merkle.ProofError,
            match=r"entry 257 is not in the tree of size \d+ that the checkpoint signs",
        ):
            _verify_text(text, signed_log)


def test_receipt_with_a_tampered_root_fails(signed_log: dict[str, Any]) -> None:
    receipt: Receipt = signed_log["receipt"]
    lines = receipt.checkpoint.decode().split("\n")
    lines[2] = base64.b64encode(_flip(base64.b64decode(lines[2]))).decode()
    text = Receipt(receipt.index, receipt.proof, "\n".join(lines).encode(), receipt.extra)
    with pytest.raises(
        SignatureError, match=r"the signature by trusted key '.*' \([0-9a-f]{8}\) does not verify"
    ):
        _verify_text(text.to_bytes(), signed_log)


def test_receipt_signed_by_another_key_fails(signed_log: dict[str, Any]) -> None:
    receipt: Receipt = signed_log["receipt"]
    stranger = NoteSigner.ed25519(ORIGIN, PrivateKey.generate())
    checkpoint = Checkpoint(ORIGIN, 300, signed_log["tree"].root_hash()).sign([stranger])
    text = Receipt(receipt.index, receipt.proof, checkpoint, receipt.extra).to_bytes()
    with pytest.raises(SignatureError, match="not signed by a trusted key"):
        _verify_text(text, signed_log)


def test_receipt_with_the_wrong_origin_fails(signed_log: dict[str, Any]) -> None:
    receipt: Receipt = signed_log["receipt"]
    checkpoint = Checkpoint("evil.example/log", 300, signed_log["tree"].root_hash())
    text = Receipt(
        receipt.index, receipt.proof, checkpoint.sign([signed_log["signer"]]), receipt.extra
    ).to_bytes()
    with pytest.raises(SignatureError, match="origin"):
        _verify_text(text, signed_log)


def test_receipt_without_extra_cannot_verify_the_entry(signed_log: dict[str, Any]) -> None:
    receipt: Receipt = signed_log["receipt"]
    bare = Receipt(receipt.index, receipt.proof, receipt.checkpoint)
    with pytest.raises(ReceiptError, match="no extra line"):
        _verify_text(bare.to_bytes(), signed_log)
    verified = verify_receipt(
        Receipt.parse(bare.to_bytes(), what="r"),
        [signed_log["signer"].verifier],
        entry=b"entry 257",
        what="r",
    )
    assert verified.entry == b"entry 257"


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda t: t.replace(b"c2sp.org/tlog-proof@v1", b"c2sp.org/tlog-proof@v2"), "not a c2sp"),
        (lambda t: t.replace(b"index 257", b"index 0257"), "not a decimal"),
        (lambda t: t.replace(b"index 257", b"index -1"), "not a decimal"),
        (lambda t: t.replace(b"index 257\n", b""), "no index line"),
        (lambda t: t.replace(b"extra ZW50cnkgMjU3", b"extra ZW50cnkgMjU3!"), "extra line"),
        (lambda t: t.replace(b"\n\n", b"\n", 1), "index .* is not a decimal|proof line"),
        (lambda t: t[: t.index(b"\n\n")], "no blank line"),
        (lambda t: t.replace(b"index 257\n", b"index 257\nAAAA\n"), "proof line 1"),
        (lambda t: t.replace(b"index 257\n", b"index 257\n\xc3\xa9\n"), "not ASCII"),
        (lambda t: t + b"x" * (2 * 1024 * 1024), "larger than"),
        (lambda t: t.replace(b"index 257\n", b"index 257\n" + b"A" * 43 + b"=\n" * 60), "more"),
    ],
)
def test_malformed_receipts_are_refused(
    mangle: Any, message: str, signed_log: dict[str, Any]
) -> None:
    with pytest.raises(ReceiptError, match=message):
        Receipt.parse(mangle(signed_log["receipt"].to_bytes()), what="r")


def test_truncated_checkpoint_in_a_receipt_is_refused(signed_log: dict[str, Any]) -> None:
    text = signed_log["receipt"].to_bytes()
    with pytest.raises(NoteError, match="the note has no signature lines, or no final newline"):
        _verify_text(text[:-20], signed_log)


# --- the log entry ------------------------------------------------------------------------------


def _entry(**changes: Any) -> LogEntry:
    fields: dict[str, Any] = {
        "card": hashlib.sha256(b"statement").hexdigest(),
        "envelope": "1" * 64,
        "manifest": "2" * 64,
        "merkle_root": "3" * 64,
        "entries": 12,
        "name": "books",
        "version": "1.0",
        "publisher": ("a" * 64, "b" * 64),
        "registered": dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC),
    }
    fields.update(changes)
    return LogEntry(**fields)


def test_log_entry_is_rfc8785_and_round_trips() -> None:
    entry = _entry()
    data = entry.to_bytes()
    assert data.startswith(b'{"card":"')
    assert b" " not in data and data.endswith(b'"type":"provenance.card/v1","version":"1.0"}')
    assert LogEntry.from_bytes(data, what="e") == entry


def test_log_entry_refuses_non_canonical_bytes() -> None:
    data = json.dumps(_entry().to_dict(), indent=1).encode()
    with pytest.raises(FormatError, match="canonical"):
        LogEntry.from_bytes(data, what="e")


@pytest.mark.parametrize(
    "change",
    [
        {"type": "provenance.card/v2"},
        {"card": "A" * 64},
        {"publisher": []},
        {"publisher": ["a" * 64, "a" * 64]},
        {"registered": "2026-11-29 12:00:00"},
        {"extra": 1},
        {"entries": -1},
    ],
)
def test_log_entry_schema(change: dict[str, Any]) -> None:
    document = {**_entry().to_dict(), **change}
    from provenance import _json

    with pytest.raises(SchemaError, match=r"^e: at "):
        LogEntry.from_bytes(_json.canonical(document), what="e")


def test_log_entry_size_cap() -> None:
    with pytest.raises(SchemaError, match="log entry: at name: "):
        _entry(name="n" * 201).to_bytes()
    many = tuple(hashlib.sha256(bytes([i])).hexdigest() for i in range(64))
    assert len(_entry(publisher=many).to_bytes()) < MAX_ENTRY_BYTES
