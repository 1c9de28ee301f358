"""Reading JSON Lines records in blocks (bulk decoding for flat records) yields exactly what
reading them line by line with the strict parser yields: the same records, then the same error
at the same line. And the one row-to-record path (a msgspec typed decode, then the checks)
answers every row as the reader records.py had before it (kept below as the reference)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance import _json, records
from provenance.errors import FormatError
from provenance.records import DEFAULT_COLUMNS, Columns, Record, iter_records

SHA = "ab" * 32


# The row checks as records.py had them before one typed path replaced them (the reference).
def _optional_str(row: dict[str, Any], key: str, where: str) -> str | None:
    value = row.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise FormatError(f"{where}: column {key!r} must be a string")
    return value


def _to_record(
    row: dict[str, Any],
    number: int,
    where: str,
    raw: Any,
    *,
    empty_is_missing: bool = False,
    columns: Columns = DEFAULT_COLUMNS,
) -> Record:
    record_id = row.get(columns.id)
    if not isinstance(record_id, str) or not record_id:
        raise FormatError(f"{where}: missing or empty {columns.id!r}")
    text = row.get(columns.text)
    if empty_is_missing and text == "":
        text = None
    if text is not None and not isinstance(text, str):
        raise FormatError(f"{where}: column {columns.text!r} must be a string")
    path = _optional_str(row, columns.path, where)
    digest = _optional_str(row, columns.sha256, where)
    given = [
        name
        for name, value in ((columns.text, text), (columns.path, path), (columns.sha256, digest))
        if value is not None
    ]
    if len(given) != 1:
        wanted = ", ".join(repr(c) for c in (columns.text, columns.path, columns.sha256))
        raise FormatError(
            f"{where}: record {record_id!r} needs exactly one of {wanted}"
            f" (has {', '.join(given) or 'none'})"
        )
    if digest is not None and not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise FormatError(f"{where}: {columns.sha256!r} must be 64 lowercase hex digits")
    size = row.get("size")
    if size == "" or size is None:
        size = None
    elif isinstance(size, str) and size.isdigit():
        size = int(size)
    elif not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise FormatError(f"{where}: 'size' must be a non-negative integer")
    return Record(
        number=number,
        id=record_id,
        url=_optional_str(row, columns.url, where),
        text=text,
        path=path,
        sha256=digest,
        source=_optional_str(row, "source", where),
        license=_optional_str(row, "license", where),
        rights_holder=_optional_str(row, "rightsHolder", where),
        size=size,
        raw=raw,
    )


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
            yield _to_record(row, number, where, stripped)


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
        assert _types(a) == _types(b)
    return new


def _types(record: Record) -> list[type]:
    return [type(getattr(record, name)) for name in Record.__struct_fields__]


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


def _bulk_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bool]]:
    """Record each call of the bulk decoder: (lines given, whether it answered)."""
    calls: list[tuple[int, bool]] = []
    bulk = _json._bulk_objects

    def recording(lines: list[bytes]) -> list[dict[str, Any]] | None:
        answer = bulk(lines)
        calls.append((len(lines), answer is not None))
        return answer

    monkeypatch.setattr(_json, "_bulk_objects", recording)
    return calls


def test_flat_records_take_the_bulk_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"\n".join(json.dumps(r).encode() for r in _LINES[:6]) + b"\n")
    calls = _bulk_calls(monkeypatch)

    def no_line_by_line(data: bytes, *, what: str) -> Any:
        raise AssertionError("read line by line")

    monkeypatch.setattr(_json, "loads", no_line_by_line)
    got, error = _outcome(iter_records(path, "jsonl"))
    assert error is None and [r.id for r in got] == ["r1", "r2", "r3", "r4", "r5", "r6"]
    assert got[5].size == 12 and got[1].license is None and got[1].text == ""
    assert calls == [(6, True)]  # one block, decoded at once


def test_nested_records_take_the_bulk_path_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"\n".join(json.dumps(r).encode() for r in _LINES[6:8]))
    calls = _bulk_calls(monkeypatch)
    got, error = _same(path)
    assert error is None and [r.id for r in got] == ["r7", "r8"]
    assert calls == [(1, True), (1, True)]  # the last line, without a newline, comes alone


def test_blank_lines_do_not_stop_the_bulk_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.jsonl"
    lines = [json.dumps(r).encode() for r in _LINES[:3]]
    path.write_bytes(b"\n \t\n".join(lines) + b"\n\n")
    calls = _bulk_calls(monkeypatch)
    got, error = _same(path)
    assert error is None and [(r.id, r.number) for r in got] == [("r1", 1), ("r2", 3), ("r3", 5)]
    assert calls == [(3, True)]


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


# ----------------------------------------------------------------------------------------------
# Rows of any format: the one typed path answers as the reference, fault for fault.

_VALUES = st.sampled_from(
    [None, "", "x", "a:b", SHA, SHA.upper(), "12", "007", "-1", " 1", "\u0661\u0662", 0, 5, -3]
    + [True, False, 1.5, 2**60, [1], {"a": 1}, b"x"]
)
_KEYS = st.sampled_from(
    ["id", "url", "text", "path", "sha256", "source", "license", "rightsHolder", "size"]
    + ["key", "link", "body", "file", "digest", "other"]
)
_COLUMNS = st.sampled_from(
    [
        DEFAULT_COLUMNS,
        Columns(),
        Columns(id="key", url="link", text="body", path="file", sha256="digest"),
        Columns(url="source"),  # a field read from a column another field also reads
        Columns(text="size", id="license"),
        Columns(sha256="rightsHolder", path="url", url="path"),
    ]
)


def _answer(make: Any) -> Any:
    try:
        record = make()
    except FormatError as exc:
        return str(exc)
    return record, _types(record)


@settings(max_examples=1500, deadline=None)
@given(
    st.dictionaries(_KEYS, _VALUES, max_size=8),
    _COLUMNS,
    st.booleans(),
    st.sampled_from([b'{"raw": 1}', {"raw": 1}]),
)
def test_rows_are_judged_as_before(
    row: dict[str, Any], columns: Columns, empty_is_missing: bool, raw: Any
) -> None:
    missing = empty_is_missing
    new = _answer(lambda: records._record(row, 7, raw, "f:", columns, empty_is_missing=missing))
    old = _answer(lambda: _to_record(row, 7, "f:7", raw, empty_is_missing=missing, columns=columns))
    assert new == old


def test_a_size_of_digits_int_cannot_read_is_refused() -> None:
    # str.isdigit() holds for "²", which int() cannot read: the reference raised ValueError.
    for size in ("\u00b2", "1" * 5000):
        with pytest.raises(FormatError, match=r"^f:7: 'size' must be a non-negative integer$"):
            records._record({"id": "a", "text": "t", "size": size}, 7, b"", "f:")


def test_record_is_a_typed_struct() -> None:
    record = records._record({"id": "a", "text": "t", "size": "3"}, 1, b"raw", "f:")
    assert record == Record(1, "a", None, "t", None, None, None, None, None, 3, b"raw")
    with pytest.raises(AttributeError, match="immutable type"):
        record.id = "b"  # type: ignore[misc]
    assert msgspec.structs.asdict(record)["size"] == 3


_DEEP = b"[" * 64 + b"]" * 64  # inside the record's object: 65 levels, one too many


@pytest.mark.parametrize(
    "bad",
    [
        b'{"id": "x", "url": "https://kept.example/", "text": "t", "url": "https://listed.example/"}',
        b'{"id": "x", "text": "t", "meta": {"url": "a", "url": "b"}}',
        b'{"id": "x", "text": "\\ud800"}',
        b'{"\\udc00": 1, "id": "x", "text": "t"}',
        b'{"id": "x", "text": "t", "size": 9007199254740992}',
        b'{"id": "x", "text": "t", "n": [1, -9007199254740992]}',
        b'{"id": "x", "text": "t", "n": 1' + b"0" * 150 + b"}",
        b'{"id": "x", "text": NaN}',
        b'{"id": "x", "text": "t", "n": -Infinity}',
        b'{"id": "x", "text": "t", "n": 1e400}',
        b'{"id": "x", "text": "t", "a": ' + _DEEP + b"}",
        b'{"id": "x", "text": "\\u003a", "id": "y"}',
        b'{"id": "x", "text": "\xff"}',
    ],
)
@pytest.mark.parametrize("crlf", [False, True])
def test_strict_json_refusals_name_the_line_as_loads_does(
    tmp_path: Path, bad: bytes, crlf: bool
) -> None:
    # Among good lines in one block (the bulk path), a line the strict parser refuses stops the
    # reading at that line, after the records before it, with exactly loads()'s message.
    good = [json.dumps({"id": f"g{n}", "text": "t"}).encode() for n in range(3)]
    ending = b"\r\n" if crlf else b"\n"
    path = tmp_path / "r.jsonl"
    path.write_bytes(ending.join([*good[:2], b"", bad, good[2]]) + ending)
    with pytest.raises(
        FormatError,
        match=(
            r"duplicate key|lone surrogate|is outside \+-\(2\*\*53 - 1\)|literal too long"
            r"|is not allowed in JSON|overflows a double|nesting deeper than|not valid UTF-8"
        ),
    ) as refused:
        _json.loads(bad, what=f"{path}:4")
    got, error = _same(path)
    assert [r.id for r in got] == ["g0", "g1"]
    assert error == str(refused.value)
