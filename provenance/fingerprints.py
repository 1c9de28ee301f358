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
(Latin-1 punctuation and symbols), U+2000..U+207F (general punctuation: curly quotes, dashes,
ellipsis) and U+3000..U+303F (CJK punctuation). So changing straight quotes for curly ones,
re-wrapping, or changing case changes no fingerprint.

Hashes, all modulo 2**64: a token's hash is splitmix64's finalizer of
``first ^ last * 0xA0761D6478BD642F ^ length * 0xD6E8FEB86659FD93``, where ``first`` is its first
``min(length, 8)`` UTF-8 bytes and ``last`` its last 8 bytes (0 if it has at most 8) read as
little-endian integers; an n-gram's hash is ``sum(hash[i + t] * Q**t for t < NGRAM)`` with
``Q = 0x9E3779B97F4A7C15`` (the polynomial hash of :mod:`provenance._kernels`, whose base is Q);
the fingerprints are the minima of the windows (0 never is one).
``tests/test_fingerprints_equiv.py`` holds this definition written out plainly.

The computation is vectorized with numpy over a batch of texts (the fingerprints of a text do
not depend on the batch it is computed in), so that fingerprinting keeps up with hashing.

**Images: ``phash64-v1``.** The 64-bit DCT perceptual hash of ``imagehash`` (Zauner 2010;
``imagehash.phash`` with hash size 8): robust to resizing, recompression and small colour
changes, and cheap to compare (Hamming distance). Needs the optional extra
``provenance[images]`` (Pillow, ImageHash); without it images get no fingerprint.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from provenance._contentkind import IMAGE_FIRST_BYTES as _IMAGE_FIRST_BYTES
from provenance._contentkind import is_image
from provenance._kernels import polynomial_prefix, window_hashes
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
# Byte offsets (np.intp) are reinterpreted as uint64 without a copy.
assert np.dtype(np.intp).itemsize == 8, "needs a 64-bit platform"

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_LEN_MIX = np.uint64(0xD6E8FEB86659FD93)
_LAST_MIX = np.uint64(0xA0761D6478BD642F)
_LOW_MASKS = np.array(
    [0] + [(1 << (8 * k)) - 1 for k in range(1, 8)] + [2**64 - 1], dtype=np.uint64
)


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
        second = raw[np.minimum(leads + 1, n - 1)]
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
    if singles is None or not len(singles):
        # Contiguous copies: the gathers that use them run faster.
        return edges[0::2].copy(), edges[1::2].copy()
    starts = np.concatenate((edges[0::2], singles))
    ends = np.concatenate((edges[1::2], np.minimum(singles + 3, n)))
    order = np.argsort(starts, kind="stable")
    return starts[order], ends[order]


def _load8(words: U64, offsets: npt.NDArray[np.intp]) -> U64:
    """The 8 bytes at each byte offset of ``words`` (little-endian), from two aligned loads.

    Gathering aligned words and shifting is several times faster than gathering from an
    unaligned view. ``words`` needs one word of padding after the last offset's word.
    """
    index = offsets >> 3
    low = words.take(index)
    index += 1
    high = words.take(index)
    shift = (offsets & 7).view(np.uint64)  # offsets are int64 (np.intp), and >= 0
    shift <<= np.uint64(3)
    low >>= shift
    # 64 - shift, for shift in 0..56; numpy shifts a uint64 by 64 or more to 0.
    np.subtract(np.uint64(64), shift, out=shift)
    high <<= shift
    low |= high
    return low


def _word_hashes(data: bytes, starts: npt.NDArray[np.intp], ends: npt.NDArray[np.intp]) -> U64:
    """A 64-bit hash per token from its length and its first and last (up to) 8 bytes."""
    # The text as aligned little-endian words, with a zero word after it.
    words = np.zeros(len(data) // 8 + 2, dtype="<u8")
    words.view(np.uint8)[: len(data)] = np.frombuffer(data, dtype=np.uint8)
    lengths = ends - starts
    key = _load8(words, starts)
    key &= _LOW_MASKS.take(lengths, mode="clip")  # lengths beyond 8 take the last mask
    # Only tokens longer than 8 bytes have bytes beyond the first 8.
    long_tokens = np.flatnonzero(lengths > 8)
    with np.errstate(over="ignore"):
        if len(long_tokens):
            last = _load8(words, ends[long_tokens] - 8)
            last *= _LAST_MIX
            key[long_tokens] ^= last
        # lengths are int64 (np.intp) and positive: the same bits as uint64.
        key ^= np.multiply(lengths.view(np.uint64), _LEN_MIX)
        return _mix_inplace(key)


def _mix_inplace(x: U64) -> U64:
    """splitmix64's finalizer, a bijection on uint64 that spreads every input bit, in place."""
    shifted = x >> np.uint64(30)
    x ^= shifted
    x *= _M1
    np.right_shift(x, np.uint64(27), out=shifted)
    x ^= shifted
    x *= _M2
    np.right_shift(x, np.uint64(31), out=shifted)
    x ^= shifted
    return x


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
    result = [_EMPTY] * count
    if not data:
        return result
    starts, ends = _tokens(data)
    n_words = len(starts)
    if n_words < MIN_TOKENS:
        return result
    # The tokens of a text: spans are increasing and separated by a space, so they are those
    # starting in [span start, span end). Its windows of WINDOW n-grams (MIN_TOKENS tokens)
    # are those numbered from its first token to its last token - MIN_TOKENS + 1 included.
    texts = [i for i, span in enumerate(spans) if span is not None]
    bounds = np.array([spans[i] for i in texts], dtype=np.intp).reshape(-1, 2)
    token_bounds = np.searchsorted(starts, bounds.ravel(), side="left").reshape(-1, 2)
    first_window = token_bounds[:, 0]
    end_window = token_bounds[:, 1] - (MIN_TOKENS - 1)
    long_enough = np.flatnonzero(end_window > first_window)
    if not len(long_enough):
        return result
    first_window, end_window = first_window[long_enough], end_window[long_enough]
    # sum_t wh[i+t] * Q**t: uniform when the word hashes are, so no further mixing.
    grams = window_hashes(polynomial_prefix(_word_hashes(data, starts, ends)), NGRAM)
    # Winnowing keeps, of every window of one text, the n-grams equal to the window's minimum:
    # the text's fingerprints are the set of the minima of its windows (0 excepted, which the
    # first implementation could not tell from padding). Consecutive windows mostly share
    # their minimum, so it is taken once per run (and at every text's first window).
    window_min = _sliding(grams, WINDOW, np.minimum)
    change = np.empty(len(window_min), dtype=np.bool_)
    change[0] = True
    np.not_equal(window_min[1:], window_min[:-1], out=change[1:])
    change[first_window] = True
    positions = np.flatnonzero(change)
    values = window_min[positions]
    if not values.all():
        nonzero = values != 0
        positions, values = positions[nonzero], values[nonzero]
    lo = np.searchsorted(positions, first_window, side="left")
    hi = np.searchsorted(positions, end_window, side="left")
    numbers = [texts[k] for k in long_enough.tolist()]
    if not ordered:
        for number, a, b in zip(numbers, lo.tolist(), hi.tolist(), strict=True):
            result[number] = values[a:b]
        return result
    # Sorted by text, then hash; a hash kept twice in one text (a repeated passage) once.
    sizes = hi - lo
    text_of = np.repeat(np.arange(len(numbers)), sizes)
    taken = np.repeat(lo - np.cumsum(sizes) + sizes, sizes) + np.arange(int(sizes.sum()))
    kept_hash = values[taken]
    order = np.lexsort((kept_hash, text_of))
    kept_hash, text_of = kept_hash[order], text_of[order]
    if len(kept_hash) > 1:
        fresh = np.ones(len(kept_hash), dtype=np.bool_)
        fresh[1:] = (kept_hash[1:] != kept_hash[:-1]) | (text_of[1:] != text_of[:-1])
        kept_hash, text_of = kept_hash[fresh], text_of[fresh]
    cuts = np.searchsorted(text_of, np.arange(len(numbers) + 1), side="left").tolist()
    for k, number in enumerate(numbers):
        result[number] = kept_hash[cuts[k] : cuts[k + 1]]
    return result


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

MAX_IMAGE_PIXELS = 64_000_000


def images_available() -> bool:
    """True if the optional ``images`` extra (Pillow and ImageHash) is installed."""
    try:
        import imagehash  # noqa: F401
        from PIL import Image  # noqa: F401
    except ImportError:
        return False
    return True


# Pillow warns on stderr about huge ("decompression bomb") and odd images, and numpy under
# imagehash about degenerate ones. Such an image simply gets no fingerprint (or its pHash); a
# warning tells the user nothing they can act on and breaks the progress bar. The filter is
# process-wide and permanent rather than a catch_warnings() around each call, because
# catch_warnings is not thread-safe and manifest build fingerprints big files on threads; it
# only silences warnings raised from these modules.
_QUIET_MODULES = r"(PIL|imagehash|scipy)(\..*)?$|provenance\.fingerprints$"
_QUIET_FILTER = ("ignore", None, Warning, re.compile(_QUIET_MODULES), 0)
_quiet_lock = threading.Lock()


def _silence_image_warnings() -> None:
    """Install the filter above unless it is in place (it is re-checked: a caller may have
    reset the warning filters since, as ``warnings.catch_warnings`` does on exit)."""
    if _QUIET_FILTER in warnings.filters:
        return
    with _quiet_lock:
        if _QUIET_FILTER not in warnings.filters:
            warnings.filterwarnings("ignore", category=Warning, module=_QUIET_MODULES)


def image_fingerprint(data: bytes) -> int | None:
    """Return the 64-bit pHash of the image in ``data``, or None if it cannot be decoded.

    Library warnings raised while decoding (Pillow's decompression-bomb warning, odd modes)
    are silenced for the whole process (see ``_silence_image_warnings``).

    Raises:
        ImportError: the ``images`` extra is not installed.
    """
    import imagehash
    from PIL import Image

    _silence_image_warnings()
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

    def __reduce__(self) -> tuple[Any, ...]:
        # Tens of thousands cross from the hashing processes: the fingerprints as raw bytes
        # pickle several times faster than as numpy arrays.
        return (_unpickle_prints, (self.text_sha256, self.text.tobytes(), self.image))


def _unpickle_prints(text_sha256: str | None, text: bytes, image: int | None) -> ContentPrints:
    return ContentPrints(text_sha256, np.frombuffer(text, dtype=np.uint64), image)


NO_PRINTS = ContentPrints(None, _EMPTY, None)
_BATCH_BYTES = 1 << 19


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
    other_texts: list[bytes] = []
    other_index: list[int] = []
    result: list[ContentPrints] = [NO_PRINTS] * len(contents)
    use_images: bool | None = None if images else False  # looked up at the first image
    for index, content in enumerate(contents):
        if content is None:
            continue
        if content[:1] in _IMAGE_FIRST_BYTES and is_image(content):
            if use_images is None:
                use_images = images_available()
            if use_images:
                result[index] = ContentPrints(None, _EMPTY, image_fingerprint(content))
            continue
        if b"\x00" in content:
            continue
        if content.isascii():
            texts.append(content)
            text_index.append(index)
        else:
            other_texts.append(content)
            other_index.append(index)
    # ASCII texts first, in batches of their own: those skip the non-ASCII steps of
    # normalizing and tokenizing (the batches a text is in do not change its fingerprints).
    texts += other_texts
    text_index += other_index
    # Batches of about _BATCH_BYTES: big enough to amortize numpy's per-call cost, small
    # enough for the arrays to stay in the CPU caches (much faster than one huge batch).
    start = 0
    sha256 = hashlib.sha256
    while start < len(texts):
        end, size = start, 0
        while end < len(texts) and (end == start or size + len(texts[end]) <= _BATCH_BYTES):
            size += len(texts[end])
            end += 1
        batch = normalize_batch(texts[start:end])
        prints = fingerprints_of_batch(batch, ordered=ordered)
        data = memoryview(batch.data)
        for index, span, found in zip(text_index[start:end], batch.spans, prints, strict=True):
            if span is not None:
                result[index] = ContentPrints(sha256(data[span[0] : span[1]]).hexdigest(), found)
        start = end
    return result
