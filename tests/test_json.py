"""Strict JSON loading (JSONTestSuite) and RFC 8785 canonical bytes (cyberphone vectors)."""

from __future__ import annotations

import pytest

from provenance import _json
from provenance.errors import FormatError
from tests.conftest import VECTORS

SUITE = VECTORS / "json" / "JSONTestSuite" / "test_parsing"
# Implementation-defined cases that are harmless: they parse to a finite double.
HARMLESS_I = {"i_number_double_huge_neg_exp.json", "i_number_real_underflow.json"}
# I-JSON: duplicate keys are refused on purpose, although RFC 8259 allows them.
REFUSED_Y = {"y_object_duplicated_key.json", "y_object_duplicated_key_and_value.json"}


def _cases(prefix: str) -> list[str]:
    return sorted(p.name for p in SUITE.glob(f"{prefix}_*.json"))


@pytest.mark.parametrize("name", _cases("y"))
def test_accepts_valid_json(name: str) -> None:
    data = (SUITE / name).read_bytes()
    if name in REFUSED_Y:
        with pytest.raises(FormatError, match="duplicate key"):
            _json.loads(data, what=name)
    else:
        _json.loads(data, what=name)


@pytest.mark.parametrize("name", _cases("n"))
def test_rejects_invalid_json(name: str) -> None:
    with pytest.raises(
        FormatError,
        match=(
            r"malformed JSON at line \d+ column \d+|not valid UTF-8|byte-order mark"
            r"|nesting deeper than|is not allowed in JSON"
        ),
    ):
        _json.loads((SUITE / name).read_bytes(), what=name)


@pytest.mark.parametrize("name", _cases("i"))
def test_rejects_implementation_defined_json(name: str) -> None:
    data = (SUITE / name).read_bytes()
    if name in HARMLESS_I:
        assert _json.loads(data, what=name) is not None
    else:
        with pytest.raises(
            FormatError,
            match=(
                r"number literal too long|overflows a double|is outside \+-\(2\*\*53 - 1\)"
                r"|holds a lone surrogate|not valid UTF-8|nesting deeper than|byte-order mark"
            ),
        ):
            _json.loads(data, what=name)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"version": 12, "version": 99}', "duplicate key"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": Infinity}', "Infinity"),
        (b'{"a": -Infinity}', "Infinity"),
        (b'{"a": "\\ud800"}', "lone surrogate"),
        (b'{"\\udc00": 1}', "lone surrogate"),
        (b'\xef\xbb\xbf{"a": 1}', "byte-order mark"),
        (b'{"a": 9007199254740993}', "outside"),
        (b'{"a": 1e400}', "overflows"),
        (b"[" * 65 + b"]" * 65, "nesting"),
        (b"[" * 100000 + b"]" * 100000, "nesting"),
        (b'{"a": "\xff"}', "UTF-8"),
        (b'{"a": 1} x', "malformed"),
    ],
)
def test_strict_profile(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        _json.loads(data, what="doc.json")


def test_error_names_the_document_and_position() -> None:
    with pytest.raises(FormatError, match=r"^card\.json: malformed JSON at line 2 column"):
        _json.loads(b'{"a": 1,\n}', what="card.json")


def test_depth_at_the_bound_is_accepted() -> None:
    assert _json.loads(b"[" * 64 + b"]" * 64, what="x") == eval("[" * 64 + "]" * 64)  # noqa: S307


JCS = VECTORS / "jcs" / "cyberphone"


@pytest.mark.parametrize("name", sorted(p.name for p in (JCS / "input").glob("*.json")))
def test_canonical_matches_rfc8785_vectors(name: str) -> None:
    # The vectors' inputs use plain JSON (e.g. floats such as 56.0 and huge exponents),
    # so they are parsed with the standard library; canonical() is what is under test.
    import json

    value = json.loads((JCS / "input" / name).read_bytes())
    expected = (JCS / "output" / name).read_bytes()
    assert _json.canonical(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("aGVsbG8=", b"hello"), ("-_8=", b"\xfb\xff"), ("+/8=", b"\xfb\xff"), ("", b"")],
)
def test_base64_accepts_both_alphabets(text: str, expected: bytes) -> None:
    assert _json.b64decode(text, what="x") == expected


@pytest.mark.parametrize("text", ["aGVs!!bG8=", "aGVsbG8", "aGVsbG8===", "+_8=", "aGVs bG8="])
def test_base64_is_strict(text: str) -> None:
    with pytest.raises(FormatError, match="not valid base64"):
        _json.b64decode(text, what="x")
