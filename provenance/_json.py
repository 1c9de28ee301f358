"""Strict JSON, canonical bytes and base64.

Every JSON document this toolkit reads goes through :func:`loads`, an I-JSON profile of RFC 8259:
UTF-8 only (no byte-order mark), no duplicate object keys, no NaN or Infinity, no lone surrogates,
integers within +-(2**53 - 1), and nesting no deeper than :data:`MAX_DEPTH`. Parsers that disagree
on such inputs are how "verify one thing, use another" attacks work, so they are refused outright.

Bytes that are hashed or signed are produced by :func:`canonical` (RFC 8785, JCS).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import operator
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import rfc8785

from provenance.errors import FormatError

MAX_DEPTH = 64
MAX_SAFE_INT = 2**53 - 1
_MAX_NUMBER_CHARS = 100

_BASE64_STD = re.compile(rb"\A[A-Za-z0-9+/]*={0,2}\Z")
_BASE64_URL = re.compile(rb"\A[A-Za-z0-9_-]*={0,2}\Z")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _parse_int(text: str) -> int:
    if len(text) > _MAX_NUMBER_CHARS:
        raise ValueError("integer literal too long")
    value = int(text)
    if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
        raise ValueError(f"integer {text} is outside +-(2**53 - 1)")
    return value


def _parse_float(text: str) -> float:
    if len(text) > _MAX_NUMBER_CHARS:
        raise ValueError("number literal too long")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text} overflows a double")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_tree(value: Any, depth: int) -> None:
    """Raise ValueError on more than MAX_DEPTH nested containers or a lone surrogate."""
    if isinstance(value, str):
        if _has_lone_surrogate(value):
            raise ValueError("string holds a lone surrogate")
    elif isinstance(value, dict):
        if depth > MAX_DEPTH:
            raise ValueError(f"nesting deeper than {MAX_DEPTH} levels")
        for key, item in value.items():
            if _has_lone_surrogate(key):
                raise ValueError("object key holds a lone surrogate")
            _check_tree(item, depth + 1)
    elif isinstance(value, list):
        if depth > MAX_DEPTH:
            raise ValueError(f"nesting deeper than {MAX_DEPTH} levels")
        for item in value:
            _check_tree(item, depth + 1)


def loads(data: bytes, *, what: str) -> Any:
    """Parse ``data`` as strict JSON.

    Args:
        data: the raw bytes (never a str: the encoding is part of what is checked).
        what: names the document in error messages, e.g. a file path.

    Returns:
        The parsed value (dicts, lists, str, int, float, bool, None).

    Raises:
        FormatError: the bytes are not strict UTF-8 JSON as described in the module docstring.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        raise FormatError(f"{what}: JSON must not start with a byte-order mark")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{what}: not valid UTF-8 at byte {exc.start}") from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
            parse_float=_parse_float,
        )
        _check_tree(value, 1)
    except json.JSONDecodeError as exc:
        raise FormatError(
            f"{what}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise FormatError(f"{what}: nesting deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise FormatError(f"{what}: {exc}") from None
    return value


def loads_lines(lines: Sequence[bytes], *, what: Callable[[int], str]) -> Iterator[Any]:
    """Parse each of ``lines`` as :func:`loads` does, yielding the values in order.

    Exactly ``loads(lines[k], what=what(k))`` for each ``k`` in turn: the same values, and the
    same error for the first line :func:`loads` refuses (after the values of the lines before
    it). Lines that all hold objects are decoded many at a time at C speed where
    :func:`_bulk_objects` can show the answer is the same; other lines are parsed one by one.

    Raises:
        FormatError: as :func:`loads`, for the first line it refuses.
    """
    values = _bulk_objects(lines)
    if values is not None:
        yield from values
        return
    for position, line in enumerate(lines):
        one = _bulk_objects([line])
        yield one[0] if one is not None else loads(line, what=what(position))


# Many small objects at C speed (JSON Lines records). A line is accepted here only when loads()
# provably gives the same dict:
# - msgspec decodes it (into dict[str, str | int | bool | None] with |int| <= 2**53 - 1 when
#   the records are flat, else into any JSON value). msgspec refuses all that loads() refuses
#   but for what is checked next: malformed JSON, bad UTF-8, lone surrogates, NaN, Infinity,
#   numbers that overflow a double, a byte-order mark. It parses numbers to the same values
#   (correctly rounded doubles, exact integers).
# - Integers beyond +-(2**53 - 1), nesting deeper than MAX_DEPTH, number literals longer
#   than _MAX_NUMBER_CHARS (only possible where a run of that many characters of
#   [-+.0-9eE] appears in the line) and the largest finite doubles (the last before overflow)
#   are left to loads().
# - Duplicate keys, which msgspec collapses silently, are counted: every key-value pair holds
#   exactly one ':' outside strings, so the ':' bytes of the lines equal the keys decoded plus
#   the ':' characters inside the decoded keys and strings, unless a key was repeated (its
#   object then holds more pairs than keys). No escape but \u003a / \u003A decodes to ':'
#   (lines holding "\u003" are left to loads()), and ':' is one byte in UTF-8 that no other
#   character's encoding contains.
_DECODERS: list[Any] = []
_LONG_NUMBER = re.compile(rb"[-+.0-9eE]{%d}" % (_MAX_NUMBER_CHARS + 1))
_LARGEST_DOUBLES = (1.7976931348623157e308, -1.7976931348623157e308)


def _decoders() -> list[Any]:
    if not _DECODERS:
        from typing import Annotated

        import msgspec

        safe_int = Annotated[int, msgspec.Meta(ge=-MAX_SAFE_INT, le=MAX_SAFE_INT)]
        flat = dict[str, str | safe_int | bool | None]
        _DECODERS.extend([msgspec.json.Decoder(flat), msgspec.json.Decoder()])
    return _DECODERS


def _bulk_objects(lines: Sequence[bytes]) -> list[dict[str, Any]] | None:
    """Parse many lines that each hold one JSON object, exactly as :func:`loads` would.

    Nothing is accepted that :func:`loads` refuses (see the comment above for why).

    Returns:
        ``[loads(line) for line in lines]`` (same keys in the same order, same values), or
        ``None`` when that cannot be shown cheaply for every line: one is not an object, is
        malformed, repeats a key, nests too deeply, holds an integer beyond +-(2**53 - 1),
        a long run of number characters or ``\\u003``. Callers then parse the lines one
        by one with :func:`loads`, which names what is wrong or accepts what was left to it.
    """
    joined = b"\n".join(lines)
    if b"\\u003" in joined:
        return None
    flat = _flat_objects(lines, joined)
    return flat if flat is not None else _any_objects(lines, joined)


def _flat_objects(lines: Sequence[bytes], joined: bytes) -> list[dict[str, Any]] | None:
    """Objects whose values are strings, safe integers, booleans and nulls: no walk needed."""
    try:
        objects: list[dict[str, Any]] = list(map(_decoders()[0].decode, lines))
    except Exception:  # noqa: BLE001 - any refusal (msgspec's errors, UnicodeDecodeError, ...)
        return None
    keys = sum(map(len, objects))
    in_keys = "".join(itertools.chain.from_iterable(objects)).count(":")
    values = list(itertools.chain.from_iterable(map(dict.values, objects)))
    try:
        in_values = "".join(values).count(":")
    except TypeError:  # not only strings: str() of an int, bool or None holds no ':'
        in_values = "".join(map(str, values)).count(":")
    if joined.count(b":") != keys + in_keys + in_values:
        return None
    return objects


def _any_objects(lines: Sequence[bytes], joined: bytes) -> list[dict[str, Any]] | None:
    """Any objects: decoded in C, then checked a nesting level at a time, all lines at once."""
    try:
        objects: list[Any] = list(map(_decoders()[1].decode, lines))
    except Exception:  # noqa: BLE001 - as above (also RecursionError on absurd nesting)
        return None
    if any(type(value) is not dict for value in objects):
        return None
    dicts: list[dict[str, Any]] = objects
    lists: list[list[Any]] = []
    keys = colons = 0
    floats = False
    depth = 1
    while dicts or lists:
        if depth > MAX_DEPTH:
            return None
        keys += sum(map(len, dicts))
        colons += "".join(itertools.chain.from_iterable(dicts)).count(":")
        values = list(
            itertools.chain(
                itertools.chain.from_iterable(map(dict.values, dicts)),
                itertools.chain.from_iterable(lists),
            )
        )
        types = list(map(type, values))
        kinds = set(types)
        if str in kinds:
            colons += "".join(_of_type(values, types, str)).count(":")
        if int in kinds:  # (bool is a type of its own)
            ints = _of_type(values, types, int)
            if max(ints) > MAX_SAFE_INT or min(ints) < -MAX_SAFE_INT:
                return None
        if float in kinds:
            found = _of_type(values, types, float)
            if _LARGEST_DOUBLES[0] in found or _LARGEST_DOUBLES[1] in found:
                return None  # as close to overflow as rounding gets: loads() judges
            floats = True
        dicts = _of_type(values, types, dict) if dict in kinds else []
        lists = _of_type(values, types, list) if list in kinds else []
        depth += 1
    if joined.count(b":") != keys + colons:
        return None
    # A literal of more than 100 characters has at least 97 digits in at most 3 runs, so a run
    # of 33 or more: only then is the exact (slower) search needed.
    if floats and b"0" * 33 in joined.translate(_DIGITS) and _LONG_NUMBER.search(joined):
        return None
    return objects


def _of_type(values: list[Any], types: list[type], kind: type) -> list[Any]:
    """The values whose type is exactly ``kind`` (selected in C)."""
    return list(itertools.compress(values, map(operator.is_, types, itertools.repeat(kind))))


_DIGITS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))


def loads_object(data: bytes, *, what: str) -> dict[str, Any]:
    """Like :func:`loads`, but the top level must be an object.

    Raises:
        FormatError: malformed, or not an object.
    """
    value = loads(data, what=what)
    if not isinstance(value, dict):
        raise FormatError(f"{what}: expected a JSON object at the top level")
    return value


def canonical(value: Any) -> bytes:
    """Return the RFC 8785 (JCS) canonical bytes of ``value``.

    Raises:
        FormatError: the value cannot be canonicalized (NaN, huge integers, lone surrogates).
    """
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise FormatError(f"cannot canonicalize JSON value: {exc}") from None


def pretty(value: Any) -> bytes:
    """Return deterministic, human-readable JSON bytes (sorted keys, 2-space indent, newline)."""
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def b64encode(data: bytes) -> str:
    """Return standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, *, what: str) -> bytes:
    """Decode standard or URL-safe base64, strictly (no junk characters, correct padding).

    DSSE asks verifiers to accept both alphabets; neither may be mixed with stray characters.

    Raises:
        FormatError: not valid base64 in either alphabet.
    """
    raw = text.encode("ascii", errors="replace")
    try:
        if _BASE64_STD.match(raw):
            return base64.b64decode(raw, validate=True)
        if _BASE64_URL.match(raw):
            return base64.urlsafe_b64decode(raw)
    except (binascii.Error, ValueError):
        pass
    raise FormatError(f"{what}: not valid base64")
