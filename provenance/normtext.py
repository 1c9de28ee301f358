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
from bisect import bisect_right

from provenance._unicode14 import CN_ENDS, CN_STARTS, UNICODE_VERSION

__all__ = [
    "NORM_TEXT_NAME",
    "WHITE_SPACE",
    "norm_text_sha256",
    "norm_text_v1",
    "normalize_str",
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


def _has_unassigned(text: str) -> bool:
    """True if ``text`` holds a code point unassigned in Unicode 14.0."""
    if text.isascii():
        return False
    for ch in set(text):
        cp = ord(ch)
        if cp < 0x378:  # the first Cn code point in Unicode 14.0
            continue
        i = bisect_right(CN_STARTS, cp) - 1
        if i >= 0 and cp <= CN_ENDS[i]:
            return True
    return False


def normalize_str(text: str) -> str | None:
    """Steps 2-5 of norm-text-v1 on already-decoded text.

    Returns the normalized string, or None if ``text`` holds a code point unassigned in
    Unicode 14.0 (no digest is defined then).
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    if _has_unassigned(text):
        return None
    if text.isascii():
        # NFKC is the identity on ASCII and full case folding is lower-casing there.
        folded = text.lower()
    else:
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return _WS_RUN.sub(" ", folded).strip(" ")


def norm_text_v1(data: bytes) -> str | None:
    """Return the norm-text-v1 normalized text of ``data``.

    Returns None when ``data`` is not strict UTF-8 or holds a code point unassigned in
    Unicode 14.0. Never raises for any bytes input.
    """
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        return None
    return normalize_str(text)


def norm_text_sha256(data: bytes) -> str | None:
    """Return the norm-text-v1 digest of ``data`` (lowercase hex SHA-256), or None.

    None means no digest is defined: invalid UTF-8 or an unassigned code point.
    """
    norm = norm_text_v1(data)
    if norm is None:
        return None
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()
