"""Numeric kernels shared by exclusion-list matching and fingerprinting (private).

Pure numpy, no I/O. Each kernel is the fast form of a rule stated plainly elsewhere, and the
tests hold it to that rule:

- **Hex codec.** :func:`hex_digests` and :func:`hex_digest_rows` decode lower-case hex SHA-256
  digests in bulk, eight digits per 64-bit word, instead of one check and ``bytes.fromhex``
  call per value; they accept exactly the strings :func:`provenance._hex.is_sha256_hex` accepts.
- **Polynomial hashes** modulo 2**64 with the odd base :data:`HASH_BASE`: the hash of a run of
  values ``v[a:e]`` is ``sum(v[i] * B**(i - a))``. One prefix sum of ``v[i] * B**i``
  (:func:`polynomial_prefix`) gives the hash of any run as ``(P[e] - P[a]) * B**-a``: every
  n-gram of a text (:func:`window_hashes`, fingerprints' winnowing) or every suffix of every
  host (:func:`range_hashes`, the match index's suffix filter) at once. Integer arrays wrap
  silently in numpy: exactly arithmetic modulo 2**64.
- :func:`other_cores` (from :mod:`provenance._cores`): whether a second core may take half
  of a long loop.
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from provenance._cores import other_cores
from provenance._hex import first_invalid_sha256_hex, sha256_hex

__all__ = [
    "HASH_BASE",
    "hex_digest_rows",
    "hex_digests",
    "other_cores",
    "polynomial_prefix",
    "power_tables",
    "range_hashes",
    "window_hashes",
]

U64 = npt.NDArray[np.uint64]


# ----------------------------------------------------------------------------------------------
# Polynomial hashes

HASH_BASE = 0x9E3779B97F4A7C15
"""The base B of the polynomial hashes (odd, so invertible modulo 2**64)."""
_HASH_BASE_INVERSE = pow(HASH_BASE, -1, 1 << 64)
_EMPTY: U64 = np.zeros(0, dtype=np.uint64)
_powers: tuple[U64, U64] = (_EMPTY, _EMPTY)


def power_tables(size: int) -> tuple[U64, U64]:
    """Return ``(B**i, B**-i)`` modulo 2**64 for every ``i < size`` (at least), as two arrays.

    The tables are cached and grown on demand; callers must not write to them.
    """
    global _powers
    up, down = _powers
    if up.size < size:
        grown = max(size, 2 * up.size, 1 << 16)
        up, down = np.empty(grown, np.uint64), np.empty(grown, np.uint64)
        up[0] = down[0] = 1
        np.cumprod(np.full(grown - 1, HASH_BASE, np.uint64), out=up[1:])
        np.cumprod(np.full(grown - 1, _HASH_BASE_INVERSE, np.uint64), out=down[1:])
        _powers = (up, down)  # one assignment: a thread sees the old tables or the new ones
    return up, down


def polynomial_prefix(values: U64) -> U64:
    """Return ``P`` with ``P[0] = 0`` and ``P[k] = sum(values[i] * B**i for i < k)``.

    ``values`` is overwritten (with ``values[i] * B**i``).
    """
    up, _ = power_tables(values.size + 1)
    values *= up[: values.size]
    prefix = np.empty(values.size + 1, dtype=np.uint64)
    prefix[0] = 0
    np.cumsum(values, out=prefix[1:])
    return prefix


def window_hashes(prefix: U64, width: int) -> U64:
    """The hash of every run of ``width`` consecutive values, from their :func:`polynomial_prefix`.

    Returns ``h`` with ``h[i] = sum(values[i + t] * B**t for t < width)``.
    """
    count = prefix.size - width
    _, down = power_tables(count)
    hashes = np.subtract(prefix[width:], prefix[:count])
    hashes *= down[:count]
    return hashes


def range_hashes(prefix: U64, starts: npt.NDArray[np.intp], ends: npt.NDArray[np.intp]) -> U64:
    """The hash of every run ``values[starts[k]:ends[k]]``, from their :func:`polynomial_prefix`."""
    _, down = power_tables(prefix.size)
    hashes: U64 = prefix[ends] - prefix[starts]
    hashes *= down[starts]
    return hashes


# ----------------------------------------------------------------------------------------------
# Hex codec
#
# Eight ASCII digits per little-endian 64-bit word (SWAR: every byte of a word is handled by the
# same arithmetic, with no carry between bytes). For a byte c:
#   nibble   = ((c & 0x0F) + 9 * ((c >> 6) & 1)) & 0x0F   ('0'..'9' -> 0..9, 'a'..'f' -> 10..15)
#   expected = nibble + 0x30 + 0x27 * ((nibble + 6) >> 4)  (the lower-case digit of that nibble)
# and c is a lower-case hex digit exactly when expected == c (checked for all 256 byte values by
# the tests). Output byte j is (nibble[2j] << 4) | nibble[2j + 1]: the even bytes of
# (nibble << 4) | (nibble >> 8), taken as the low bytes of little-endian 16-bit lanes.

_WORD = np.dtype("<u8")
_HEX_ROWS_PER_STEP = 8192  # 512 KiB of digits per step: the temporaries stay in cache
_HEX_PARALLEL_ROWS = 1 << 15
_HEX_VALUES_PER_CHUNK = 1 << 16  # 4 MiB joined: no giant temporary string for millions
_HEX_POOL: list[concurrent.futures.ThreadPoolExecutor] = []

if hasattr(os, "register_at_fork"):  # a forked child has no thread behind the parent's pool
    os.register_at_fork(after_in_child=_HEX_POOL.clear)


def _every_byte(value: int) -> np.uint64:
    return np.uint64(int.from_bytes(bytes([value]) * 8, "little"))


_LOW_NIBBLES, _ONES, _ZEROS_CHAR, _SIXES = (_every_byte(b) for b in (0x0F, 0x01, 0x30, 0x06))


def _decode_hex_words(
    words: npt.NDArray[np.uint64], out: npt.NDArray[np.uint8], scratch: npt.NDArray[np.uint64]
) -> npt.NDArray[np.bool_]:
    """Decode ``words`` (rows of 8 words, 64 digits) into ``out`` (rows of 32 bytes).

    Returns, per row, whether any of its digits is not ``[0-9a-f]`` (``out`` is then garbage).
    """
    nibbles = scratch[0]
    work = scratch[1]
    np.bitwise_and(words, _LOW_NIBBLES, out=nibbles)
    np.right_shift(words, np.uint64(6), out=work)
    work &= _ONES
    work *= np.uint64(9)
    nibbles += work
    nibbles &= _LOW_NIBBLES
    np.add(nibbles, _SIXES, out=work)
    work >>= np.uint64(4)
    work &= _ONES
    work *= np.uint64(0x27)
    work += nibbles
    work += _ZEROS_CHAR
    bad: npt.NDArray[np.bool_] = np.not_equal(work, words).any(axis=1)
    np.left_shift(nibbles, np.uint64(4), out=work)
    nibbles >>= np.uint64(8)
    work |= nibbles
    np.copyto(out, work.view("<u2"), casting="unsafe")  # the low byte of each 16-bit lane
    return bad


def hex_digests(
    data: bytes | bytearray | memoryview,
    *,
    newlines: bool = False,
    out: npt.NDArray[np.uint8] | None = None,
) -> npt.NDArray[np.uint8]:
    """Decode lower-case hex SHA-256 digests written back to back, or one per line.

    ``data`` holds 64 ASCII digits per digest, each followed by ``\\n`` when ``newlines`` is
    true (the last one too). Every byte is checked: only ``0-9`` and ``a-f`` are digits.

    Returns:
        An ``(n, 32)`` uint8 array: ``out`` when given (it must have that shape).

    Raises:
        ValueError: the size is not a multiple of 64 (65), or a digit is not ``[0-9a-f]``, or a
            line does not end where it should; the message names the first bad digest
            (counted from 0).
    """
    width = 65 if newlines else 64
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size % width:
        raise ValueError(f"{raw.size} bytes is not a whole number of {width}-byte hex digests")
    count = raw.size // width
    rows = raw.reshape(count, width)
    if newlines:
        misplaced = np.flatnonzero(rows[:, 64] != 0x0A)
        if misplaced.size:
            raise ValueError(f"digest {int(misplaced[0])} is not 64 digits and a newline")
    if out is None:
        out = np.empty((count, 32), dtype=np.uint8)
    elif out.shape != (count, 32):
        raise ValueError(f"out has shape {out.shape}, not ({count}, 32)")
    # numpy releases the GIL in these loops: a second core decodes the second half.
    half = count // 2 if count >= _HEX_PARALLEL_ROWS and other_cores() else count
    second = _hex_pool().submit(_decode_hex_rows, rows, out, half, count) if half < count else None
    bad = _decode_hex_rows(rows, out, 0, half)
    if second is not None:
        later = second.result()
        bad = later if bad is None else bad
    if bad is not None:
        raise ValueError(f"digest {bad} holds a character other than 0-9a-f")
    return out


def _hex_pool() -> concurrent.futures.ThreadPoolExecutor:
    if not _HEX_POOL:
        _HEX_POOL.append(
            concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="hex")
        )
    return _HEX_POOL[0]


def _decode_hex_rows(
    rows: npt.NDArray[np.uint8], out: npt.NDArray[np.uint8], start: int, stop: int
) -> int | None:
    """Decode ``rows[start:stop]`` (64 digits, then perhaps a newline) into ``out``.

    Returns:
        The number of the first row holding a character other than ``[0-9a-f]``, or None.
    """
    step = max(1, min(stop - start, _HEX_ROWS_PER_STEP))
    scratch = np.empty((2, step, 8), dtype=_WORD)
    digits = np.empty((step, 64), dtype=np.uint8)
    direct = rows.shape[1] == 64 and rows.ctypes.data % 8 == 0
    for first in range(start, stop, step):
        last = min(stop, first + step)
        size = last - first
        if direct:
            words = rows[first:last].view(_WORD)
        else:  # lines with newlines, or unaligned memory: copy the digits into place
            np.copyto(digits[:size], rows[first:last, :64])
            words = digits[:size].view(_WORD)
        bad = _decode_hex_words(words, out[first:last], scratch[:, :size])
        if bad.any():
            return first + int(np.argmax(bad))
    return None


def hex_digest_rows(values: Sequence[str], *, what: str = "digests") -> npt.NDArray[np.uint8]:
    """Decode 64-digit lower-case hex strings into an ``(n, 32)`` uint8 array, in bulk.

    Raises:
        FormatError: a value is not 64 lower-case hex digits; the first bad one is named, as
            ``what[position]``.
    """
    count = len(values)
    out = np.empty((count, 32), dtype=np.uint8)
    for start in range(0, count, _HEX_VALUES_PER_CHUNK):
        stop = min(count, start + _HEX_VALUES_PER_CHUNK)
        chunk = values if stop - start == count else values[start:stop]
        joined = "".join(chunk)
        # The total is 64 per value and none is longer: so each is exactly 64 characters.
        if len(joined) == 64 * len(chunk) and max(map(len, chunk)) == 64 and joined.isascii():
            try:
                hex_digests(joined.encode("ascii"), out=out[start:stop])
                continue
            except ValueError:
                pass
        bad = first_invalid_sha256_hex(chunk)
        if bad is not None:
            sha256_hex(chunk[bad], what=f"{what}[{start + bad}]")  # raises FormatError
        raise AssertionError("the hex decoder and the SHA-256 check disagree")  # pragma: no cover
    return out
