"""The normalized-text digest ``norm-text-v1`` (docs/design.md §2.9).

Defined so that a browser can compute it identically:

1. decode as strict UTF-8 (invalid: no digest);
2. drop one leading U+FEFF;
3. if any code point is unassigned in Unicode 14.0 (General_Category Cn, which includes the
   noncharacters; JavaScript's ``/\\p{Cn}/u`` under Unicode 14), no digest;
4. NFKC, then full case folding (``str.casefold``: CaseFolding.txt status C+F), then NFKC;
5. replace every maximal run of White_Space characters (the 25 code points of the Unicode
   property, listed in ``WHITE_SPACE``; NOT ``str.isspace``, which also accepts U+001C..U+001F)
   by one U+0020 and strip U+0020 from both ends;
6. SHA-256 of the UTF-8 bytes, lowercase hex.

The unassigned check uses a Unicode 14.0 table shipped with the package (``_unicode14``), so the
repertoire is pinned whatever ``unicodedata`` version the running Python has. For characters
assigned in 14.0, NFKC and ``toCasefold(toNFKC(s))`` are stable across later Unicode versions by
the Unicode Normalization Stability and Case Folding Stability policies, so a newer Python
computes the same digest. A later definition gets a new name (``norm-text-v2``), never a change.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from provenance._unicode14 import CN_ENDS, CN_STARTS, UNICODE_VERSION
from provenance._unicode14_stable import STABLE_RANGES

__all__ = [
    "NORM_TEXT_NAME",
    "NormalizedBatch",
    "WHITE_SPACE",
    "norm_text_sha256",
    "norm_text_v1",
    "normalize_batch",
    "normalize_str",
    "reference_normalize",
]

NORM_TEXT_NAME = "norm-text-v1"

# The Unicode White_Space property (PropList.txt, unchanged since Unicode 6.3): 25 code points.
WHITE_SPACE: frozenset[int] = frozenset(
    [0x0009, 0x000A, 0x000B, 0x000C, 0x000D, 0x0020, 0x0085, 0x00A0, 0x1680]
    + list(range(0x2000, 0x200A + 1))
    + [0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
)
assert len(WHITE_SPACE) == 25

_WS_RUN = re.compile("[" + "".join(f"\\U{cp:08x}" for cp in sorted(WHITE_SPACE)) + "]+")

# Python 3.11 ships Unicode 14.0 exactly; the shipped table must describe the same version.
assert UNICODE_VERSION == "14.0.0"
if tuple(int(x) for x in unicodedata.unidata_version.split(".")[:2]) < (14, 0):
    raise ImportError(  # pragma: no cover - requires-python >= 3.11 has Unicode 14.0
        f"norm-text-v1 needs Unicode >= 14.0, this Python has {unicodedata.unidata_version}"
    )


_CN_BITMAP: npt.NDArray[np.bool_] | None = None


def _cn_bitmap() -> npt.NDArray[np.bool_]:
    global _CN_BITMAP
    if _CN_BITMAP is None:
        bitmap = np.zeros(0x110000, dtype=np.bool_)
        for first, last in zip(CN_STARTS, CN_ENDS, strict=True):
            bitmap[first : last + 1] = True
        _CN_BITMAP = bitmap
    return _CN_BITMAP


def _has_unassigned(text: str) -> bool:
    """True if ``text`` holds a code point unassigned in Unicode 14.0."""
    if text.isascii():
        return False
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        pass
    else:
        return False  # every code point <= U+00FF, and the first Cn one is U+0378
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    return bool(_cn_bitmap()[codes[codes >= 0x378]].any())


# After NFKC, the only non-ASCII White_Space characters left are these four (the others have
# the compatibility decomposition U+0020); the tests check it.
_NON_ASCII_WS_AFTER_NFKC = ("\x85", "\u1680", "\u2028", "\u2029")


def _fold(data: bytes) -> bytes | None:
    """Steps 1-4 plus mapping non-ASCII White_Space to U+0020; None if no digest is defined.

    ASCII input is returned as it is: it is valid UTF-8 without a BOM or an unassigned code
    point, NFKC is the identity on it and full case folding is lower-casing there, which
    :func:`normalize_batch` does for the whole batch at once (its translation table lowers
    A-Z, a no-op on folded text: no code point's NFKD after NFKC and case folding holds A-Z,
    the tests check every code point).
    """
    if data.isascii():
        return data
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        return None
    if text.startswith("\ufeff"):
        text = text[1:]
    if _has_unassigned(text):
        return None
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    for ch in _NON_ASCII_WS_AFTER_NFKC:
        if ch in text:
            text = text.replace(ch, " ")
    return text.encode("utf-8")


# One pass of bytes.translate lowers A-Z, maps the ASCII White_Space U+0009..U+000D to U+0020
# and deletes the bytes marked 0xFF (which never occurs in UTF-8).
_TRANSLATE = bytes(
    c + 32 if 0x41 <= c <= 0x5A else 0x20 if 0x09 <= c <= 0x0D else c for c in range(256)
)
_DROP = b"\xff"


@dataclass(frozen=True, slots=True)
class NormalizedBatch:
    """The norm-text-v1 texts of a batch of inputs, stored back to back.

    ``data`` holds every normalized text followed by one U+0020; ``spans[i]`` is the
    ``(start, end)`` of input ``i``'s normalized UTF-8 bytes in ``data``, or None when the input
    has no digest (invalid UTF-8 or an unassigned code point).
    """

    data: bytes
    spans: list[tuple[int, int] | None]

    def text(self, index: int) -> bytes | None:
        """Return the normalized UTF-8 bytes of input ``index``, or None."""
        span = self.spans[index]
        return None if span is None else self.data[span[0] : span[1]]

    def sha256(self, index: int) -> str | None:
        """Return the norm-text-v1 digest of input ``index``, or None."""
        span = self.spans[index]
        if span is None:
            return None
        return hashlib.sha256(memoryview(self.data)[span[0] : span[1]]).hexdigest()


_STABLE_BITMAP: npt.NDArray[np.bool_] | None = None


def _stable_bitmap() -> npt.NDArray[np.bool_]:
    global _STABLE_BITMAP
    if _STABLE_BITMAP is None:
        bitmap = np.zeros(0x110000, dtype=np.bool_)
        for item in STABLE_RANGES.split():
            first, _, last = item.partition("-")
            bitmap[int(first, 16) : int(last or first, 16) + 1] = True
        _STABLE_BITMAP = bitmap
    return _STABLE_BITMAP


_BOM = "\ufeff".encode()


def _fold_all(inputs: Sequence[bytes]) -> list[bytes | None]:
    """:func:`_fold` of every input, with the common cases done in bulk.

    ASCII text is used as it is. Other valid UTF-8 whose non-ASCII code points are all in
    ``STABLE_RANGES`` (after one leading BOM) is too: steps 2-4 only lower-case its A-Z, which
    the caller's translation does. Those code points are decoded from the UTF-8 of all such
    inputs at once; the other inputs go through :func:`_fold`.
    """
    folded: list[bytes | None] = []
    check: list[int] = []
    for data in inputs:
        if data.isascii():
            folded.append(data)
            continue
        body = data[3:] if data.startswith(_BOM) else data
        if body.isascii():
            folded.append(body)
            continue
        try:
            body.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            folded.append(None)
            continue
        check.append(len(folded))
        folded.append(body)
    if not check:
        return folded
    bodies = [folded[k] or b"" for k in check]
    raw = np.frombuffer(b"".join([*bodies, b"\0\0\0"]), dtype=np.uint8)
    leads = np.flatnonzero(raw >= 0xC0)  # valid UTF-8: each starts one non-ASCII code point
    first = raw[leads].astype(np.uint32)
    b1 = raw[leads + 1].astype(np.uint32) & 0x3F
    b2 = raw[leads + 2].astype(np.uint32) & 0x3F
    b3 = raw[leads + 3].astype(np.uint32) & 0x3F
    codes = np.where(
        first < 0xE0,
        ((first & 0x1F) << 6) | b1,
        np.where(
            first < 0xF0,
            ((first & 0x0F) << 12) | (b1 << 6) | b2,
            ((first & 0x07) << 18) | (b1 << 12) | (b2 << 6) | b3,
        ),
    )
    unstable = leads[~_stable_bitmap()[codes]]
    if len(unstable):
        ends = np.cumsum(np.fromiter((len(b) for b in bodies), dtype=np.intp, count=len(bodies)))
        for k in np.unique(np.searchsorted(ends, unstable, side="right")).tolist():
            folded[check[k]] = _fold(inputs[check[k]])
    return folded


def normalize_batch(inputs: Sequence[bytes]) -> NormalizedBatch:
    """Normalize several inputs at once (the same result as one by one, only faster).

    Returns a :class:`NormalizedBatch`. Never raises for bytes inputs.
    """
    folded = _fold_all(inputs)
    present = [f for f in folded if f is not None]
    # A leading space and one space after every text make every text start after White_Space:
    # its leading run is dropped and its trailing run collapses with the separator. All the
    # White_Space left after _fold is ASCII: U+0009..U+000D and U+0020.
    joined = b" ".join([b"", *present, b""])
    raw = np.frombuffer(joined, dtype=np.uint8)
    is_ws = raw == 0x20
    is_ws |= (raw - np.uint8(0x09)) < np.uint8(5)  # uint8 arithmetic wraps around
    # The White_Space bytes that follow White_Space: all but the first of every run.
    dropped = np.flatnonzero(is_ws[1:] & is_ws[:-1])
    dropped += 1
    if len(dropped):
        marked = bytearray(joined)
        np.frombuffer(marked, dtype=np.uint8)[dropped] = 0xFF
        data = bytes(marked).translate(_TRANSLATE, _DROP)
    else:
        data = joined.translate(_TRANSLATE)
    # Where each input text starts and ends in ``joined``, then in ``data``.
    ends = np.fromiter(map(len, present), dtype=np.intp, count=len(present))
    ends += 1
    np.cumsum(ends, out=ends)
    starts = ends - np.fromiter(map(len, present), dtype=np.intp, count=len(present))
    starts -= np.searchsorted(dropped, starts, side="left")
    ends -= np.searchsorted(dropped, ends, side="left")
    # A text's trailing White_Space left one U+0020 before the separator (which was dropped).
    if len(ends):
        ends -= (np.frombuffer(data, dtype=np.uint8)[ends - 1] == 0x20) & (ends > starts)
    pairs = zip(starts.tolist(), ends.tolist(), strict=True)
    spans: list[tuple[int, int] | None] = [None if item is None else next(pairs) for item in folded]
    return NormalizedBatch(data, spans)


def normalize_str(text: str) -> str | None:
    """Steps 2-5 of norm-text-v1 on already-decoded text.

    Returns the normalized string, or None if ``text`` holds a code point unassigned in
    Unicode 14.0 (no digest is defined then).

    Raises:
        UnicodeEncodeError: ``text`` holds a lone surrogate (it is not decoded UTF-8).
    """
    normalized = normalize_batch([text.encode("utf-8")]).text(0)
    return None if normalized is None else normalized.decode("utf-8")


def reference_normalize(text: str) -> str | None:
    """norm-text-v1 steps 2-5 written as plainly as possible (slow; the tests compare)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if any(unicodedata.category(ch) == "Cn" for ch in text):
        return None
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return _WS_RUN.sub(" ", folded).strip(" ")


def norm_text_v1(data: bytes) -> str | None:
    """Return the norm-text-v1 normalized text of ``data``.

    Returns None when ``data`` is not strict UTF-8 or holds a code point unassigned in
    Unicode 14.0. Never raises for any bytes input.
    """
    normalized = normalize_batch([data]).text(0)
    return None if normalized is None else normalized.decode("utf-8")


def norm_text_sha256(data: bytes) -> str | None:
    """Return the norm-text-v1 digest of ``data`` (lowercase hex SHA-256), or None.

    None means no digest is defined: invalid UTF-8 or an unassigned code point.
    """
    return normalize_batch([data]).sha256(0)
