"""The one check of a SHA-256 written as text: exactly 64 lower-case hex digits.

Every document of the toolkit (manifests, cards, lists, proofs, records) writes a SHA-256 as 64
characters of ``[0-9a-f]``: never upper case, never with a prefix, spaces or a final newline, so
that one digest has one spelling and comparing strings compares digests. This module is the only
place that decides what such a string is: :func:`is_sha256_hex` for one value,
:func:`sha256_hex` to check one value and type it :data:`Sha256Hex`, and
:func:`first_invalid_sha256_hex` for many values at once. The numpy decoder
(:func:`provenance._kernels.hex_digest_rows`) accepts exactly the same strings; the tests hold it
to this check.

Pure: no I/O, and no import heavier than :mod:`re`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NewType, TypeGuard

from provenance.errors import FormatError

__all__ = [
    "SHA256_HEX_PATTERN",
    "Sha256Hex",
    "first_invalid_sha256_hex",
    "sha256_hex_digests",
    "is_sha256_hex",
    "sha256_hex",
]

Sha256Hex = NewType("Sha256Hex", str)
"""A SHA-256 as 64 lower-case hex digits, checked by :func:`sha256_hex` or
:func:`is_sha256_hex`."""

SHA256_HEX_PATTERN = "^[0-9a-f]{64}$"
"""The same rule as a JSON Schema ``pattern`` (which the schemas write with ``(?!\\n)``, since
``$`` also matches before a final newline); for documents and messages, not for checking."""

_FULLMATCH = re.compile(r"[0-9a-f]{64}").fullmatch
_HEX_DIGITS = b"0123456789abcdef"


def is_sha256_hex(value: object) -> TypeGuard[Sha256Hex]:
    """Return whether ``value`` is a string of exactly 64 lower-case hex digits."""
    return isinstance(value, str) and _FULLMATCH(value) is not None


def sha256_hex(value: object, *, what: str) -> Sha256Hex:
    """Return ``value`` as a :data:`Sha256Hex` once it is checked.

    ``what`` names the value in the error message.

    Raises:
        FormatError: ``value`` is not a string of 64 lower-case hex digits.
    """
    if not is_sha256_hex(value):
        shown = value[:80] if isinstance(value, str) else value
        raise FormatError(f"{what}: {shown!r} is not a SHA-256 (64 lower-case hex digits)")
    return value


def first_invalid_sha256_hex(values: Sequence[str]) -> int | None:
    """Return the position of the first of ``values`` that is not a SHA-256 hex, or None.

    The same answer as :func:`is_sha256_hex` on each value, several times faster for many
    values: all of them are joined and checked at once (:func:`_joined_if_hex`); only when
    one fails are they looked at one by one.
    """
    if _joined_if_hex(values) is not None:
        return None
    for position, value in enumerate(values):
        if not is_sha256_hex(value):
            return position
    raise AssertionError("bulk and per-value SHA-256 checks disagree")  # pragma: no cover


def sha256_hex_digests(values: Sequence[str]) -> bytes | None:
    """Return the digests ``values`` spell, 32 bytes each and in order, if every one of them is
    a SHA-256 hex (as :func:`is_sha256_hex` says); None if any is not.

    The check of :func:`first_invalid_sha256_hex` (:func:`_joined_if_hex`), then the joined
    digits decoded by ``bytes.fromhex`` (which passes over the newlines between them).
    """
    joined = _joined_if_hex(values)
    return None if joined is None else bytes.fromhex(joined)


def _joined_if_hex(values: Sequence[str]) -> str | None:
    """``values`` joined by newlines, if every one of them is a SHA-256 hex; else None.

    One ``bytes.translate`` pass checks them all. Joined by newlines, n values of 64 digits put
    a newline at every 65th position and nowhere else. Conversely, if every character is a
    digit or a newline, there are n - 1 newlines and they stand at every 65th position of
    n * 65 - 1 characters, those are the n - 1 separators (no value holds a newline) and every
    value is 64 long.
    """
    count = len(values)
    if not count:
        return ""
    joined = "\n".join(values)
    separators = "\n" * (count - 1)
    if (
        len(joined) == 65 * count - 1
        and joined.isascii()
        and joined[64::65] == separators
        and joined.encode("ascii").translate(None, _HEX_DIGITS) == separators.encode("ascii")
    ):
        return joined
    return None
