"""The normalized-text digest ``norm-text-v1`` (DESIGN.md §2).

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
    """Steps 1-4 plus mapping non-ASCII White_Space to U+0020; None if no digest is defined."""
    if data.isascii():
        # Valid UTF-8, no BOM, nothing unassigned; NFKC is the identity on ASCII and full
        # case folding is lower-casing there.
        return data.lower()
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


_ASCII_WS_TO_SPACE = bytes.maketrans(b"\t\n\x0b\x0c\r", b"     ")


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


def normalize_batch(inputs: Sequence[bytes]) -> NormalizedBatch:
    """Normalize several inputs at once (the same result as one by one, only faster).

    Returns a :class:`NormalizedBatch`. Never raises for bytes inputs.
    """
    folded = [_fold(data) for data in inputs]
    present = [f for f in folded if f is not None]
    # A leading space and one space after every text make every text start after White_Space:
    # its leading run is dropped and its trailing run collapses with the separator.
    # The remaining White_Space is ASCII: U+0009..U+000D become U+0020 first.
    joined = (b" " + b" ".join(present) + b" ").translate(_ASCII_WS_TO_SPACE)
    marked = np.frombuffer(joined, dtype=np.uint8).copy()
    is_ws = marked == 0x20
    dropped = np.flatnonzero(is_ws[1:] & is_ws[:-1]) + 1
    # 0xFF never occurs in UTF-8, so it can mark the bytes to drop for bytes.translate.
    marked[dropped] = 0xFF
    data = marked.tobytes().translate(None, b"\xff")
    # Where each input text starts and ends in ``joined``.
    lengths = np.fromiter((len(f) for f in present), dtype=np.intp, count=len(present))
    starts = np.empty(len(present), dtype=np.intp)
    if len(present):
        starts[0] = 1
        np.cumsum(lengths[:-1] + 1, out=starts[1:])
        starts[1:] += 1
    ends = starts + lengths
    new_starts = starts - np.searchsorted(dropped, starts, side="left")
    new_ends = ends - np.searchsorted(dropped, ends, side="left")
    spans: list[tuple[int, int] | None] = []
    k = 0
    for item in folded:
        if item is None:
            spans.append(None)
            continue
        start, end = int(new_starts[k]), int(new_ends[k])
        k += 1
        if end > start and data[end - 1] == 0x20:
            end -= 1
        spans.append((start, end))
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
