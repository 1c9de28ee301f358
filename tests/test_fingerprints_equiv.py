"""The fast fingerprinting paths against plain reference implementations and pinned outputs.

``norm-text-v1``, ``winnow-words-v1`` and the sidecar layout are formats: a faster implementation
must give the same bytes. Three kinds of checks:

- pinned outputs: digests of what the first implementation (commit 98df4ec) computed for fixed
  inputs (the twelve stories and constructed texts), and of the sidecar of a fixed corpus;
- reference implementations written as plainly as possible (per code point, per token, per
  window, in Python integers) compared with the vectorized code on generated texts;
- the vectorized helpers (aligned 8-byte loads, the inverted index sort) against numpy one-liners.
"""

from __future__ import annotations

import hashlib
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance import fingerprints, fpindex, manifest
from provenance.fingerprints import (
    MIN_TOKENS,
    NGRAM,
    WINDOW,
    ContentPrints,
    content_prints,
    text_fingerprints,
    text_fingerprints_batch,
)
from provenance.normtext import normalize_batch, reference_normalize
from tests.conftest import SAMPLES
from tests.lookup_support import sidecar_as_version_1

STORIES = sorted((SAMPLES / "data" / "books").glob("*.txt")) + sorted(
    (SAMPLES / "works").glob("*.txt")
)
M64 = 2**64 - 1


# ----------------------------------------------------------------------------------------------
# Reference implementation of winnow-words-v1 (fingerprints.py's docstring), one step at a time


def _is_word_code_point(cp: int) -> bool:
    if cp < 0x80:
        return 0x30 <= cp <= 0x39 or 0x61 <= cp <= 0x7A
    return not (cp <= 0xBF or 0x2000 <= cp <= 0x207F or 0x3000 <= cp <= 0x303F)


def _reference_tokens(text: str) -> list[bytes]:
    """Maximal runs of word characters; every U+3040..U+9FFF character is a token of its own."""
    tokens: list[bytes] = []
    run: list[str] = []
    for ch in text:
        cp = ord(ch)
        if 0x3040 <= cp <= 0x9FFF:
            if run:
                tokens.append("".join(run).encode())
                run = []
            tokens.append(ch.encode())
        elif _is_word_code_point(cp):
            run.append(ch)
        elif run:
            tokens.append("".join(run).encode())
            run = []
    if run:
        tokens.append("".join(run).encode())
    return tokens


def _splitmix_finalizer(x: int) -> int:
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def _reference_word_hash(token: bytes) -> int:
    first = int.from_bytes(token[:8], "little")
    last = int.from_bytes(token[-8:], "little") if len(token) > 8 else 0
    key = first ^ ((last * 0xA0761D6478BD642F) & M64) ^ ((len(token) * 0xD6E8FEB86659FD93) & M64)
    return _splitmix_finalizer(key)


def _reference_prints(raw: bytes) -> list[int]:
    """The sorted unique fingerprints of ``raw`` (empty when it has no norm-text-v1 text)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return []
    normalized = reference_normalize(text)
    if normalized is None:
        return []
    hashes = [_reference_word_hash(t) for t in _reference_tokens(normalized)]
    powers = [pow(0x9E3779B97F4A7C15, t, 2**64) for t in range(NGRAM)]
    grams = [
        sum(h * q for h, q in zip(hashes[i : i + NGRAM], powers, strict=True)) & M64
        for i in range(len(hashes) - NGRAM + 1)
    ]
    # Winnowing: the minimum of every window of WINDOW n-grams (0 is never kept).
    kept = {min(grams[j : j + WINDOW]) for j in range(len(grams) - WINDOW + 1)}
    return sorted(kept - {0})


# ----------------------------------------------------------------------------------------------
# Pinned outputs of the first implementation


def _golden_inputs() -> dict[str, bytes]:
    inputs = {f"story-{n:02}": p.read_bytes() for n, p in enumerate(STORIES, 1)}
    one = STORIES[0].read_text(encoding="utf-8")
    inputs["crlf-upper-bom"] = ("\ufeff" + one[:20000].upper().replace("\n", "\r\n")).encode()
    inputs["curly-tabs"] = one[5000:15000].replace('"', "\u201c").replace(" ", "\t ").encode()
    cjk = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
    picks, x = [], 1
    for _ in range(1500):
        x = (x * 1103515245 + 12345) % 2**31  # a fixed pseudo-random sequence
        picks.append(cjk[(x >> 16) % len(cjk)])
    inputs["cjk"] = "".join(picks).encode()
    mixed = "Ελληνικά ΚΕΙΜΕΝΑ ς σ — Straße STRASSE ﬁle Å Å é É İstanbul 😀 한국어 テキスト a1 b2"
    words = mixed.split(" ")
    inputs["mixed-scripts"] = " ".join(
        words[(n * 7) % len(words)] + str(n % 13) for n in range(600)
    ).encode()
    inputs["long-tokens"] = " ".join(
        f"supercalifragilistic{n:05d}expialidocious tok{n}" for n in range(300)
    ).encode()
    inputs["just-enough"] = " ".join(f"w{n}" for n in range(39)).encode()
    inputs["too-short"] = " ".join(f"w{n}" for n in range(38)).encode()
    inputs["repeated-passage"] = (" ".join(f"r{n % 50}" for n in range(400))).encode()
    inputs["latin1-symbols"] = ("price ¥100 ± 5 « quoted » § 3 ¶ 4 " * 60).encode()
    inputs["invalid-utf8"] = b"abc \xff\xfe def " * 50
    inputs["unassigned"] = ("word \u0378 " * 60).encode()
    return inputs


# Per input: textSha256 (first 32 hex digits; "-" for none), number of fingerprints, and the
# SHA-256 (first 32 hex digits) of the sorted fingerprints as little-endian uint64.
_GOLDEN_TABLE = """
story-01          7f1bf9aba3dfc04106dae6f82a78ea34   500  0a1406202db00e75ca0a106e2f60c925
story-02          d5d2431a19fa366c9e674181369b8efd   583  32db4777d11a21da30a5e007131f2046
story-03          dd29a1c3594745010117b7d91db1d9b0   447  4bc1abff1078237350d18c67de07e51c
story-04          8bde02a4b1121353277a89e04c2d2280   585  176aa0602508754d2f6ca115e39d8566
story-05          80db0b87429dd21b28ae2c8e503281e9   431  5f1ed09bf16e33ce0f1b7d6748fb1bd2
story-06          17ad5f32aa033e3cd57ce012bb723869   572  9a40a78223f7a557d6da18786db2572b
story-07          62a540b1de7126ea820568d504512b3f   466  e9a09bbdeb5efe716235aa52dc7f785d
story-08          e8e17362292e3c22f64ecda5da69af71   591  bbfc3da0a4b5ac587876357df86dd1e7
story-09          b33be8e9046a09e8059175a936285d2a   524  dc2e906c8c2636cbdd48897920eadd27
story-10          74339ffd1ae4c9895540580c8f71bf02   513  fb6022cb65ad7f70e54e0d1c48fd10ed
story-11          a2c268b205984e1c97d068f89f1fef78   588  07e50ef03963d22d6ca1621a6af49a11
story-12          a5928da50da67b448bf5df1616b5f527   631  420e3c14deae5cda273d475829e70140
crlf-upper-bom    3029c948e74c4e856cf8a94adfaeba9e   212  c583def441891b54b8700f83d81f82e4
curly-tabs        c040075a42afa930b8212062fa14295c   106  eae625af4b2040aecf2c4a4e90765384
cjk               134076b239b8df802e9a47b38f781fb3    82  4a9e13ac9ddbbc435a639a1205135ca7
mixed-scripts     a918508c39e5a4f286d006567fdc88e6    16  db9f7bce2575e2c4ecebcedffaedcce3
long-tokens       b9b8178f6fe8beb31f3054b95435dbe5    35  dd1e85880c4ddc0ac3dd1e83376142ad
just-enough       560661afd668663267807b20eaa9af34     1  8650340e8ec6a68bcef286bd8748f822
too-short         5ca783c97b3cca6227c330918a4a5849     0  e3b0c44298fc1c149afbf4c8996fb924
repeated-passage  ff46b336f345e8daee4d325e338f2891     3  9f54f88fce200d7a2044b7ac5450ef33
latin1-symbols    3348d972c4b0f445141acc226343e45c     1  4b236dd86de63a5bf7de25eaf637a4e3
invalid-utf8      -                                    0  e3b0c44298fc1c149afbf4c8996fb924
unassigned        -                                    0  e3b0c44298fc1c149afbf4c8996fb924
"""
_GOLDEN = {
    name: ("" if sha == "-" else sha, int(count), digest)
    for name, sha, count, digest in (line.split() for line in _GOLDEN_TABLE.strip().splitlines())
}


def _summary(prints: ContentPrints) -> tuple[str, int, str]:
    unique = np.unique(prints.text)
    digest = hashlib.sha256(unique.astype("<u8").tobytes()).hexdigest()[:32]
    return ((prints.text_sha256 or "")[:32], len(unique), digest)


@pytest.mark.parametrize("ordered", [True, False])
def test_pinned_outputs_of_the_first_implementation(ordered: bool) -> None:
    inputs = _golden_inputs()
    assert set(inputs) == set(_GOLDEN)
    names = list(inputs)
    made = content_prints([inputs[n] for n in names], images=False, ordered=ordered)
    for name, prints in zip(names, made, strict=True):
        assert _summary(prints) == _GOLDEN[name], name
        if ordered:  # sorted and unique as documented
            assert np.array_equal(prints.text, np.unique(prints.text))
    # One at a time: the batch a text is in does not matter.
    for name in names:
        assert _summary(content_prints([inputs[name]], images=False)[0]) == _GOLDEN[name]


def _golden_corpus(root: Path) -> None:
    for n, (name, data) in enumerate(_golden_inputs().items()):
        (root / f"d{n % 3}").mkdir(parents=True, exist_ok=True)
        (root / f"d{n % 3}" / name).write_bytes(data)
        # An edited copy sharing most passages: hashes held by several entries.
        copy = data[: len(data) * 2 // 3] + b" the end"
        (root / f"d{n % 3}" / ("copy-" + name)).write_bytes(copy)


@pytest.mark.parametrize("workers", [1, 2])
def test_pinned_manifest_and_sidecar(tmp_path: Path, workers: int) -> None:
    _golden_corpus(tmp_path / "data")
    prints: dict[str, ContentPrints] = {}
    entries = manifest.build_from_directory(tmp_path / "data", workers=workers, prints=prints)
    output = tmp_path / "m.jsonl"
    summary = manifest.write_manifest(entries, output)
    digest = fpindex.write_sidecar_for(entries, summary.digest, prints, tmp_path / "a.fp")
    _, rescanned = fpindex.write_sidecar(output, prints, tmp_path / "b.fp")
    assert summary.digest == "563139fac59447db8c55ac31829e5ebf900fce1bd9d324131de3635de90b5523"
    expected = "2fbdcfb38237de18c77cf721c3933eb63eed648f8a36f903b730a0b092598581"  # format 2
    assert digest == rescanned == expected
    assert fpindex.file_sha256(tmp_path / "a.fp") == digest
    # The same content in format 1 is the first implementation's sidecar, byte for byte.
    old = sidecar_as_version_1(tmp_path / "a.fp", output)
    first = "443262836248d12da4775e485a29004a98294a8dd84c1a5aa90b0d691c59889d"
    assert hashlib.sha256(old).hexdigest() == first


# ----------------------------------------------------------------------------------------------
# Against the reference implementation


def test_reference_agrees_on_real_text() -> None:
    texts = [STORIES[k].read_bytes()[: 6000 + 3000 * k] for k in (0, 4, 9)]
    texts.append(_golden_inputs()["mixed-scripts"])
    texts.append(_golden_inputs()["cjk"][:3000])
    for text, prints in zip(texts, text_fingerprints_batch(texts), strict=True):
        assert prints.tolist() == _reference_prints(text)


_PIECES = [
    "the", "Holmes", "WATSON", "x", "a1", "2024", "supercalifragilistic", "ünïcödé", "Straße",
    "ΣΟΦΙΑ", "ς", "ﬁle", "İ", "e\u0301", "Å", "\u212b", "東", "京", "ひ", "カ", "が", "한",
    "😀", "\u0378", "\ufeff", "“", "”", "’", "—", "…", "«", "¥", "\u2070", "\u207f", "\u3001",
    "\u00a0", "\u0085", "\u2028", "\u3000", "\u1680", " ", "  ", "\t", "\n", "\r\n", "\x0b",
    "\x0c", "\x1c", ".", ",", "-", "'", '"', "_", "/",
]  # fmt: skip
_SEPARATORS = [" ", "\n", "\r\n", ", ", ". ", " “", "” ", "\t", "—", "　", "  ", ""]
_part = st.tuples(st.sampled_from(_PIECES) | st.text(max_size=3), st.sampled_from(_SEPARATORS))
_texts = st.lists(_part, max_size=120).map(lambda parts: "".join(a + b for a, b in parts))
# Long enough for fingerprints: MIN_TOKENS tokens and more, mostly words.
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_words = st.sampled_from(_PIECES[: _PIECES.index("\u0378")])
_words |= st.text(_ALNUM, min_size=1, max_size=12)
_long_texts = st.lists(
    st.tuples(_words, st.sampled_from(_SEPARATORS[:-1])), min_size=45, max_size=250
).map(lambda parts: "".join(a + b for a, b in parts))


@given(
    st.lists(_texts | _long_texts, min_size=1, max_size=6),
    st.sampled_from([b"", "\ufeff".encode()]),
)
@settings(max_examples=100, deadline=None)
def test_reference_agrees_on_generated_texts(texts: list[str], bom: bytes) -> None:
    raws = []
    for text in texts:
        try:
            raws.append(bom + text.encode("utf-8"))
        except UnicodeEncodeError:  # a lone surrogate: not UTF-8 input
            continue
    if not raws:
        return
    together = content_prints(raws, images=False)
    unordered = content_prints(raws, images=False, ordered=False)
    for raw, prints, loose in zip(raws, together, unordered, strict=True):
        # Content with a NUL byte or an image's magic number is not text.
        binary = b"\x00" in raw or fingerprints.is_image(raw)
        expected = [] if binary else _reference_prints(raw)
        assert prints.text.tolist() == expected
        assert sorted(set(loose.text.tolist())) == expected
        normalized = None if binary else reference_normalize(raw.decode("utf-8"))
        digest = None if normalized is None else hashlib.sha256(normalized.encode()).hexdigest()
        assert prints.text_sha256 == loose.text_sha256 == digest


@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=MIN_TOKENS, max_size=300))
@settings(max_examples=60, deadline=None)
def test_reference_agrees_on_repetitive_texts(words: list[str]) -> None:
    # Few distinct n-grams: ties for the window minimum everywhere.
    raw = " ".join(words).encode()
    assert text_fingerprints(raw).tolist() == _reference_prints(raw)


@given(_texts)
@settings(max_examples=150, deadline=None)
def test_tokens_agree_with_reference(text: str) -> None:
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        return
    batch = normalize_batch([raw])
    data = batch.text(0)
    if data is None:
        return
    starts, ends = fingerprints._tokens(data)
    tokens = [data[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    assert tokens == _reference_tokens(data.decode("utf-8"))


def test_random_batches_give_the_same_prints() -> None:
    rng = random.Random(5)
    texts = [p.read_bytes()[: rng.randrange(100, 20000)] for p in STORIES for _ in range(3)]
    texts += [b"", b"short text", b"\x00binary", "東京 ".encode() * 50]
    rng.shuffle(texts)
    alone = [text_fingerprints(t).tolist() for t in texts]
    start = 0
    while start < len(texts):
        end = start + rng.randrange(1, 12)
        together = text_fingerprints_batch(texts[start:end])
        assert [t.tolist() for t in together] == alone[start:end]
        start = end


# ----------------------------------------------------------------------------------------------
# The vectorized helpers


def test_aligned_loads_equal_unaligned_reads() -> None:
    rng = np.random.default_rng(3)
    for size in (1, 7, 8, 9, 63, 64, 1000):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        words = np.zeros(len(data) // 8 + 2, dtype="<u8")
        words.view(np.uint8)[: len(data)] = np.frombuffer(data, dtype=np.uint8)
        offsets = np.arange(size, dtype=np.intp)
        padded = data + bytes(8)
        expected = [int.from_bytes(padded[o : o + 8], "little") for o in range(size)]
        assert fingerprints._load8(words, offsets).tolist() == expected


def _lexsorted_pairs(numbers: list[int], texts: list[np.ndarray]) -> tuple[list[int], list[int]]:
    pairs = sorted({(int(h), n) for n, t in zip(numbers, texts, strict=True) for h in t})
    return [h for h, _ in pairs], [n for _, n in pairs]


@given(
    st.lists(
        st.lists(st.integers(0, 2**64 - 1) | st.sampled_from([0, 5, 2**63, 2**64 - 1]), max_size=9),
        max_size=12,
    )
)
@settings(max_examples=150, deadline=None)
def test_inverted_index_equals_sorting_the_pairs(values: list[list[int]]) -> None:
    numbers = [3 * k + 1 for k in range(len(values))]
    texts = [np.array(v, dtype=np.uint64) for v in values]
    kept = [(n, t) for n, t in zip(numbers, texts, strict=True) if len(t)]
    fp_hash, fp_entry = fpindex.writing._inverted_index([n for n, _ in kept], [t for _, t in kept])
    assert fp_hash.dtype == np.uint64 and fp_entry.dtype == np.uint32
    assert (fp_hash.tolist(), fp_entry.tolist()) == _lexsorted_pairs(numbers, texts)


def test_content_prints_pickle_as_bytes() -> None:
    made = content_prints([STORIES[0].read_bytes(), b"", b"\x00"], images=False, ordered=False)
    for prints in made:
        copy = pickle.loads(pickle.dumps(prints, protocol=pickle.HIGHEST_PROTOCOL))
        assert copy.text_sha256 == prints.text_sha256 and copy.image == prints.image
        assert copy.text.dtype == np.uint64 and np.array_equal(copy.text, prints.text)
    image = ContentPrints(None, np.zeros(0, dtype=np.uint64), 2**64 - 1)
    assert pickle.loads(pickle.dumps(image)).image == 2**64 - 1
