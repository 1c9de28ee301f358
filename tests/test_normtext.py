"""norm-text-v1 (docs/design.md §2.9) on tricky inputs."""

from __future__ import annotations

import hashlib
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance import normtext
from provenance._unicode14 import CN_ENDS, CN_STARTS
from provenance._unicode14_stable import STABLE_RANGES
from provenance.normtext import WHITE_SPACE, norm_text_sha256, norm_text_v1


def _sha(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Straße".encode(), "strasse"),  # full case folding: ß -> ss
        (b"STRASSE", "strasse"),
        ("\ufb01le".encode(), "file"),  # ﬁ ligature: NFKC
        ("\u0130stanbul".encode(), "i\u0307stanbul"),  # İ: full folding keeps the dot (C+F)
        ("ΟΔΟΣ".encode(), "οδοσ"),  # capital sigma folds to σ
        ("οδος".encode(), "οδοσ"),  # final sigma ς folds to σ
        ("Cafe\u0301".encode(), "caf\u00e9"),  # NFD -> NFC composition
        ("Caf\u00e9".encode(), "caf\u00e9"),
        (b"line one\r\nline two\r\n", "line one line two"),  # CRLF
        ("\ufeffHello".encode(), "hello"),  # BOM dropped
        ("\ufeff\ufeffHello".encode(), "\ufeffhello"),  # only ONE BOM dropped
        ("a\u00a0b".encode(), "a b"),  # NBSP: NFKC -> space anyway
        ("a\u0085b".encode(), "a b"),  # NEL is White_Space
        ("a\u2028\u2029b".encode(), "a b"),
        ("  \t a \u3000 b \n".encode(), "a b"),  # ideographic space (NFKC) and strip
        (b"a\x1cb\x1dc\x1ed\x1fe", "a\x1cb\x1dc\x1ed\x1fe"),  # isspace but not White_Space
        ("a\u200bb".encode(), "a\u200bb"),  # ZWSP is not White_Space
        ("\u2460".encode(), "1"),  # circled digit one: NFKC
        ("\u1e9e".encode(), "ss"),  # capital sharp s
        (b"", ""),
        (b"   ", ""),
    ],
)
def test_normalized_text(raw: bytes, expected: str) -> None:
    assert norm_text_v1(raw) == expected
    assert norm_text_sha256(raw) == _sha(expected)


def test_same_digest_for_variants() -> None:
    a = norm_text_sha256("Die Straße ist fein.\n".encode())
    b = norm_text_sha256("\ufeffDIE  STRASSE\r\nIST FEIN.".encode())
    assert a == b
    assert norm_text_sha256("Cafe\u0301".encode()) == norm_text_sha256("CAFÉ".encode())


def test_known_vector() -> None:
    # Fixed expectations: "hello world" after normalization.
    assert norm_text_sha256(b"  Hello\r\n  World  ") == (
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe",  # invalid UTF-8
        b"abc\x80",
        b"\xc0\xaf",  # overlong
        b"\xed\xa0\x80",  # encoded surrogate
        b"\xf4\x90\x80\x80",  # beyond U+10FFFF
        "a\u0378b".encode(),  # unassigned in Unicode 14.0
        "\ufdd0".encode(),  # noncharacter (gc=Cn)
        "\U0001faf7".encode(),  # 🫷 assigned only in Unicode 15.0
        "\U0010fffe".encode(),
    ],
)
def test_no_digest(raw: bytes) -> None:
    assert norm_text_v1(raw) is None
    assert norm_text_sha256(raw) is None


def test_private_use_and_assigned_14_are_fine() -> None:
    assert norm_text_v1("\ue000".encode()) == "\ue000"
    assert norm_text_v1("\U0001faf6".encode()) == "\U0001faf6"  # 🫶 assigned in 14.0


def test_white_space_is_the_unicode_property() -> None:
    assert len(WHITE_SPACE) == 25
    isspace = {cp for cp in range(0x110000) if chr(cp).isspace()}
    # str.isspace differs exactly by the information separators U+001C..U+001F.
    assert isspace - WHITE_SPACE == {0x1C, 0x1D, 0x1E, 0x1F}
    assert WHITE_SPACE - isspace == set()


@pytest.mark.skipif(unicodedata.unidata_version != "14.0.0", reason="table is Unicode 14.0")
def test_unassigned_table_matches_unicodedata() -> None:
    table: set[int] = set()
    for a, b in zip(CN_STARTS, CN_ENDS, strict=True):
        table.update(range(a, b + 1))
    real = {cp for cp in range(0x110000) if unicodedata.category(chr(cp)) == "Cn"}
    assert table == real


def test_ascii_fast_path_agrees_with_general_path() -> None:
    text = "The Quick  Brown\tFox\r\n\x0b\x0cJUMPS over 12 lazy dogs. ~!@#$%^&*()_+"
    general = normtext._WS_RUN.sub(
        " ",
        unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold()),
    ).strip(" ")
    assert normtext.normalize_str(text) == general


def test_only_four_non_ascii_white_space_survive_nfkc() -> None:
    survivors = {
        cp
        for cp in WHITE_SPACE
        if cp > 0x7F
        and ord(unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", chr(cp)).casefold()))
        != 0x20
    }
    assert survivors == {ord(c) for c in normtext._NON_ASCII_WS_AFTER_NFKC}


_TRICKY = [
    "Straße",
    "\ufb01",
    "\u0130",
    "ς",
    "Σ",
    "e\u0301",
    "\r\n",
    "\ufeff",
    "\u00a0",
    "\u0085",
    "\x1c",
    "\u2028",
    "\u3000",
    "\u1680",
    " ",
    "\t",
    "A",
    "z",
    "“",
    "東",
    "\u0378",
    "\U0001faf6",
    "\x00",
]


@given(st.lists(st.sampled_from(_TRICKY) | st.text(max_size=4), max_size=12).map("".join))
@settings(max_examples=300, deadline=None)
def test_fast_path_agrees_with_reference(text: str) -> None:
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        return  # lone surrogates cannot be UTF-8 input
    assert norm_text_v1(data) == normtext.reference_normalize(text)


@given(st.lists(st.binary(max_size=8) | st.sampled_from([t.encode() for t in _TRICKY]), max_size=8))
@settings(max_examples=200, deadline=None)
def test_batch_equals_one_by_one(parts: list[bytes]) -> None:
    inputs = [b"".join(parts[i:]) for i in range(len(parts))]
    batch = normtext.normalize_batch(inputs)
    for index, data in enumerate(inputs):
        single = norm_text_v1(data)
        assert batch.text(index) == (None if single is None else single.encode("utf-8"))
        assert batch.sha256(index) == norm_text_sha256(data)


# ----------------------------------------------------------------------------------------------
# The bulk paths of normalize_batch: which inputs skip decoding, and the batch translation


def _stable_ranges() -> list[tuple[int, int]]:
    """The code points steps 2-5 leave as they are (the definition in _unicode14_stable)."""
    later: set[int] = set()  # the composing (non-first) characters of canonical decompositions
    for cp in range(0x110000):
        mapping = unicodedata.decomposition(chr(cp))
        if mapping and not mapping.startswith("<"):
            later.update(int(part, 16) for part in mapping.split()[1:])
    ranges: list[tuple[int, int]] = []
    for cp in range(0x80, 0x110000):
        ch = chr(cp)
        if (
            0xD800 <= cp <= 0xDFFF
            or 0x1100 <= cp <= 0x11FF
            or 0xAC00 <= cp <= 0xD7A3
            or cp == 0xFEFF
            or cp in WHITE_SPACE
            or cp in later
            or unicodedata.category(ch) == "Cn"
            or unicodedata.combining(ch) != 0
            or unicodedata.normalize("NFKC", ch) != ch
            or ch.casefold() != ch
        ):
            continue
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return ranges


@pytest.mark.skipif(unicodedata.unidata_version != "14.0.0", reason="table is Unicode 14.0")
def test_stable_table_matches_unicodedata() -> None:
    shipped = []
    for item in STABLE_RANGES.split():
        first, _, last = item.partition("-")
        shipped.append((int(first, 16), int(last or first, 16)))
    assert shipped == _stable_ranges()


def test_folding_never_leaves_ascii_capitals() -> None:
    # normalize_batch lowers A-Z of every text, folded or not: a no-op on folded text only
    # if no code point's case folding (after NFKC) decomposes to an ASCII capital.
    folded: set[str] = set()
    for cp in range(0x110000):
        if not 0xD800 <= cp <= 0xDFFF:
            folded.update(unicodedata.normalize("NFKC", chr(cp)).casefold())
    capitals = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert not [ch for ch in folded if capitals & set(unicodedata.normalize("NFKD", ch))]


def test_translation_lowers_and_maps_exactly_ascii_white_space() -> None:
    table = normtext._TRANSLATE
    assert {c for c in range(256) if table[c] == 0x20} == {c for c in WHITE_SPACE if c < 0x80}
    assert all(table[c] == c + 32 for c in range(0x41, 0x5B))
    changed = {c for c in range(256) if table[c] != c}
    assert changed == set(range(0x41, 0x5B)) | {0x09, 0x0A, 0x0B, 0x0C, 0x0D}
    # bytes.split() splits on the same six bytes (not on U+001C..U+001F as str.split does).
    assert {c for c in range(256) if len(bytes([97, c, 97]).split()) == 2} == {
        c for c in WHITE_SPACE if c < 0x80
    }


_STABLE_SAMPLE = ["“", "”", "’", "—", "é", "ü", "ñ", "σ", "东", "京", "か", "😀", "€", "©", "ä"]
_UNSTABLE_SAMPLE = [
    "É", "ß", "ς", "Σ", "\u0301", "\u0345", "ﬁ", "\u00a0", "\u0085", "\u2028", "\u3000",
    "\ufeff", "\u212b", "\u1161", "\u11a8", "한", "…", "\u0378", "\U0001faf7", "ǅ", "İ", "\u3099",
]  # fmt: skip
_ASCII_BITS = ["a", "Z", "Word", "x1", " ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "."]


@given(
    st.lists(
        st.lists(
            st.sampled_from(_STABLE_SAMPLE + _ASCII_BITS) | st.sampled_from(_UNSTABLE_SAMPLE),
            max_size=40,
        ).map("".join),
        min_size=1,
        max_size=6,
    ),
    st.lists(st.booleans(), min_size=6, max_size=6),
)
@settings(max_examples=300, deadline=None)
def test_bulk_paths_agree_with_reference(texts: list[str], boms: list[bool]) -> None:
    # Mostly texts of ASCII and stable code points (bulk path), some with one code point that
    # needs the general path, some with a leading BOM (or two), in one batch.
    inputs = [("\ufeff" if bom else "") + text for text, bom in zip(texts, boms, strict=False)]
    batch = normtext.normalize_batch([text.encode("utf-8") for text in inputs])
    for index, text in enumerate(inputs):
        expected = normtext.reference_normalize(text)
        got = batch.text(index)
        assert (None if got is None else got.decode("utf-8")) == expected
        assert norm_text_v1(text.encode("utf-8")) == expected
