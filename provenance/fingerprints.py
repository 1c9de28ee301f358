"""Near-duplicate fingerprints of texts (winnowing over word n-grams) and images (pHash).

**Text: ``winnow-words-v1``.** Winnowing (Schleimer, Wilkerson and Aiken, SIGMOD 2003; the
method behind MOSS) over word n-grams of the ``norm-text-v1`` text. The normalized text is cut
into tokens: maximal runs of word characters, where every CJK ideograph, hiragana or katakana
character is a token of its own (those scripts do not separate words by spaces). Every run of
``NGRAM`` consecutive tokens is hashed to 64 bits; in every window of ``WINDOW`` consecutive
n-gram hashes the minimum is kept. The fingerprints of a text are the set of kept hashes. Two
texts that share a passage of at least ``NGRAM + WINDOW - 1`` tokens are guaranteed to share a
fingerprint, whatever surrounds the passage, which is what finding a chapter inside a scraped
page needs; MinHash only estimates whole-document resemblance, and its containment variants
need extra machinery. Texts shorter than ``NGRAM + WINDOW - 1`` tokens have no fingerprints
(they are found by their ``sha256`` and ``textSha256`` only).

Separators: ASCII characters other than ``[0-9a-z]`` (the text is case-folded), U+0080..U+00BF
(Latin-1 punctuation and symbols), U+2000..U+206F (general punctuation: curly quotes, dashes,
ellipsis) and U+3000..U+303F (CJK punctuation). So changing straight quotes for curly ones,
re-wrapping, or changing case changes no fingerprint.

The computation is vectorized with numpy over a batch of texts (the fingerprints of a text do
not depend on the batch it is computed in), so that fingerprinting keeps up with hashing.

**Images: ``phash64-v1``.** The 64-bit DCT perceptual hash of ``imagehash`` (Zauner 2010;
``imagehash.phash`` with hash size 8): robust to resizing, recompression and small colour
changes, and cheap to compare (Hamming distance). Needs the optional extra
``provenance[images]`` (Pillow, ImageHash); without it images get no fingerprint.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from provenance.normtext import NormalizedBatch, normalize_batch

__all__ = [
    "IMAGE_METHOD",
    "NGRAM",
    "TEXT_METHOD",
    "WINDOW",
    "fingerprints_of_batch",
    "image_fingerprint",
    "images_available",
    "is_image",
    "text_fingerprints",
    "text_fingerprints_batch",
]

TEXT_METHOD = "winnow-words-v1"
IMAGE_METHOD = "phash64-v1"
NGRAM = 8
WINDOW = 32
MIN_TOKENS = NGRAM + WINDOW - 1

U64 = npt.NDArray[np.uint64]
_EMPTY: U64 = np.zeros(0, dtype=np.uint64)

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_Q = 0x9E3779B97F4A7C15  # odd, so invertible modulo 2**64
_Q_INV = pow(_Q, -1, 2**64)
_LEN_MIX = np.uint64(0xD6E8FEB86659FD93)
_LAST_MIX = np.uint64(0xA0761D6478BD642F)
_LOW_MASKS = np.array(
    [0] + [(1 << (8 * k)) - 1 for k in range(1, 8)] + [2**64 - 1], dtype=np.uint64
)
_powers: tuple[U64, U64] = (_EMPTY, _EMPTY)


def _mix(x: U64) -> U64:
    """splitmix64's finalizer: a bijection on uint64 that spreads every input bit."""
    x = x ^ (x >> np.uint64(30))
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def _power_tables(size: int) -> tuple[U64, U64]:
    """Q**i and Q**-i modulo 2**64 for i < size (cached, grown on demand)."""
    global _powers
    if len(_powers[0]) < size:
        grown = max(size, 2 * len(_powers[0]), 1 << 16)
        with np.errstate(over="ignore"):
            q = np.full(grown, _Q, dtype=np.uint64)
            q[0] = 1
            q_inv = np.full(grown, _Q_INV, dtype=np.uint64)
            q_inv[0] = 1
            _powers = (np.cumprod(q, dtype=np.uint64), np.cumprod(q_inv, dtype=np.uint64))
    return _powers


def _tokens(data: bytes) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Start and end (exclusive) byte offsets of every token in normalized UTF-8 ``data``."""
    raw = np.frombuffer(data, dtype=np.uint8)
    n = len(raw)
    # Word bytes: a-z, 0-9 and (for now) every non-ASCII byte. uint8 arithmetic wraps around.
    word = np.zeros(n + 2, dtype=np.bool_)
    inner = word[1:-1]
    np.less(raw - np.uint8(ord("a")), np.uint8(26), out=inner)
    inner |= (raw - np.uint8(ord("0"))) < np.uint8(10)
    singles: npt.NDArray[np.intp] | None = None
    if not data.isascii():
        inner |= raw >= 0x80
        leads = np.flatnonzero(raw >= 0xC0)
        lead = raw[leads]
        second = np.append(raw, np.uint8(0))[leads + 1]
        # U+0080..U+00BF (C2 xx): Latin-1 punctuation and symbols.
        sep2 = leads[lead == 0xC2]
        # U+2000..U+207F (E2 80 xx, E2 81 xx) and U+3000..U+303F (E3 80 xx): punctuation.
        is_e3 = lead == 0xE3
        sep3 = leads[
            ((lead == 0xE2) & ((second == 0x80) | (second == 0x81))) | (is_e3 & (second == 0x80))
        ]
        # U+3040..U+9FFF: kana and CJK ideographs, one token per character.
        singles = leads[(is_e3 & (second >= 0x81)) | ((lead >= 0xE4) & (lead <= 0xE9))]
        for offset in (0, 1):
            inner[sep2 + offset] = False
        for offset in (0, 1, 2):
            inner[np.minimum(sep3 + offset, n - 1)] = False
            inner[np.minimum(singles + offset, n - 1)] = False
    edges = np.flatnonzero(word[1:] != word[:-1])
    starts, ends = edges[0::2], edges[1::2]
    if singles is not None and len(singles):
        starts = np.concatenate((starts, singles))
        ends = np.concatenate((ends, np.minimum(singles + 3, n)))
        order = np.argsort(starts, kind="stable")
        starts, ends = starts[order], ends[order]
    return starts, ends


def _word_hashes(padded: bytes, starts: npt.NDArray[np.intp], ends: npt.NDArray[np.intp]) -> U64:
    """A 64-bit hash per token from its length and its first and last (up to) 8 bytes."""
    view = np.ndarray(shape=(len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    lengths = ends - starts
    first = view[starts] & np.take(_LOW_MASKS, np.minimum(lengths, 8))
    # Only tokens longer than 8 bytes have bytes beyond the first 8.
    last = np.zeros(len(starts), dtype=np.uint64)
    long_tokens = np.flatnonzero(lengths > 8)
    last[long_tokens] = view[ends[long_tokens] - 8]
    with np.errstate(over="ignore"):
        key = first ^ (last * _LAST_MIX) ^ (lengths.astype(np.uint64) * _LEN_MIX)
        return _mix(key)


def _sliding(values: U64, width: int, op: np.ufunc) -> U64:
    """op (minimum or maximum) over every window of ``width`` consecutive values."""
    result = values
    span = 1
    while span * 2 <= width:
        result = op(result[:-span], result[span:])
        span *= 2
    if span < width:
        rest = width - span
        result = op(result[:-rest], result[rest:])
    return result


def _fingerprints(
    data: bytes, spans: Sequence[tuple[int, int] | None], *, ordered: bool = True
) -> list[U64]:
    count = len(spans)
    empty = [_EMPTY] * count
    if not data:
        return empty
    starts, ends = _tokens(data)
    n_words = len(starts)
    if n_words < MIN_TOKENS:
        return empty
    # The text each token belongs to: spans are increasing and separated by a space, so the
    # tokens of text i are those starting in [span start, span end); None spans hold none.
    present = [(i, span[0]) for i, span in enumerate(spans) if span is not None]
    text_starts = np.array([start for _, start in present] + [len(data)], dtype=np.intp)
    first_token = np.searchsorted(starts, text_starts, side="left")
    word_text = np.repeat(np.array([i for i, _ in present], dtype=np.intp), np.diff(first_token))
    wh = _word_hashes(data + b"\0" * 8, starts, ends)
    pw, pw_inv = _power_tables(n_words + 1)
    with np.errstate(over="ignore"):
        prefix = np.zeros(n_words + 1, dtype=np.uint64)
        np.cumsum(wh * pw[:n_words], out=prefix[1:])
        n_grams = n_words - NGRAM + 1
        # sum_t wh[i+t] * Q**t: uniform when the word hashes are, so no further mixing.
        grams = (prefix[NGRAM:] - prefix[:n_grams]) * pw_inv[:n_grams]
    # Window j covers n-grams j..j+WINDOW-1, i.e. words j..j+MIN_TOKENS-1: valid when the
    # first and the last of those words belong to the same text (and it is a real text).
    n_windows = n_grams - WINDOW + 1
    window_min = _sliding(grams, WINDOW, np.minimum)
    first_text = word_text[:n_windows]
    valid = (first_text == word_text[MIN_TOKENS - 1 :]) & (first_text >= 0)
    padded_min = np.zeros(n_windows + 2 * (WINDOW - 1), dtype=np.uint64)
    padded_min[WINDOW - 1 : WINDOW - 1 + n_windows] = np.where(valid, window_min, np.uint64(0))
    # n-gram i is kept iff it is the minimum of some valid window containing it, i.e. iff
    # the largest minimum over those windows equals its hash.
    best = _sliding(padded_min, WINDOW, np.maximum)
    kept = np.flatnonzero((best[:n_grams] == grams) & (best[:n_grams] != 0))
    kept_hash = grams[kept]
    kept_text = word_text[kept]  # non-decreasing, since kept positions increase
    if not ordered:
        bounds = np.searchsorted(kept_text, np.arange(count + 1), side="left")
        return [kept_hash[bounds[i] : bounds[i + 1]] for i in range(count)]
    # Sorted by text, then hash; a hash kept twice in one text (a repeated passage) once.
    order = np.lexsort((kept_hash, kept_text))
    kept_hash, kept_text = kept_hash[order], kept_text[order]
    if len(kept_hash) > 1:
        fresh = np.ones(len(kept_hash), dtype=np.bool_)
        fresh[1:] = (kept_hash[1:] != kept_hash[:-1]) | (kept_text[1:] != kept_text[:-1])
        kept_hash, kept_text = kept_hash[fresh], kept_text[fresh]
    bounds = np.searchsorted(kept_text, np.arange(count + 1), side="left")
    return [kept_hash[bounds[i] : bounds[i + 1]] for i in range(count)]


def fingerprints_of_batch(batch: NormalizedBatch, *, ordered: bool = True) -> list[U64]:
    """Fingerprints of every text of a :class:`~provenance.normtext.NormalizedBatch`.

    Returns, per input, its winnowed fingerprints as a sorted uint64 array of unique values
    (empty for no text or fewer than ``MIN_TOKENS`` tokens). Without ``ordered``, each array
    is in text order and a value may repeat (cheaper, for callers that sort anyway). The
    result for one text does not depend on the other texts in the batch.
    """
    return _fingerprints(batch.data, batch.spans, ordered=ordered)


def text_fingerprints_batch(texts: Sequence[bytes]) -> list[U64]:
    """Fingerprints of several raw texts (bytes, normalized here with norm-text-v1).

    Returns, per text, a sorted array of its unique fingerprints (empty for no text).
    """
    return fingerprints_of_batch(normalize_batch(texts))


def text_fingerprints(data: bytes) -> U64:
    """Sorted unique fingerprints of one raw text; see :func:`text_fingerprints_batch`."""
    return text_fingerprints_batch([data])[0]


# ----------------------------------------------------------------------------------------------
# Images

_IMAGE_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",  # TIFF
    b"MM\x00*",
)
MAX_IMAGE_PIXELS = 64_000_000


def is_image(data: bytes) -> bool:
    """True if ``data`` starts like a PNG, JPEG, GIF, BMP, TIFF or WebP file."""
    return data.startswith(_IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def images_available() -> bool:
    """True if the optional ``images`` extra (Pillow and ImageHash) is installed."""
    try:
        import imagehash  # noqa: F401
        from PIL import Image  # noqa: F401
    except ImportError:
        return False
    return True


def image_fingerprint(data: bytes) -> int | None:
    """Return the 64-bit pHash of the image in ``data``, or None if it cannot be decoded.

    Raises:
        ImportError: the ``images`` extra is not installed.
    """
    import imagehash
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                return None
            # JPEG can decode at a reduced scale directly; pHash only needs 32x32 pixels.
            image.draft("L", (128, 128))
            gray = image.convert("L")
            value = imagehash.phash(gray)
    except Exception:  # noqa: BLE001 - Pillow raises many types for corrupt images
        return None
    bits = value.hash.flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


# ----------------------------------------------------------------------------------------------
# Whole contents (files or records) as the manifest builder and lookups see them


@dataclass(frozen=True, slots=True)
class ContentPrints:
    """What a file's or record's content contributes to lookups.

    ``text_sha256`` is its norm-text-v1 digest when it is text (strict UTF-8 without NUL);
    ``text`` its winnowed fingerprints (sorted and unique unless made with ``ordered=False``;
    empty when it is not text or too short);
    ``image`` its 64-bit pHash when it is an image and the ``images`` extra is installed.
    """

    text_sha256: str | None
    text: U64
    image: int | None = None


NO_PRINTS = ContentPrints(None, _EMPTY, None)
_BATCH_BYTES = 1 << 20


def content_prints(
    contents: Sequence[bytes | None], *, images: bool = True, ordered: bool = True
) -> list[ContentPrints]:
    """Fingerprint several contents at once (None stands for a content not to fingerprint).

    Returns one :class:`ContentPrints` per content, in order; the same as one at a time.
    Without ``ordered`` the text fingerprints are as :func:`fingerprints_of_batch` gives them
    then (the sidecar writer sorts and deduplicates them itself).
    """
    texts: list[bytes] = []
    text_index: list[int] = []
    result: list[ContentPrints] = [NO_PRINTS] * len(contents)
    use_images = images and images_available()
    for index, content in enumerate(contents):
        if content is None:
            continue
        if is_image(content):
            if use_images:
                result[index] = ContentPrints(None, _EMPTY, image_fingerprint(content))
            continue
        if b"\x00" in content:
            continue
        texts.append(content)
        text_index.append(index)
    # Batches of about _BATCH_BYTES: big enough to amortize numpy's per-call cost, small
    # enough for the arrays to stay in the CPU caches (much faster than one huge batch).
    start = 0
    while start < len(texts):
        end, size = start, 0
        while end < len(texts) and (end == start or size + len(texts[end]) <= _BATCH_BYTES):
            size += len(texts[end])
            end += 1
        batch = normalize_batch(texts[start:end])
        prints = fingerprints_of_batch(batch, ordered=ordered)
        for k, index in enumerate(text_index[start:end]):
            digest = batch.sha256(k)
            if digest is not None:
                result[index] = ContentPrints(digest, prints[k])
        start = end
    return result
