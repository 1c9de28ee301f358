"""Reading and writing manifests in blocks equals a line-by-line reference.

Reading and writing check whole blocks of lines at once and compute the Merkle tree in a second
(forked) process. These tests shrink the block size so that every path runs on small
manifests, in process and forked, and compare with a line-by-line reader: the same entries,
digest and root, the same error naming the same line, long lines refused exactly at the limit,
a manifest changed while read reported, the incremental tree equal to adding leaf by leaf, and
the sort equal to the manifest order.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance import _json, manifest, merkle
from provenance.errors import FormatError, LocalIOError
from provenance.manifest import ManifestEntry


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
        damaged = list(lines)  # the same length, one digit in upper case
        digits = damaged[at].index(b'"sha256":"') + len(b'"sha256":"')
        sha = damaged[at][digits : digits + 64]
        damaged[at] = damaged[at].replace(sha, sha.upper(), 1)
        yield f"upper-case@{at}", b"".join(damaged)
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
        # The id of the next line (mostly in the same block): the block check fails on the
        # repeat after adding the block's ids, and must leave the ids seen as they were.
        damaged = list(lines)
        following = min(at + 1, n - 1)
        damaged[at] = (
            b'{"id":"'
            + json.loads(damaged[following])["id"].encode()
            + damaged[at][damaged[at].index(b'","sha256"') :]
        )
        yield f"duplicate-next-id@{at}", b"".join(damaged)
        # Ids that break an id rule, in lines that are otherwise canonical and in order.
        for rule, prefix in (("absolute", b"/"), ("dotdot", b"x/../"), ("control", b"\\u0001")):
            damaged = list(lines)
            damaged[at] = damaged[at].replace(b'"id":"', b'"id":"' + prefix, 1)
            yield f"{rule}-id@{at}", b"".join(damaged)
    yield "truncated", b"".join(lines)[:-7]
    yield "no-final-newline", b"".join(lines)[:-1]
    yield "garbage-tail", b"".join(lines) + b"\x00" * 100


def _swap(lines: list[bytes], at: int) -> list[bytes]:
    other = at + 1 if at + 1 < len(lines) else at - 1
    lines[at], lines[other] = lines[other], lines[at]
    return lines


@pytest.mark.usefixtures("small_blocks")
def test_blocks_with_their_lines_are_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each block's bytes are what its entries encode to (they are hashed as leaves without
    # encoding the entries again), all of them the file, in order; the digest is the file's.
    from provenance.manifest.entry import entry_lines
    from provenance.manifest.reader import iter_manifest_lines

    path = tmp_path / "m.jsonl"
    entries = _entries(300)
    manifest.write_manifest(entries, path)
    # Every other block as if the C-speed screen could not clear it (a line near the length
    # limit): read line by line, its bytes still given.
    calls = iter(range(10**6))
    monkeypatch.setattr(manifest.reader, "_lines_are_short", lambda block: next(calls) % 2 == 0)
    digests: list[str] = []
    blocks = list(iter_manifest_lines(path, on_digest=digests.append))
    assert any(len(block) == 1 for block, _ in blocks)  # the line-by-line path
    assert any(len(block) > 1 for block, _ in blocks)  # and whole blocks
    assert b"".join(data for _, data in blocks) == path.read_bytes()
    assert all(data == entry_lines(block) for block, data in blocks)
    assert [e for block, _ in blocks for e in block] == sorted(entries, key=lambda e: e.sort_key())
    assert digests == [hashlib.sha256(path.read_bytes()).hexdigest()]


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
        with pytest.raises(
            FormatError,
            match=(
                r"entries are not ordered|entry is not in canonical form|malformed JSON"
                r"|invalid manifest entry|last line has no newline|id '.*' appears twice"
                r"|id '.*' (is an absolute path|has a '\.\.' segment|holds U\+0001)"
            ),
        ) as info:
            manifest.read_manifest(path)
        assert str(info.value) == expected, name
        checked += 1
    assert checked >= 50


@pytest.mark.usefixtures("small_blocks")
def test_checked_blocks_carry_what_their_entries_say(tmp_path: Path) -> None:
    # What the block check hands on with a block (the digests decoded, the ids, whether a text
    # digest occurs) is what matching uses instead of the entries: it must be theirs.
    entries = sorted(
        (
            ManifestEntry(
                id=f"t/{i:04d}",
                sha256=hashlib.sha256(b"%d" % i).hexdigest(),
                textSha256=hashlib.sha256(b"t%d" % i).hexdigest() if i % 97 == 0 else None,
            )
            for i in range(400)
        ),
        key=ManifestEntry.sort_key,
    )
    path = tmp_path / "m.jsonl"
    manifest.write_manifest(entries, path)
    blocks = list(manifest.reader.iter_manifest_blocks(path))
    assert [e for block in blocks for e in block] == entries
    checked = [b for b in blocks if isinstance(b, manifest.CheckedEntries)]
    assert len(checked) == len(blocks) > 10
    for block in checked:
        assert block.digests == b"".join(bytes.fromhex(e.sha256) for e in block)
        assert block.ids == [e.id for e in block]
        assert block.has_texts == any(e.textSha256 for e in block)
    assert {b.has_texts for b in checked} == {True, False}


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
