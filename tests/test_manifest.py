"""Manifests: building from directories and records, and reading them strictly."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance import manifest, merkle
from provenance.errors import (
    DigestMismatchError,
    FormatError,
    InputError,
    LocalIOError,
    UnsafePathError,
)
from provenance.manifest import ManifestEntry


def _tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"alpha\n",
        "sub/b.txt": b"beta\n",
        "sub/deeper/c.bin": bytes(range(256)) * 100,
        "empty": b"",
        "caf\u00e9.txt": b"unicode name\n",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def test_build_from_directory(tmp_path: Path) -> None:
    files = _tree(tmp_path / "d")
    entries = manifest.build_from_directory(tmp_path / "d", workers=1)
    assert {e.id: (e.sha256, e.size) for e in entries} == {
        name: (hashlib.sha256(data).hexdigest(), len(data)) for name, data in files.items()
    }
    assert [e.sort_key() for e in entries] == sorted(e.sort_key() for e in entries)


def test_written_manifest_reads_back_with_root_and_digest(tmp_path: Path) -> None:
    _tree(tmp_path / "d")
    entries = manifest.build_from_directory(tmp_path / "d", workers=1)
    summary = manifest.write_manifest(entries, tmp_path / "m.jsonl")
    data = (tmp_path / "m.jsonl").read_bytes()
    assert summary.digest == hashlib.sha256(data).hexdigest()
    lines = data.splitlines()
    assert summary.root == merkle.root([merkle.leaf_hash(line) for line in lines]).hex()
    loaded = manifest.read_manifest(tmp_path / "m.jsonl")
    assert loaded.summary == summary
    assert loaded.entries == entries


def test_lines_are_rfc8785_canonical(tmp_path: Path) -> None:
    from provenance import _json

    entry = ManifestEntry(
        id='d\u00e9j\u00e0 "vu" \\',
        sha256="ab" * 32,
        size=5,
        license="MIT",
        rightsHolder="X\t\u2028",  # controls are refused in ids, not in other fields
        url="https://e.example/\u00e9",
    )
    line = manifest.entry_bytes(entry)
    assert line == _json.canonical(json.loads(line))
    assert manifest.decode_entry(line, what="x") == entry


def _write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


GOOD_A = b'{"id":"a","sha256":"' + b"1" * 64 + b'","size":1}'
GOOD_B = b'{"id":"b","sha256":"' + b"2" * 64 + b'","size":2}'


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([GOOD_B, GOOD_A], "not ordered"),
        ([GOOD_A, GOOD_A], "not ordered"),
        ([GOOD_A, b'{"id":"a","sha256":"' + b"3" * 64 + b'","size":1}'], "appears twice"),
        ([b'{"sha256":"' + b"1" * 64 + b'","id":"a","size":1}'], "canonical"),
        ([b'{"id":"a","id":"a","sha256":"' + b"1" * 64 + b'","size":1}'], "canonical"),
        (
            [b'{"id":"a","sha256":"' + b"1" * 64 + b'","size":1,"extra":1}'],
            "invalid manifest entry",
        ),
        ([b'{"id":"a","sha256":"' + b"A" * 64 + b'","size":1}'], "invalid manifest entry"),
        ([b'{"id":"a","sha256":"' + b"1" * 64 + b'","size":-1}'], "invalid manifest entry"),
        ([b'{"id":"","sha256":"' + b"1" * 64 + b'","size":1}'], "invalid manifest entry"),
        ([b'{"id":"a","sha256":"' + b"1" * 64 + b'","size":NaN}'], "malformed"),
        ([b'{"id":"\\ud800","sha256":"' + b"1" * 64 + b'","size":1}'], "malformed"),
    ],
)
def test_bad_manifests_are_refused_with_the_line(
    tmp_path: Path, lines: list[bytes], message: str
) -> None:
    path = _write_lines(tmp_path / "m.jsonl", lines)
    with pytest.raises(FormatError, match=message) as info:
        manifest.read_manifest(path)
    assert str(path) in str(info.value)


def test_truncated_manifest(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(GOOD_A + b"\n" + GOOD_B[:20])
    with pytest.raises(FormatError, match="no newline"):
        manifest.read_manifest(path)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such manifest"):
        manifest.read_manifest(tmp_path / "nope.jsonl")


def test_symlink_out_of_root_is_refused_when_asked(tmp_path: Path) -> None:
    _tree(tmp_path / "d")
    (tmp_path / "secret").write_text("outside")
    os.symlink(tmp_path / "secret", tmp_path / "d" / "link")
    with pytest.raises(UnsafePathError, match="symlink points out of the data root"):
        manifest.build_from_directory(tmp_path / "d", workers=1, symlinks="error")


def test_directory_symlink_out_of_root_is_refused_when_asked(tmp_path: Path) -> None:
    _tree(tmp_path / "d")
    os.symlink("..", tmp_path / "d" / "up")
    with pytest.raises(UnsafePathError, match="out of the data root"):
        manifest.build_from_directory(tmp_path / "d", workers=1, symlinks="error")


def test_symlinks_are_skipped_and_counted_by_default(tmp_path: Path) -> None:
    files = _tree(tmp_path / "d")
    (tmp_path / "secret").write_text("outside")
    os.symlink(tmp_path / "secret", tmp_path / "d" / "link")
    os.symlink("../..", tmp_path / "d" / "sub" / "up")
    os.symlink("a.txt", tmp_path / "d" / "alias")
    os.symlink("nowhere", tmp_path / "d" / "dangling")
    stats = manifest.WalkStats()
    entries = manifest.build_from_directory(tmp_path / "d", workers=1, stats=stats)
    assert {e.id for e in entries} == set(files)  # never followed, never listed
    assert (stats.symlinks, stats.symlinks_outside) == (4, 2)


def test_symlink_inside_root_is_not_followed(tmp_path: Path) -> None:
    _tree(tmp_path / "d")
    os.symlink("a.txt", tmp_path / "d" / "alias")
    ids = {e.id for e in manifest.build_from_directory(tmp_path / "d", workers=1)}
    assert "alias" not in ids and "a.txt" in ids


def test_fifo_is_an_error_not_a_hang(tmp_path: Path) -> None:
    _tree(tmp_path / "d")
    os.mkfifo(tmp_path / "d" / "pipe")
    with pytest.raises(UnsafePathError, match=r"pipe: not a regular file"):
        manifest.build_from_directory(tmp_path / "d", workers=1)


def test_fifo_swapped_in_after_the_walk_does_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    result = manifest.hash_file(str(tmp_path / "pipe"))
    assert result.error is not None and result.error.kind is manifest.HashErrorKind.NOT_REGULAR
    assert "not a regular file" in str(result.error)


def test_unreadable_file_as_root_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root bypasses file modes, so simulate the open failing the way it does for other users.
    _tree(tmp_path / "d")
    real_open = os.open

    def refusing_open(path: str, flags: int, *args: int) -> int:
        if str(path).endswith("a.txt"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(InputError, match=r"a\.txt: permission denied"):
        manifest.build_from_directory(tmp_path / "d", workers=1)


def test_unlistable_directory_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path / "d")
    real_scandir = os.scandir

    def refusing_scandir(path: str) -> object:
        if str(path).endswith("sub"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", refusing_scandir)
    with pytest.raises(LocalIOError, match=r"sub: cannot list directory: permission denied"):
        manifest.build_from_directory(tmp_path / "d", workers=1)


def test_non_utf8_file_name_is_reported(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "ok.txt").write_text("ok")
    with open(os.path.join(os.fsencode(tmp_path / "d"), b"bad\xffname.txt"), "wb") as handle:
        handle.write(b"x")
    with pytest.raises(UnsafePathError, match=r"not valid UTF-8"):
        manifest.build_from_directory(tmp_path / "d", workers=1)


def test_file_changed_while_hashed_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path / "d")
    target = tmp_path / "d" / "sub" / "deeper" / "c.bin"
    real_readv = os.readv
    appended = threading.Event()

    def readv_then_append(fd: int, buffers: list[memoryview]) -> int:
        count = real_readv(fd, buffers)
        if os.path.samefile(f"/proc/self/fd/{fd}", target) and not appended.is_set():
            appended.set()
            with open(target, "ab") as handle:
                handle.write(b"appended while hashing")
        return count

    monkeypatch.setattr(os, "readv", readv_then_append)
    with pytest.raises(LocalIOError, match=r"c\.bin: file changed while it was being hashed"):
        manifest.build_from_directory(tmp_path / "d", workers=1)


def test_output_inside_the_input_is_not_hashed(tmp_path: Path) -> None:
    _tree(tmp_path / "d")
    (tmp_path / "d" / "m.jsonl").write_text("old")
    entries = manifest.build_from_directory(
        tmp_path / "d", workers=1, exclude={os.path.realpath(tmp_path / "d" / "m.jsonl")}
    )
    assert "m.jsonl" not in {e.id for e in entries}


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    entries = [ManifestEntry(id="b", sha256="2" * 64), ManifestEntry(id="a", sha256="1" * 64)]
    with pytest.raises(FormatError, match="not ordered"):
        manifest.write_manifest(entries, tmp_path / "m.jsonl")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------
# Records


def _records(tmp_path: Path) -> list[dict[str, object]]:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "page.html").write_bytes(b"<p>hello</p>")
    return [
        {"id": "r1", "url": "https://news.example/a", "text": "caf\u00e9", "source": "web"},
        {"id": "r2", "url": "https://b.example/x", "path": "files/page.html", "license": "MIT"},
        {"id": "r3", "sha256": "ab" * 32, "size": 7, "rightsHolder": "Someone"},
    ]


def _expected() -> dict[str, tuple[str, int | None]]:
    return {
        "r1": (hashlib.sha256("caf\u00e9".encode()).hexdigest(), 5),
        "r2": (hashlib.sha256(b"<p>hello</p>").hexdigest(), 12),
        "r3": ("ab" * 32, 7),
    }


def test_records_jsonl(tmp_path: Path) -> None:
    rows = _records(tmp_path)
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    entries = manifest.build_from_records(path)
    assert {e.id: (e.sha256, e.size) for e in entries} == _expected()
    by_id = {e.id: e for e in entries}
    assert by_id["r1"].source == "web" and by_id["r2"].license == "MIT"
    assert by_id["r3"].rightsHolder == "Someone"


def test_records_csv(tmp_path: Path) -> None:
    import csv

    rows = _records(tmp_path)
    columns = ["id", "url", "text", "path", "sha256", "size", "source", "license", "rightsHolder"]
    with open(tmp_path / "r.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    entries = manifest.build_from_records(tmp_path / "r.csv")
    assert {e.id: (e.sha256, e.size) for e in entries} == _expected()


def test_records_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = _records(tmp_path)
    table = pa.Table.from_pylist(
        [{k: r.get(k) for k in ("id", "url", "text", "path", "sha256", "size")} for r in rows]
    )
    pq.write_table(table, tmp_path / "r.parquet")
    entries = manifest.build_from_records(tmp_path / "r.parquet")
    assert {e.id: (e.sha256, e.size) for e in entries} == _expected()


@pytest.mark.parametrize(
    ("row", "error", "message"),
    [
        ({"id": "x", "path": "../outside.txt"}, UnsafePathError, "escapes"),
        ({"id": "x", "path": "/etc/passwd"}, UnsafePathError, "escapes"),
        ({"id": "x", "path": "a\\..\\b"}, UnsafePathError, "escapes"),
        ({"id": "x", "text": "a", "sha256": "ab" * 32}, FormatError, "exactly one of"),
        ({"id": "x"}, FormatError, "exactly one of"),
        ({"text": "a"}, FormatError, "missing or empty 'id'"),
        ({"id": "x", "sha256": "AB" * 32}, FormatError, "64 lowercase hex"),
        ({"id": "x", "text": 5}, FormatError, "must be a string"),
        ({"id": "x", "sha256": "ab" * 32, "size": -3}, FormatError, "non-negative"),
        ({"id": "x", "path": "missing.txt"}, InputError, "No such file"),
    ],
)
def test_bad_records(
    tmp_path: Path, row: dict[str, object], error: type[Exception], message: str
) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(error, match=message) as info:
        manifest.build_from_records(path)
    assert str(path) in str(info.value)


def test_records_path_symlink_out_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("x")
    (tmp_path / "r").mkdir()
    os.symlink(tmp_path / "secret", tmp_path / "r" / "link")
    path = tmp_path / "r" / "r.jsonl"
    path.write_text(json.dumps({"id": "x", "path": "link"}) + "\n")
    with pytest.raises(UnsafePathError, match="leads out"):
        manifest.build_from_records(path)


def test_records_json_is_strict(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "x", "id": "y", "text": "a"}\n')
    with pytest.raises(FormatError, match=r"r\.jsonl:1: duplicate key"):
        manifest.build_from_records(path)


def test_duplicate_record_ids_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "x", "text": "a"}\n{"id": "x", "text": "b"}\n')
    # Found while reading, so the error names the file and both lines.
    expected = r"r\.jsonl:2: record id 'x' appears twice \(first on line 1\)"
    with pytest.raises(FormatError, match=expected):
        manifest.build_from_records(path)
    # The writer still refuses repeated ids, whatever built the entries.
    path.write_text('{"id": "x", "text": "a"}\n')
    entries = manifest.build_from_records(path)
    with pytest.raises(FormatError, match="appears twice"):
        manifest.write_manifest([*entries, *entries], tmp_path / "m.jsonl")
    assert not (tmp_path / "m.jsonl").exists()


def test_unknown_records_format(tmp_path: Path) -> None:
    (tmp_path / "r.xml").write_text("<x/>")
    with pytest.raises(InputError, match="unknown records format"):
        manifest.build_from_records(tmp_path / "r.xml")


def test_progress_moves_while_a_large_file_is_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A large file is hashed on a thread; the bar must move during it, not only at its end.
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "big.bin").write_bytes(b"x" * (64 * 1024))
    (tmp_path / "d" / "small.txt").write_bytes(b"y" * 100)
    monkeypatch.setattr(manifest.hashing, "_BUFFER_SIZE", 4096)
    monkeypatch.setattr(manifest.hashing, "_LARGE_FILE", 16 * 1024)
    real_readv = os.readv

    def slow_readv(fd: int, buffers: list[memoryview]) -> int:
        time.sleep(0.03)  # 16 reads: about half a second, so the 0.2 s updates must fire
        return real_readv(fd, buffers)

    monkeypatch.setattr(os, "readv", slow_readv)
    updates: list[int] = []
    entries = manifest.build_from_directory(tmp_path / "d", workers=2, progress=updates.append)
    assert {e.id for e in entries} == {"big.bin", "small.txt"}
    assert sum(updates) == 64 * 1024 + 100
    assert len([u for u in updates if 0 < u < 64 * 1024]) >= 2, updates


# ----------------------------------------------------------------------------------------------
# Id rules: the block reader's C-speed checks agree with the per-line ones, and so does writing

BAD_IDS = [
    "../x", "a/../x", "a/..", "..", "/x", "x\x1b", "x\x00", "x\n", "x\r", "x\x7f", "x\x85",
    "x\u2028", "x\u202e", "x\u2067", "x\u061c", "x\u200f", "cafe\u0301", "\u212b",
]  # fmt: skip
GOOD_IDS = ["...", "a..b", "a/...", ".hidden", "-dash", " space", "caf\u00e9", "x\u200d\ufeff"]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_a_bad_id_among_good_ones_is_found_and_named(tmp_path: Path, bad: str) -> None:
    from provenance import _json

    ids = [f"f{k:03d}.txt" for k in range(50)] + GOOD_IDS + [bad]
    lines = sorted((hashlib.sha256(i.encode()).hexdigest(), i) for i in ids)
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"".join(_json.canonical({"id": i, "sha256": d}) + b"\n" for d, i in lines))
    number = 1 + [i for _, i in lines].index(bad)
    with pytest.raises(FormatError, match=f"m.jsonl:{number}: invalid manifest entry: id "):
        manifest.read_manifest(path)
    entries = [ManifestEntry(id=i, sha256=d) for d, i in lines]
    with pytest.raises(FormatError, match="id .* (holds|is|has)"):
        manifest.write_manifest(entries, tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()
    good = [e for e in entries if e.id != bad]
    manifest.write_manifest(good, tmp_path / "out.jsonl")
    assert manifest.read_manifest(tmp_path / "out.jsonl").entries == good


def test_walk_files_can_list_names_that_are_not_ids(tmp_path: Path) -> None:
    """A creator's folder of works is not a dataset: its names need only be UTF-8."""
    (tmp_path / "w").mkdir()
    for name in ("cafe\u0301.txt", "x\x1b.txt", "plain.txt"):
        (tmp_path / "w" / name).write_text("x")
    with pytest.raises(UnsafePathError):
        manifest.walk_files(tmp_path / "w")
    refs = manifest.walk_files(tmp_path / "w", check_ids=False)
    assert [r.id for r in refs] == sorted(["cafe\u0301.txt", "x\x1b.txt", "plain.txt"])


def test_exclusion_patterns_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty"):
        manifest.exclusion_matcher(["*.log", " "])
    assert manifest.exclusion_matcher([]) is None
    match = manifest.exclusion_matcher(["*.log", "!keep.log", "build/"])
    assert match is not None
    assert [match(p) for p in ("a.log", "d/a.log", "keep.log", "build/", "x/build/", "b")] == [
        True, True, False, True, True, False,
    ]  # fmt: skip


# ----------------------------------------------------------------------------------------------
# ManifestReader: one checked read, then its summary; a committed read


def _written(tmp_path: Path, count: int = 40) -> tuple[Path, list[ManifestEntry], Any]:
    entries = sorted(
        (
            ManifestEntry(id=f"f{i:03d}", sha256=hashlib.sha256(b"%d" % i).hexdigest(), size=i)
            for i in range(count)
        ),
        key=ManifestEntry.sort_key,
    )
    path = tmp_path / "m.jsonl"
    return path, entries, manifest.write_manifest(entries, path)


def test_reader_yields_the_entries_then_their_summary(tmp_path: Path) -> None:
    path, entries, summary = _written(tmp_path)
    reader = manifest.ManifestReader(path)
    with pytest.raises(RuntimeError, match="has not been read to its end"):
        _ = reader.summary
    blocks = list(reader.blocks())
    assert [e for b in blocks for e in b.entries] == entries
    assert b"".join(b.data for b in blocks) == path.read_bytes()
    assert [b.first for b in blocks] == [0]
    assert reader.summary == summary
    assert reader.file_size == path.stat().st_size and not reader.changed
    with pytest.raises(RuntimeError, match="reads its file once"):
        list(reader)


def test_reader_blocks_near_a_bad_line_hold_each_line(tmp_path: Path) -> None:
    path, entries, _ = _written(tmp_path, 5)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3]) + b"not json\n" + lines[4])
    seen: list[manifest.ManifestBlock] = []
    with pytest.raises(FormatError, match=r"m\.jsonl:4: malformed JSON"):
        seen.extend(manifest.ManifestReader(path).blocks())
    assert [(b.entries, b.data, b.offset, b.first) for b in seen] == [
        ([entries[k]], lines[k], sum(map(len, lines[:k])), k) for k in range(3)
    ]


def test_committed_read_tells_another_file_from_a_malformed_one(tmp_path: Path) -> None:
    path, _, summary = _written(tmp_path)
    data = path.read_bytes()
    bad = data.replace(b'"size":7}', b'"size":7,"size":7}', 1)
    assert bad != data
    path.write_bytes(bad)
    # Not the committed file: a digest mismatch (a "no"), not a format error.
    with pytest.raises(DigestMismatchError, match="is not the manifest the card commits to"):
        list(manifest.ManifestReader(path, committed=summary))
    # The committed file itself malformed (the card committed to it): the format error.
    bad_summary = manifest.ManifestSummary(
        hashlib.sha256(bad).hexdigest(), summary.entries, summary.total_bytes, summary.root
    )
    with pytest.raises(FormatError, match="not in canonical form"):
        list(manifest.ManifestReader(path, committed=bad_summary))
    # Without a commitment: the format error.
    with pytest.raises(FormatError, match="not in canonical form"):
        list(manifest.ManifestReader(path))


def test_read_committed_releases_the_result_only_for_the_committed_bytes(tmp_path: Path) -> None:
    path, entries, summary = _written(tmp_path)
    assert manifest.read_committed(path, summary, list) == entries
    # A consumer that stops early: the rest is read and checked all the same.
    assert manifest.read_committed(path, summary, lambda it: next(it)) == entries[0]
    for field, value in (
        ("digest", "0" * 64),
        ("entries", summary.entries + 1),
        ("total_bytes", summary.total_bytes + 1),
        ("root", "0" * 64),
    ):
        other = dataclasses.replace(summary, **{field: value})
        with pytest.raises(DigestMismatchError):
            manifest.read_committed(path, other, list)


def test_a_consumer_refusing_an_entry_of_another_manifest_is_a_mismatch(tmp_path: Path) -> None:
    path, _, summary = _written(tmp_path)

    def refuse(entries: Iterator[ManifestEntry]) -> None:
        next(entries)
        raise InputError("entry claimed by no source")

    with pytest.raises(InputError, match="claimed by no source"):
        manifest.read_committed(path, summary, refuse)
    other = dataclasses.replace(summary, digest="0" * 64)
    with pytest.raises(DigestMismatchError, match="is not the manifest") as raised:
        manifest.read_committed(path, other, refuse)
    assert isinstance(raised.value.__cause__, InputError)


def test_a_committed_read_of_a_file_it_cannot_open_is_that_error(tmp_path: Path) -> None:
    path, _, summary = _written(tmp_path)
    path.unlink()
    os.mkfifo(path)  # not a regular file: refused when it is opened, before any entry

    with pytest.raises(InputError, match="not a regular file"):
        manifest.read_committed(path, summary, list)
    with pytest.raises(InputError, match="not a regular file"):
        manifest.read_committed(path, summary, lambda entries: next(entries))


def test_summary_from_card_and_differences() -> None:
    from provenance.card import ManifestCommitment

    committed = manifest.ManifestSummary.from_card(
        "a" * 64, ManifestCommitment(entries=2, bytes=10, merkle_root="b" * 64)
    )
    assert committed == manifest.ManifestSummary("a" * 64, 2, 10, "b" * 64)
    read = manifest.ManifestSummary("a" * 64, 3, 10, "c" * 64)
    assert read.differences(committed) == [
        "entries 3, card says 2",
        f"Merkle root {'c' * 64}, card says {'b' * 64}",
    ]
    assert committed.differences(committed) == []


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        (manifest.HashErrorKind.CHANGED, LocalIOError),
        (manifest.HashErrorKind.NOT_REGULAR, UnsafePathError),
        (manifest.HashErrorKind.SYMLINK, UnsafePathError),
        (manifest.HashErrorKind.PERMISSION, InputError),
        (manifest.HashErrorKind.UNREADABLE, InputError),
    ],
)
def test_hash_errors_are_typed_by_kind(kind: manifest.HashErrorKind, error: type) -> None:
    raised = manifest.HashError(kind, "some reason").exception("data/x.txt")
    assert type(raised) is error
    assert str(raised) == "data/x.txt: some reason"


def test_a_vanished_file_is_an_unreadable_hash_error(tmp_path: Path) -> None:
    result = manifest.hash_file(str(tmp_path / "gone.txt"))
    assert result.error is not None and result.error.kind is manifest.HashErrorKind.UNREADABLE
    assert str(result.error) == "No such file or directory" and result.sha256 == ""


_MAGIC_STARTS = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"RIFF", b"II*\x00"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_MAGIC_STARTS), st.binary(max_size=300), st.booleans())
def test_contents_skipped_by_the_hasher_have_no_fingerprints(
    start: bytes, rest: bytes, nul: bool
) -> None:
    # The hasher keeps only contents that may_have_prints: what it skips must be exactly what
    # content_prints would find nothing in.
    from provenance._contentkind import may_have_prints
    from provenance.fingerprints import content_prints

    data = start + rest + (b"\x00" if nul else b"")
    if not may_have_prints(data):
        [found] = content_prints([data])
        assert found.text_sha256 is None and len(found.text) == 0 and found.image is None


def test_fingerprints_are_the_same_whether_binary_files_are_skipped(tmp_path: Path) -> None:
    from provenance import fingerprints

    data = tmp_path / "d"
    data.mkdir()
    (data / "text.txt").write_bytes(b"The quick brown fox jumps over the lazy dog. " * 40)
    (data / "binary.bin").write_bytes(bytes(range(256)) * 8)
    (data / "nul-text.txt").write_bytes(b"almost text\x00" * 30)
    (data / "empty.txt").write_bytes(b"")
    prints: dict[str, Any] = {}
    entries = manifest.build_from_directory(data, workers=1, prints=prints)
    by_id = {e.id: e for e in entries}
    contents = [(data / e.id).read_bytes() for e in entries]
    expected = fingerprints.content_prints(contents, ordered=False)
    for entry, found in zip(entries, expected, strict=True):
        assert by_id[entry.id].textSha256 == found.text_sha256
        if len(found.text) or found.image is not None:
            assert prints[entry.id].text.tolist() == found.text.tolist()
        else:
            assert entry.id not in prints
    assert by_id["text.txt"].textSha256 is not None and "text.txt" in prints


@pytest.mark.parametrize("bad_line", [2, 39])
def test_a_committed_malformed_manifest_is_its_format_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad_line: int
) -> None:
    # Read in small blocks: the bytes after the bad line's block count in the file's digest.
    monkeypatch.setattr(manifest.reader, "_READ_BLOCK", 256)
    path, _, summary = _written(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[bad_line - 1] = lines[bad_line - 1].replace(b'"id"', b'"id" ', 1)
    path.write_bytes(b"".join(lines))
    committed = dataclasses.replace(summary, digest=hashlib.sha256(path.read_bytes()).hexdigest())
    with pytest.raises(FormatError, match=rf"m\.jsonl:{bad_line}: "):
        list(manifest.ManifestReader(path, committed=committed))
    with pytest.raises(DigestMismatchError, match="is not the manifest the card commits to"):
        list(manifest.ManifestReader(path, committed=summary))
