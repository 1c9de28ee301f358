"""The bulk path for JSON Lines (``_json._bulk_objects``) answers exactly as ``loads``, and so
does ``_json.loads_lines``, which uses it: the same values, then the same error at the same line.

The bulk path may decline (return None) whenever it likes, but when it answers, every line must
be one that ``loads`` accepts, with the same value. Duplicate keys matter most: a filter reading
one ``url`` and a trainer reading another is an evasion (docs/security.md J1).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from provenance import _json
from provenance.errors import FormatError
from tests.conftest import VECTORS

SUITE = VECTORS / "json" / "JSONTestSuite" / "test_parsing"


def _strict(line: bytes) -> Any:
    try:
        return _json.loads(line, what="x")
    except FormatError:
        return FormatError


def _check(lines: list[bytes], fast: list[dict[str, Any]] | None) -> None:
    if fast is None:
        return
    assert len(fast) == len(lines)
    for line, value in zip(lines, fast, strict=True):
        strict = _strict(line)
        assert strict is not FormatError, line
        assert repr(value) == repr(strict), line  # same keys in order, same values and types


def assert_agrees(lines: list[bytes]) -> list[dict[str, Any]] | None:
    """The bulk answer, after checking it (and each tier's) against loads() line by line."""
    joined = b"\n".join(lines)
    if b"\\u003" not in joined:  # the tiers rely on _bulk_objects to have refused these
        _check(lines, _json._flat_objects(lines, joined))
        _check(lines, _json._any_objects(lines, joined))
    fast = _json._bulk_objects(lines)
    _check(lines, fast)
    assert _parsed(_json.loads_lines(lines, what=_where)) == _parsed(
        _json.loads(line, what=_where(k)) for k, line in enumerate(lines)
    )
    return fast


def _where(position: int) -> str:
    return f"f:{position + 1}"


def _parsed(values: Iterator[Any]) -> tuple[str, str | None]:
    """What a reader sees: the values (their repr: 1, 1.0 and True differ), then the error."""
    got = []
    try:
        for value in values:
            got.append(value)
    except FormatError as exc:
        return repr(got), str(exc)
    return repr(got), None


@pytest.mark.parametrize("name", sorted(p.name for p in SUITE.glob("*.json")))
def test_json_test_suite(name: str) -> None:
    data = (SUITE / name).read_bytes()
    assert_agrees([data])
    assert_agrees([data.rstrip(b"\n")])
    assert_agrees([b'{"a": 1}', data])


_DEEP = b"[" * 63 + b"]" * 63  # with the object around it: 64 levels, the most allowed


@pytest.mark.parametrize(
    "line",
    [
        b'{"url": "https://a.example/", "url": "https://b.example/"}',
        b'{"url": "a", "text": "\\"url\\": \\"b\\"", "url": "c"}',
        b'{"a": "x:y", "a": "z"}',
        b'{"a": 1, "b": {"a": 1, "a": 2}}',
        b'{"a": [{"k": 1}, {"k": 1, "k": 2}]}',
        # An escaped ':' adds a ':' to the decoded strings without one in the bytes, so it could
        # hide a repeated key from the count: such lines are left to loads().
        b'{"a": 1, "a": "\\u003a"}',
        b'{"url": "x", "url": "y", "b": "\\u003a"}',
        b'{"\\u003a": 1, "a": 2, "a": 3}',
        b'{"a": "\\u003A", "b": 1}',
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b'{"a": "\\ud800"}',
        b'{"\\udc00": 1}',
        b'\xef\xbb\xbf{"a": 1}',
        b'{"a": 9007199254740992}',
        b'{"a": -9007199254740992}',
        b'{"a": [1, [9007199254740992]]}',
        b'{"a": 1e400}',
        b'{"a": 1.7976931348623157e308}',  # left to loads: next to overflow
        b'{"a": 1.' + b"0" * 120 + b"}",  # a literal longer than loads() takes
        b'{"a": 1' + b"0" * 150 + b"}",
        # 101+ characters in three runs of 33 digits at most: the shortest runs it can have.
        b'{"a": [0.5, -' + b"1" * 33 + b"." + b"0" * 33 + b"e-" + b"0" * 32 + b"1]}",
        b'{"a": [' + _DEEP + b"]}",  # 65 levels
        b'{"a": "\xff"}',
        b'{"a": "\xed\xa0\x80"}',
        b'{"a": 1} x',
        b'[{"a": 1}]',
        b'"a"',
        b"",
        b"   ",
        b'{"a": "\x01"}',
        b'{"a": 1,}',
    ],
)
def test_declines_what_it_cannot_vouch_for(line: bytes) -> None:
    assert_agrees([b'{"ok": 1}', line])
    assert _json._bulk_objects([b'{"ok": 1}', line]) is None


@pytest.mark.parametrize(
    "line",
    [
        b'{"id": "r1", "url": "https://a.example:8080/x?y=1#z", "text": "a: b :: c"}',
        b'{"a": 9007199254740991, "b": -9007199254740991, "c": -0, "d": null, "e": false}',
        b' \t{"k:ey": "v:al", "": ""}\r',
        b'{"a": "\\"url\\": \\"b\\"", "url": "c"}',
        b'{"a": "\\ud83d\\ude00 \xf0\x9f\x98\x80 \\u00e9 \\n \\/ \\\\"}',
        b"{}",
        b'{"a": 1.5, "b": -0.0, "c": 1e-400, "d": 2.5e+10, "e": 1E2}',
        b'{"meta": {"lang": "en", "a:b": [1, "x:y", {"c": null}]}, "score": 0.25}',
        b'{"a": ' + _DEEP + b"}",
        b'{"a": 1.' + b"0" * 98 + b"}",  # 100 characters: allowed
    ],
)
def test_answers_plain_records(line: bytes) -> None:
    assert assert_agrees([line]) is not None


# Hypothesis: records built from pieces that stress the key count (colons and quotes inside
# strings, escapes, keys repeated at any position, nested objects, numbers of every kind).
_TEXT = st.text(
    alphabet=st.sampled_from(
        list('ab:"\\/ {}[],\t\n') + ["\u00e9", "\U0001f600", "\u2028", "\x00", "\x7f", "\ufeff"]
    ),
    max_size=12,
)
_KEY = st.sampled_from(["id", "url", "text", "a", "a:b", '"url":', "", "\\"]) | _TEXT
_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.sampled_from([2**53 - 1, -(2**53 - 1), 2**53, 0])
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
)
_VALUE = st.recursive(
    _SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEY, inner, max_size=3)
)


def _encode_value(value: Any, ascii_only: bool, spaced: bool) -> str:
    if isinstance(value, dict):
        items = [
            f"{_encode_value(k, ascii_only, spaced)}:{_encode_value(v, ascii_only, spaced)}"
            for k, v in value.items()
        ]
        return "{" + (", " if spaced else ",").join(items) + "}"
    return json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":"))


@st.composite
def _lines(draw: st.DrawFn) -> bytes:
    pairs = draw(st.lists(st.tuples(_KEY, _VALUE), max_size=6))
    if pairs and draw(st.booleans()):
        # Repeat a key somewhere (with another value): loads() refuses the line.
        key = draw(st.sampled_from([k for k, _ in pairs]))
        pairs.insert(draw(st.integers(0, len(pairs))), (key, draw(_VALUE)))
    ascii_only = draw(st.booleans())
    spaced = draw(st.booleans())
    parts = [
        f"{_encode_value(k, ascii_only, spaced)}{' : ' if spaced else ':'}"
        f"{_encode_value(v, ascii_only, spaced)}"
        for k, v in pairs
    ]
    text = "{" + (", " if spaced else ",").join(parts) + "}"
    return text.encode("utf-8", errors="surrogatepass")


@settings(max_examples=700, deadline=None)
@given(st.lists(_lines(), min_size=1, max_size=5))
@example([b'{"url":"a","text":"\\"url\\":\\"b\\"","url":"c"}'])
def test_generated_records(lines: list[bytes]) -> None:
    fast = assert_agrees(lines)
    if all(
        _strict(line) is not FormatError and b"\\u003" not in line and b"e+308" not in line
        for line in lines
    ):
        # Everything else loads() accepts is answered in bulk.
        assert fast is not None


@settings(max_examples=700, deadline=None)
@given(_lines(), st.lists(st.tuples(st.integers(0, 400), st.binary(max_size=3)), max_size=4))
def test_mutated_bytes(line: bytes, edits: list[tuple[int, bytes]]) -> None:
    data = bytearray(line)
    for position, replacement in edits:
        position = min(position, len(data))
        data[position : position + len(replacement)] = replacement
    assert_agrees([bytes(data)])
