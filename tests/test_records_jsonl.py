"""Reading JSON Lines records in blocks (bulk decoding for flat records) yields exactly what
reading them line by line with the strict parser yields: the same records, then the same error
at the same line."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance import _json, records
from provenance.errors import FormatError
from provenance.records import Record, iter_records

SHA = "ab" * 32


def _reference(path: Path) -> Iterator[Record]:
    """The line-by-line reader (each line through _json.loads), as records.py had it."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            where = f"{path}:{number}"
            if len(line) > records.MAX_RECORD_BYTES:
                raise FormatError(f"{where}: record larger than {records.MAX_RECORD_BYTES} bytes")
            stripped = line.rstrip(b"\r\n")
            if not stripped.strip():
                continue
            row = _json.loads(stripped, what=where)
            if not isinstance(row, dict):
                raise FormatError(f"{where}: each line must be a JSON object")
            yield records._to_record(row, number, where, stripped)


def _outcome(reader: Iterator[Record]) -> tuple[list[Record], str | None]:
    got: list[Record] = []
    try:
        for record in reader:
            got.append(record)
    except FormatError as exc:
        return got, str(exc)
    return got, None


def _same(path: Path) -> tuple[list[Record], str | None]:
    new = _outcome(iter_records(path, "jsonl"))
    old = _outcome(_reference(path))
    assert new == old
    for a, b in zip(new[0], old[0], strict=True):  # same field types too (1 is not True)
        assert [type(getattr(a, f.name)) for f in dataclasses.fields(Record)] == [
            type(getattr(b, f.name)) for f in dataclasses.fields(Record)
        ]
    return new


def test_fast_constructor_sets_every_field() -> None:
    assert tuple(f.name for f in dataclasses.fields(Record)) == records._FIELDS


_LINES = [
    {"id": "r1", "url": "https://a.example/x", "text": "a: b", "source": "web"},
    {"id": "r2", "text": "", "license": "", "rightsHolder": "Ann"},
    {"id": "r3", "sha256": SHA, "size": 12},
    {"id": "r4", "path": "a/b.txt", "size": 0, "extra": True, "n": None},
    {"id": "r5", "text": 'say "url": "x"', "url": "http://b.example/"},
    {"id": "r6", "text": "t", "size": "12"},
    {"id": "r7", "text": "t", "meta": {"lang": "en", "score": 0.5}},
    {"id": "r8", "text": "t", "score": 1.5},
    {"id": "r9", "text": "t", "size": -1},
    {"id": "r10", "text": "t", "size": True},
    {"id": "r11", "text": "t", "sha256": SHA},
    {"id": "r12", "sha256": SHA.upper()},
    {"id": "", "text": "t"},
    {"text": "t"},
    {"id": 5, "text": "t"},
    {"id": "r13", "text": 5},
    {"id": "r14", "text": "t", "url": 5},
    {"id": "r15", "path": "", "text": "t"},
    {"id": "r16"},
    {"id": "r17", "text": "t", "size": 2**53},
]
_RAW = [
    b"",
    b"   ",
    b"\t",
    b"\x0b",
    b'{"id": "d1", "url": "https://a.example/", "url": "https://b.example/", "text": "t"}',
    b'{"id": "d2", "text": "\\u003a", "id": "d3"}',
    b"nope",
    b"[1]",
    b'{"id": "n1", "text": NaN}',
    b'\xef\xbb\xbf{"id": "b1", "text": "t"}',
    b'{"id": "u1", "text": "\xff"}',
    b'{"id": "s1", "text": "\\ud800"}',
    b'{"id": "e1", "text": "\\ud83d\\ude00 \xc3\xa9"}',
]
_LINE = st.sampled_from(_LINES).map(lambda r: json.dumps(r).encode()) | st.sampled_from(_RAW)


@st.composite
def _files(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(_LINE, max_size=25))
    crlf = draw(st.booleans())
    ends = b"\r\n" if crlf else b"\n"
    data = ends.join(lines)
    if lines and draw(st.booleans()):
        data += ends
    return data


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_files(), st.sampled_from([1 << 20, 1, 7, 64]))
def test_blocks_read_as_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes, block: int
) -> None:
    monkeypatch.setattr(records, "_READ_BLOCK", block)
    path = tmp_path / "r.jsonl"
    path.write_bytes(data)
    _same(path)


def test_flat_records_take_the_bulk_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"\n".join(json.dumps(r).encode() for r in _LINES[:6]) + b"\n")
    calls: list[int] = []

    def no_line_by_line(lines: list[bytes], *args: object) -> Iterator[Record]:
        calls.append(len(lines))
        raise AssertionError("read line by line")

    monkeypatch.setattr(records, "_jsonl_lines", no_line_by_line)
    got, error = _outcome(iter_records(path, "jsonl"))
    assert error is None and [r.id for r in got] == ["r1", "r2", "r3", "r4", "r5", "r6"]
    assert got[5].size == 12 and got[1].license is None and got[1].text == ""


def test_nested_records_take_the_bulk_path_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"\n".join(json.dumps(r).encode() for r in _LINES[6:8]))
    monkeypatch.setattr(records, "_jsonl_lines", None)  # called only if the block is declined
    got, error = _same(path)
    assert error is None and [r.id for r in got] == ["r7", "r8"]


def test_duplicate_url_is_refused_in_a_big_block(tmp_path: Path) -> None:
    good = b"\n".join(json.dumps(_LINES[0] | {"id": f"g{n}"}).encode() for n in range(3000))
    bad = b'{"id": "x", "url": "https://kept.example/", "text": "t", "url": "https://listed.example/"}'
    path = tmp_path / "r.jsonl"
    path.write_bytes(good + b"\n" + bad + b"\n" + good + b"\n")
    got, error = _same(path)
    assert len(got) == 3000
    assert error == f"{path}:3001: duplicate key 'url'"


@pytest.mark.parametrize("block", [1 << 20, 5, 40])
def test_record_larger_than_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(records, "MAX_RECORD_BYTES", 60)
    monkeypatch.setattr(records, "_READ_BLOCK", block)
    line = b'{"id": "a", "text": "x"}'
    long = b'{"id": "b", "text": "' + b"x" * (60 - 23) + b'"}'
    assert len(long) == 60  # with its newline, 61: one byte too many
    path = tmp_path / "r.jsonl"
    for data, error_line in (
        (line + b"\n" + long + b"\n" + line, 2),
        (line + b"\n" + long, None),  # no newline after it: 60 bytes is allowed
        (line + b"\n" + line + b"\n" + b"x" * 500, 3),
        (b"x" * 10_000, 1),
    ):
        path.write_bytes(data)
        got, error = _same(path)
        if error_line is None:
            assert error is None
        else:
            assert error == f"{path}:{error_line}: record larger than 60 bytes"


def test_a_huge_line_is_not_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "MAX_RECORD_BYTES", 1000)
    monkeypatch.setattr(records, "_READ_BLOCK", 100)
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"x" * 1_000_000)
    blocks = list(records._line_blocks(open(path, "rb")))  # noqa: SIM115 - closed by GC
    assert len(blocks) == 1 and 1000 < len(blocks[0]) <= 1100
