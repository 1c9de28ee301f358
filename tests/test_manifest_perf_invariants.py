"""The fast paths of manifest building and reading keep the guarantees of the simple ones.

Building hashes while walking, on a process pool, in tasks whose size depends on thresholds;
reading and writing check whole blocks of lines at once and compute the Merkle tree in a
second process. These tests shrink the thresholds so that every path runs on a small corpus,
and compare the results with independent reference implementations: byte-identical manifests
whatever the number of workers, shards that merge into the whole, the same error naming the
same line as a line-by-line reader, and a typed entry decoder that agrees with the JSON Schema.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance import _json, manifest, merkle
from provenance.errors import FormatError, LocalIOError
from provenance.manifest import ManifestEntry

SCHEMA = json.loads(
    (Path(manifest.__file__).parent.parent / "schemas" / "manifest-entry.v1.json").read_text(
        "utf-8"
    )
)


@pytest.fixture
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thresholds small enough for a corpus of a few hundred KiB to take every path."""
    monkeypatch.setattr(manifest.hashing, "_BUFFER_SIZE", 4096)
    monkeypatch.setattr(manifest.hashing, "_LARGE_FILE", 48 * 1024)
    monkeypatch.setattr(manifest.hashing, "_CHUNK_FILES", 16)
    monkeypatch.setattr(manifest.hashing, "_CHUNK_BYTES", 40 * 1024)
    monkeypatch.setattr(manifest.hashing, "_PARALLEL_FILES", 30)
    monkeypatch.setattr(manifest.hashing, "_PARALLEL_BYTES", 64 * 1024)
    monkeypatch.setattr(manifest.build, "_STAT_FIRST", 30)  # sizes known for some files, not others


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the process pools started (so a test knows the parallel path ran)."""
    started: list[int] = []
    real = concurrent.futures.ProcessPoolExecutor

    class Counting(real):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            started.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Counting)
    return started


def _mixed_corpus(root: Path) -> dict[str, bytes]:
    """Small files in folders, files over the (patched) large threshold, empty files,
    duplicate contents under different names, sizes around the (patched) buffer size."""
    files: dict[str, bytes] = {}
    for i in range(150):
        size = (i * 977) % 6000
        files[f"folder-{i % 7}/file-{i:03d}.txt"] = hashlib.shake_256(b"%d" % i).digest(size)
    for i in range(4):
        files[f"big/blob-{i}.bin"] = hashlib.shake_256(b"big%d" % i).digest(60_000 + i * 9_000)
    for size in (4095, 4096, 4097, 8192, 30_000):
        files[f"edges/size-{size}"] = bytes(size)
    files["empty-1"] = b""
    files["folder-3/empty-2"] = b""
    files["dup/a.txt"] = files["dup/b.txt"] = b"same content\n"
    files["caf\u00e9/\u65e5\u672c.txt"] = b"unicode"
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def _reference_manifest(files: dict[str, bytes]) -> bytes:
    entries = sorted(
        (hashlib.sha256(data).hexdigest(), name, len(data)) for name, data in files.items()
    )
    return b"".join(
        _json.canonical({"id": name, "sha256": digest, "size": size}) + b"\n"
        for digest, name, size in entries
    )


def _build(root: Path, output: Path, **kwargs: Any) -> bytes:
    manifest.write_manifest(manifest.build_from_directory(root, **kwargs), output)
    return output.read_bytes()


@pytest.mark.usefixtures("small_thresholds")
def test_same_manifest_bytes_whatever_workers(tmp_path: Path, pools: list[int]) -> None:
    files = _mixed_corpus(tmp_path / "data")
    expected = _reference_manifest(files)
    assert _build(tmp_path / "data", tmp_path / "w1.jsonl", workers=1) == expected
    assert pools == []
    for workers in (2, 3):
        assert _build(tmp_path / "data", tmp_path / "w.jsonl", workers=workers) == expected
    assert len(pools) == 2  # the parallel path really ran


@pytest.mark.usefixtures("small_thresholds")
def test_walk_with_and_without_stat_hash_the_same(tmp_path: Path) -> None:
    files = _mixed_corpus(tmp_path / "data")
    (tmp_path / "data" / "out.jsonl").write_text("the output, excluded")
    exclude = {os.path.realpath(tmp_path / "data" / "out.jsonl")}
    totals: list[int] = []
    progress: list[int] = []

    def on_total(total: int) -> None:
        assert not progress, "on_total comes before any progress"
        totals.append(total)

    for workers in (1, 2):
        with_stat = manifest.hash_tree(
            tmp_path / "data",
            workers=workers,
            exclude=exclude,
            on_total=on_total,
            progress=progress.append,
        )
        without = manifest.hash_tree(tmp_path / "data", workers=workers, exclude=exclude)
        assert sorted((r.id, d) for r, d in with_stat) == sorted((r.id, d) for r, d in without)
        assert {r.id: d.sha256 for r, d in without if d} == {
            name: hashlib.sha256(data).hexdigest() for name, data in files.items()
        }
        assert totals == [sum(map(len, files.values()))] == [sum(progress)]
        totals.clear()
        progress.clear()


@pytest.mark.usefixtures("small_thresholds")
def test_shards_merge_into_the_whole_build(tmp_path: Path) -> None:
    _mixed_corpus(tmp_path / "data")
    whole = manifest.write_manifest(
        manifest.build_from_directory(tmp_path / "data", workers=2), tmp_path / "whole.jsonl"
    )
    parts = []
    for index in range(3):
        part = tmp_path / f"part-{index}.jsonl"
        entries = manifest.build_from_directory(tmp_path / "data", workers=2, shard=(index, 3))
        assert entries, "each shard gets some files"
        manifest.write_manifest(entries, part)
        parts.append(part)
    merged = manifest.merge_manifests(parts, tmp_path / "merged.jsonl")
    assert merged == whole
    assert (tmp_path / "merged.jsonl").read_bytes() == (tmp_path / "whole.jsonl").read_bytes()


@pytest.mark.usefixtures("small_thresholds")
def test_a_file_changed_in_a_worker_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _mixed_corpus(tmp_path / "data")
    target = str(tmp_path / "data" / "big" / "blob-2.bin")
    real_readv = os.readv

    def readv_then_append(fd: int, buffers: list[memoryview]) -> int:
        count = real_readv(fd, buffers)
        if os.readlink(f"/proc/self/fd/{fd}") == target:
            with open(target, "ab") as handle:
                handle.write(b"x")  # on every read: the file keeps growing while it is read
        return count

    monkeypatch.setattr(os, "readv", readv_then_append)  # copied into the forked workers
    with pytest.raises(LocalIOError, match=r"blob-2\.bin: file changed while it was being hashed"):
        manifest.build_from_directory(tmp_path / "data", workers=2)


# ----------------------------------------------------------------------------------------------
# Reading and writing in blocks


def _entries(count: int) -> list[ManifestEntry]:
    entries = [
        ManifestEntry(
            id=f"d{i % 13}/f-{i:05d}",
            sha256=hashlib.sha256(b"%d" % (i // 3)).hexdigest(),  # ties: same digest, 3 ids
            size=i * 7 if i % 5 else None,
            license="MIT" if i % 11 == 0 else None,
        )
        for i in range(count)
    ]
    return sorted(entries, key=ManifestEntry.sort_key)


def _reference_lines(entries: list[ManifestEntry]) -> bytes:
    return b"".join(manifest.entry_bytes(e) + b"\n" for e in entries)


def _reference_summary(data: bytes) -> tuple[str, int, int, str]:
    lines = data.split(b"\n")[:-1]
    total = sum(json.loads(line).get("size", 0) for line in lines)
    root = merkle.root([merkle.leaf_hash(line) for line in lines]).hex()
    return hashlib.sha256(data).hexdigest(), len(lines), total, root


def _reference_read(path: Path) -> list[ManifestEntry]:
    """The line-by-line reader the block reader must agree with (errors included)."""
    what = str(path)
    previous: tuple[str, str] | None = None
    seen: set[str] = set()
    entries = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if len(raw) > manifest.MAX_LINE_BYTES:
                raise FormatError(
                    f"{what}:{number}: line longer than {manifest.MAX_LINE_BYTES} bytes"
                )
            if not raw.endswith(b"\n"):
                raise FormatError(f"{what}:{number}: last line has no newline (truncated file?)")
            entry = manifest.decode_entry(raw[:-1], what=f"{what}:{number}")
            key = (entry.sha256, entry.id)
            if previous is not None and key <= previous:
                raise FormatError(f"{what}:{number}: entries are not ordered by (sha256, id)")
            if entry.id in seen:
                raise FormatError(f"{what}:{number}: id {entry.id!r} appears twice")
            seen.add(entry.id)
            previous = key
            entries.append(entry)
    return entries


@pytest.fixture(params=["in-process", "forked"])
def small_blocks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Blocks of a few lines, and the Merkle tree in this process or in a forked one."""
    monkeypatch.setattr(manifest.reader, "_READ_BLOCK", 3000)
    monkeypatch.setattr(manifest.writer, "_WRITE_BLOCK", 16)
    forked = request.param == "forked"
    monkeypatch.setattr(manifest._leaves, "MERKLE_PROCESS_BYTES", 0 if forked else 1 << 62)
    monkeypatch.setattr(manifest._leaves, "other_cores", lambda: forked)
    return str(request.param)


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("count", [0, 1, 15, 16, 17, 100, 1000])
def test_blocks_write_and_read_what_lines_would(tmp_path: Path, count: int) -> None:
    entries = _entries(count)
    path = tmp_path / "m.jsonl"
    summary = manifest.write_manifest(entries, path)
    data = path.read_bytes()
    assert data == _reference_lines(entries)
    assert (summary.digest, summary.entries, summary.total_bytes, summary.root) == (
        _reference_summary(data)
    )
    loaded = manifest.read_manifest(path)
    assert loaded.entries == entries
    assert loaded.summary == summary
    assert list(manifest.iter_manifest(path)) == entries


def _corruptions(lines: list[bytes]) -> Iterator[tuple[str, bytes]]:
    """(name, file bytes) with one fault placed early, at a block edge, and late."""
    n = len(lines)
    for at in (0, 40, 41, n // 2, n - 1):
        damaged = list(lines)
        yield f"swap@{at}", b"".join(_swap(damaged, at))
        damaged = list(lines)
        damaged[at] = damaged[at].replace(b'"id":"', b'"id":"x', 1)
        yield f"renamed@{at}", b"".join(damaged)
        damaged = list(lines)
        damaged[at] = damaged[at].replace(b",", b", ", 1)
        yield f"space@{at}", b"".join(damaged)
        damaged = list(lines)
        damaged[at] = damaged[at][:-1] + b"\r\n"
        yield f"crlf@{at}", b"".join(damaged)
        damaged = list(lines)
        damaged.insert(at, b"\n")
        yield f"blank@{at}", b"".join(damaged)
        damaged = list(lines)
        damaged[at] = damaged[at].replace(b'"sha256":"', b'"sha256":"A', 1)
        yield f"invalid@{at}", b"".join(damaged)
        damaged = list(lines)
        damaged.insert(at, damaged[max(0, at - 30)])
        yield f"repeat@{at}", b"".join(damaged)
        damaged = list(lines)
        damaged[at] = (
            b'{"id":"'
            + json.loads(damaged[-1])["id"].encode()
            + damaged[at][damaged[at].index(b'","sha256"') :]
        )
        yield f"duplicate-id@{at}", b"".join(damaged)
    yield "truncated", b"".join(lines)[:-7]
    yield "no-final-newline", b"".join(lines)[:-1]
    yield "garbage-tail", b"".join(lines) + b"\x00" * 100


def _swap(lines: list[bytes], at: int) -> list[bytes]:
    other = at + 1 if at + 1 < len(lines) else at - 1
    lines[at], lines[other] = lines[other], lines[at]
    return lines


@pytest.mark.usefixtures("small_blocks")
def test_bad_lines_are_named_as_a_line_reader_names_them(tmp_path: Path) -> None:
    lines = _reference_lines(_entries(200)).splitlines(keepends=True)
    path = tmp_path / "m.jsonl"
    checked = 0
    for name, data in _corruptions(lines):
        path.write_bytes(data)
        try:
            _reference_read(path)
        except FormatError as exc:
            expected = str(exc)
        else:
            continue  # some edits (a renamed id) can stay valid
        with pytest.raises(FormatError) as info:
            manifest.read_manifest(path)
        assert str(info.value) == expected, name
        checked += 1
    assert checked >= 35


def _long_line_entry(length: int) -> bytes:
    """A valid canonical line of exactly ``length`` bytes (escapes make fields long)."""
    base = manifest.entry_bytes(ManifestEntry(id="x", sha256="a" * 64))
    fields = {"id": "x", "sha256": "a" * 64}
    remaining = length - len(base)
    for name in ("source", "url", "license", "rightsHolder"):
        if remaining <= 0:
            break
        # "\u0001" costs 6 bytes per character in the canonical form; pad with "a" (1 byte).
        overhead = len(f',"{name}":""')
        room = min(remaining - overhead, 4096 * 6)
        escapes, plain = divmod(room, 6)
        if escapes >= 4096:
            escapes, plain = 4096, 0
        fields[name] = "\u0001" * escapes + "a" * min(plain, 4096 - escapes)
        remaining = length - len(_json.canonical(fields))
    line = _json.canonical(fields)
    assert len(line) == length, (len(line), length)
    return line


@pytest.mark.parametrize("length", [32767, 32768, 49000, 65534, 65535, 65536, 65537, 70000])
def test_long_lines_are_refused_exactly_at_the_limit(tmp_path: Path, length: int) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(_long_line_entry(length) + b"\n")
    try:
        expected: object = _reference_read(path)
    except FormatError as exc:
        expected = str(exc)
    try:
        got: object = manifest.read_manifest(path).entries
    except FormatError as exc:
        got = str(exc)
    assert got == expected
    assert (length + 1 > manifest.MAX_LINE_BYTES) == isinstance(got, str)


@pytest.mark.usefixtures("small_blocks")
def test_write_names_order_and_duplicate_errors_as_before(tmp_path: Path) -> None:
    entries = _entries(100)
    cases = {
        "not ordered": [*entries[:40], entries[41], entries[40], *entries[42:]],
        "appears twice": [*entries[:50], entries[49], *entries[50:]],
    }
    duplicate = ManifestEntry(id=entries[3].id, sha256="f" * 64)
    cases["appears twice (later digest)"] = [*entries, duplicate]
    for name, block in cases.items():
        with pytest.raises(FormatError, match=name.split(" (")[0]):
            manifest.write_manifest(block, tmp_path / "m.jsonl")
        assert not list(tmp_path.iterdir()), "nothing is left behind"


def test_a_manifest_changed_while_read_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manifest.reader, "_READ_BLOCK", 3000)
    monkeypatch.setattr(manifest._leaves, "MERKLE_PROCESS_BYTES", 0)
    monkeypatch.setattr(manifest._leaves, "other_cores", lambda: True)
    path = tmp_path / "m.jsonl"
    manifest.write_manifest(_entries(300), path)
    real_pread = os.pread

    def pread_changed(fd: int, length: int, offset: int) -> bytes:  # runs in the forked child
        data = real_pread(fd, length, offset)
        return data.replace(b'"size":7', b'"size":8', 1)

    monkeypatch.setattr(os, "pread", pread_changed)
    with pytest.raises(LocalIOError, match="changed while it was being read"):
        manifest.read_manifest(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=0, max_value=70), max_size=12), st.integers(0, 300))
def test_tree_extend_equals_adding_leaf_by_leaf(splits: list[int], size: int) -> None:
    leaves = [hashlib.sha256(b"%d" % i).digest() for i in range(size)]
    one = merkle.TreeBuilder()
    for leaf in leaves:
        one.add(leaf)
    many = merkle.TreeBuilder()
    start = 0
    for step in [*splits, size]:
        many.extend(leaves[start : start + step])
        start = min(size, start + step)
    assert many.size == one.size == size
    assert many.root() == one.root() == merkle.root(leaves)


# ----------------------------------------------------------------------------------------------
# The typed decoder agrees with schemas/manifest-entry.v1.json

_HEX = "0123456789abcdef"
_texts = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=20),
    st.sampled_from(["", "x" * 4095, "x" * 4096, "x" * 4097, "\u00e9" * 4096, "\u00e9" * 4097]),
)
_digests = st.one_of(
    st.text(st.sampled_from(_HEX), min_size=64, max_size=64),
    st.text(st.sampled_from(_HEX), min_size=63, max_size=65),
    st.text(st.sampled_from(_HEX + "ABCDEFg"), min_size=64, max_size=64),
    st.text(st.sampled_from(_HEX), min_size=64, max_size=64).map(lambda s: s + "\n"),
    st.text(st.sampled_from(_HEX), min_size=64, max_size=64).map(lambda s: "\n" + s),
)
_sizes = st.one_of(
    st.integers(min_value=-5, max_value=2**53 + 5),
    st.sampled_from([0, 2**53 - 1, 2**53, 2**64, -(2**63), 1.0, 1.5, 1e300, -0.0]),
    st.booleans(),
)
_other_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
# Ids that test the id rules beyond length: controls, bidi controls, separators, "..", "/",
# and NFC (which the schema cannot express: the decoder adds it, see the test below).
_ids = st.one_of(
    _texts,
    st.sampled_from(
        [
            "..", "../a", "a/..", "a/../b", "...", "a..b", "a/...", "/a", "/", "a/", "a//b",
            "a\x00", "a\x1b[2K", "a\x7f", "a\x85", "a\x9f", "\xa0", "a\u2028", "a\u2029",
            "a\u202eb", "a\u2066", "\u061c", "\u200e", "\u200d", "\ufeff", "a/..\n",
            "caf\u00e9", "cafe\u0301", "\u212b", "\u0301",
        ]
    ),
)  # fmt: skip
_FIELDS: dict[str, Any] = {
    "id": _ids,
    "sha256": _digests,
    "size": _sizes,
    "source": _texts,
    "url": _texts,
    "license": _texts,
    "rightsHolder": _texts,
    "textSha256": _digests,
}


_valid_texts = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=20),
    st.sampled_from(["x" * 4096, "\u00e9" * 4096, '\u0000\n\u2028"\\', "/\u007f"]),
)
_valid_digests = st.text(st.sampled_from(_HEX), min_size=64, max_size=64)
_valid_ids = st.one_of(
    st.text(st.characters(exclude_categories=("Cs", "Cc", "Cf", "Zl", "Zp")), min_size=1)
    .map(lambda text: unicodedata.normalize("NFC", text))
    .filter(lambda text: not text.startswith("/") and ".." not in text.split("/")),
    st.sampled_from(["x" * 4096, "\u00e9" * 4096, 'a/"b"\\c', "\u200d\ufeff"]),
)
_VALID: dict[str, Any] = {
    "id": _valid_ids,
    "sha256": _valid_digests,
    "size": st.integers(min_value=0, max_value=2**53 - 1),
    "source": _valid_texts,
    "url": _valid_texts,
    "license": _valid_texts,
    "rightsHolder": _valid_texts,
    "textSha256": _valid_digests,
}


@st.composite
def _documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid entry, then up to two edits that may or may not make it invalid."""
    document: dict[str, Any] = {}
    for name, values in _VALID.items():
        if name in ("id", "sha256") or draw(st.booleans()):
            document[name] = draw(values)
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
        name = draw(st.sampled_from(sorted(_FIELDS)))
        edit = draw(st.sampled_from(["drop", "edge", "edge", "mistype", "unknown"]))
        if edit == "drop":
            document.pop(name, None)
        elif edit == "edge":
            document[name] = draw(_FIELDS[name])
        elif edit == "mistype":
            document[name] = draw(_other_values)
        else:
            document[draw(st.sampled_from(["extra", "ID", "sha-256", ""]))] = draw(_other_values)
    return document


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents())
def test_entry_decoder_agrees_with_the_schema(document: dict[str, Any]) -> None:
    try:
        line = _json.canonical(document)  # a manifest line is the canonical form of its entry
    except FormatError:  # no canonical form (an integer beyond 2**53): the compact JSON, then
        line = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    decoded = json.loads(line)
    valid = jsonschema.Draft202012Validator(SCHEMA).is_valid(decoded)
    if valid:  # the one id rule beyond the schema
        valid = unicodedata.is_normalized("NFC", decoded["id"])
    try:
        entry = manifest.decode_entry(line, what="line")
    except FormatError:
        assert not valid, f"the decoder refuses what the schema accepts: {line!r}"
        # The block reader's fast path never accepts what the line decoder refuses.
        assert manifest.reader._check_block(line + b"\n", manifest.entry._OrderState()) is None
        return
    assert valid, f"the decoder accepts what the schema refuses: {line!r}"
    assert manifest.entry_bytes(entry) == line
    # The fast path accepts it too, unless the line is long enough to need the exact check.
    fast = manifest.reader._check_block(line + b"\n", manifest.entry._OrderState())
    assert fast == [entry] or (fast is None and len(line) >= manifest.reader._LINE_WINDOW)


# ----------------------------------------------------------------------------------------------
# Start-up of the command line


def test_sidecar_path_without_fpindex_is_fpindex_s(tmp_path: Path) -> None:
    from provenance import fpindex, manifest_files

    for name in ("m.jsonl", "manifest", ".hidden.jsonl"):
        assert manifest_files.sidecar_path(tmp_path / name) == fpindex.sidecar_path(tmp_path / name)


def test_manifest_build_imports_only_what_it_needs(tmp_path: Path) -> None:
    """Small builds are dominated by start-up: no jsonschema, cryptography, numpy or tqdm."""
    import subprocess
    import sys

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "provenance", "manifest", "build"]
        + [str(tmp_path / "data"), "-o", str(tmp_path / "m.jsonl"), "--no-fingerprints"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "provenance.manifest" in imported
    for heavy in ("jsonschema", "cryptography", "numpy", "tqdm", "yaml", "requests"):
        assert heavy not in imported, f"{heavy} is imported by 'manifest build'"


# ----------------------------------------------------------------------------------------------
# verify --data: the manifest is checked while the files are hashed


def _signed_card(tmp_path: Path, data: Path, paths: list[str]) -> tuple[Any, Any, Path]:
    import datetime as dt

    from provenance import card
    from provenance.envelope import sign_envelope
    from provenance.keys import PrivateKey
    from provenance.trust import TrustStore

    spec = {
        "name": "t",
        "version": "1",
        "description": "d",
        "publisher": {"name": "P"},
        "sources": [
            {"id": "s", "name": "S", "kind": "synthetic", "license": "CC0-1.0", "paths": paths}
        ],
    }
    manifest_path = tmp_path / "m.jsonl"
    manifest.write_manifest(manifest.build_from_directory(data, workers=2), manifest_path)
    summaries: list[manifest.ManifestSummary] = []
    statement = card.build_statement(
        spec,
        manifest.iter_manifest(manifest_path, on_summary=summaries.append),
        lambda: summaries[0],
        manifest_name=manifest_path.name,
        created=dt.datetime(2026, 11, 29, tzinfo=dt.UTC),
    )
    key = PrivateKey.generate()
    trust = TrustStore().with_key(key.public, name="P", role="dataset-publisher")
    envelope = sign_envelope(card.PAYLOAD_TYPE, _json.canonical(statement.to_dict()), [key])
    return envelope, trust, manifest_path


@pytest.mark.usefixtures("small_thresholds")
def test_verify_data_keeps_its_checks_and_their_order(tmp_path: Path) -> None:
    import datetime as dt

    from provenance.verify import verify

    files = _mixed_corpus(tmp_path / "data")
    envelope, trust, manifest_path = _signed_card(tmp_path, tmp_path / "data", ["**"])
    at = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    report = verify(
        envelope,
        trust,
        at=at,
        what="c",
        manifest_path=manifest_path,
        data_dir=tmp_path / "data",
        workers=2,
    )
    assert report.ok
    assert [c.name for c in report.checks] == [
        "signature",
        "statement",
        "required lists",
        "manifest digest",
        "manifest entries",
        "manifest bytes",
        "merkle root",
        "sources and licenses",
        "data files",
    ]
    assert report.checks[-1].detail == f"all {len(files)} files match the manifest"
    (tmp_path / "data" / "folder-2" / "file-002.txt").write_bytes(b"changed")
    (tmp_path / "data" / "big" / "blob-1.bin").unlink()
    (tmp_path / "data" / "new.txt").write_text("extra")
    report = verify(
        envelope,
        trust,
        at=at,
        what="c",
        manifest_path=manifest_path,
        data_dir=tmp_path / "data",
        workers=2,
    )
    assert not report.ok
    assert report.checks[-1].detail == f"1 changed, 1 missing, 1 extra of {len(files)}"
    assert report.data is not None
    assert (report.data.changed, report.data.missing, report.data.extra) == (
        ("folder-2/file-002.txt",),
        ("big/blob-1.bin",),
        ("new.txt",),
    )


def test_verify_data_reports_the_manifest_error_before_a_walk_error(tmp_path: Path) -> None:
    import datetime as dt

    from provenance.errors import InputError
    from provenance.verify import verify

    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "data" / "a" / "x.txt").write_text("x")
    envelope, trust, manifest_path = _signed_card(tmp_path, tmp_path / "data", ["a/**"])
    # Another manifest, which the card's sources do not cover, and a data directory that
    # cannot be walked: the manifest's error is the one reported, as when it was checked first.
    (tmp_path / "data" / "b").mkdir()
    (tmp_path / "data" / "b" / "y.txt").write_text("y")
    manifest.write_manifest(
        manifest.build_from_directory(tmp_path / "data", workers=1), manifest_path
    )
    os.symlink(tmp_path, tmp_path / "data" / "up")
    with pytest.raises(InputError, match="claimed by no source"):
        verify(
            envelope,
            trust,
            at=dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
            what="c",
            manifest_path=manifest_path,
            data_dir=tmp_path / "data",
            symlinks="error",
            workers=2,
        )


@pytest.mark.usefixtures("small_thresholds")
def test_a_stopped_read_never_yields_a_digest(tmp_path: Path) -> None:
    import threading

    (tmp_path / "big").write_bytes(bytes(5 * 4096))
    stop = threading.Event()
    stop.set()
    [result] = manifest.hashing._hash_task([str(tmp_path / "big")], stop=stop)
    assert isinstance(result, manifest.FileDigest) and result.error and not result.sha256


def test_every_shipped_schema_is_valid_against_its_meta_schema() -> None:
    """schema.py does not check them at run time (it cost every command ~35 ms): this does."""
    from provenance import schema

    folder = Path(schema.__file__).parent / "schemas"
    names = sorted(p.name for p in folder.glob("*.json"))
    assert len(names) >= 5
    for name in names:
        document = schema.load_schema(name)
        jsonschema.validators.validator_for(document).check_schema(document)


@pytest.mark.parametrize("ties", [False, True])
def test_sort_entries_is_the_manifest_order(ties: bool) -> None:
    import random

    entries = [
        ManifestEntry(
            id=f"f{i:04d}", sha256=hashlib.sha256(b"%d" % (i // 4 if ties else i)).hexdigest()
        )
        for i in range(400)
    ]
    random.Random(7).shuffle(entries)
    expected = sorted(entries, key=ManifestEntry.sort_key)
    manifest.sort_entries(entries)
    assert entries == expected
