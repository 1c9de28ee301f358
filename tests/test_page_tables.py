"""The creator's page assets that Python can check without a browser.

- ``unicode14.js`` equals a fresh generation by ``provenance._pagetables``, ``asciifold.js`` (the
  WebAssembly fast path for runs of ASCII) a fresh assembly by ``provenance._pagewasm`` (the
  browser tests, tests/test_page_normtext.py, check what it computes);
- the property the page's streaming normalizer rests on (splitting a text before a "simple" code
  point and normalizing the pieces apart gives the normalization of the whole) holds for every
  code point of the tables;
- the vendored hash-wasm file is the one its origin note names, with its license;
- every asset the page loads is in the package (no other origin).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

import pytest

from provenance import _pagetables, _pagewasm
from provenance.normtext import normalize_batch

STATIC = Path(_pagetables.__file__).resolve().parent / "registry" / "static"


def _table(name: str) -> list[str]:
    text = _pagetables.TABLES_PATH.read_text(encoding="utf-8")
    match = re.search(rf"export const {name} = `\n(.*?)\n`;", text, re.DOTALL)
    assert match, name
    return match.group(1).split()


def _code_points(name: str) -> set[int]:
    points: set[int] = set()
    for item in _table(name):
        first, _, last = item.partition("-")
        points.update(range(int(first, 16), int(last or first, 16) + 1))
    return points


def test_committed_tables_equal_a_fresh_generation() -> None:
    assert _pagetables.TABLES_PATH.read_text(encoding="utf-8") == _pagetables.generate()
    assert _pagetables.main(["--check"]) == 0


def test_check_reports_a_changed_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    changed = tmp_path / "unicode14.js"
    changed.write_text(_pagetables.generate().replace("41:61", "41:62"), encoding="utf-8")
    monkeypatch.setattr(_pagetables, "TABLES_PATH", changed)
    assert _pagetables.main(["--check"]) == 1


def test_generator_writes_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "unicode14.js"
    monkeypatch.setattr(_pagetables, "TABLES_PATH", target)
    assert _pagetables.main([]) == 0
    assert target.read_bytes() == _pagetables.generate().encode("utf-8")
    assert _pagetables.main(["--frobnicate"]) == 2


def test_committed_wasm_module_equals_a_fresh_assembly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _pagewasm.KERNEL_PATH.read_text(encoding="utf-8") == _pagewasm.generate()
    assert _pagewasm.main(["--check"]) == 0
    module = _pagewasm.assemble()
    assert module.startswith(b"\0asm\x01\0\0\0")
    changed = tmp_path / "asciifold.js"
    changed.write_text(_pagewasm.generate().replace("MODULE = `\nAGFz", "MODULE = `\nAGFy"))
    monkeypatch.setattr(_pagewasm, "KERNEL_PATH", changed)
    assert _pagewasm.main(["--check"]) == 1
    assert _pagewasm.main([]) == 0
    assert changed.read_text(encoding="utf-8") == _pagewasm.generate()
    assert _pagewasm.main(["--frobnicate"]) == 2


def test_wasm_compaction_table_keeps_the_bytes_not_dropped() -> None:
    """The table `fold` gathers the bytes of a half block with: for each 8-bit mask of bytes to
    drop, the indices of the others in order."""
    table = _pagewasm._table()
    assert len(table) == 256 * 8
    for mask in range(256):
        kept = [k for k in range(8) if not mask >> k & 1]
        assert list(table[mask * 8 : mask * 8 + len(kept)]) == kept


def test_tables_describe_python_unicode() -> None:
    # Spot checks that the generated data means what the page takes it to mean.
    nfkd = dict(item.split(":") for item in _table("NFKD"))
    assert nfkd["fb03"] == "66.66.69"  # LATIN SMALL LIGATURE FFI
    assert nfkd["e9"] == "65.301"
    assert "ac00" not in nfkd  # Hangul syllables decompose algorithmically
    fold = dict(item.split(":") for item in _table("CASEFOLD"))
    assert fold["df"] == "73.73"  # ß -> ss (status F)
    assert fold["130"] == "69.307"  # İ -> i + combining dot above
    assert fold["13f8"] == "13f0"  # Cherokee folds to upper case
    compose = dict(item.split(":") for item in _table("COMPOSE"))
    assert compose["65.301"] == "e9"
    assert "2add.338" not in compose  # a composition exclusion (U+2ADC)
    assert {0x378, 0xFFFE, 0x10FFFF, 0x1FAF7} <= _code_points("UNASSIGNED")  # 0x1FAF7: 15.0
    assert not {0x41, 0xAC00, 0x1FAF6, 0xE000} & _code_points("UNASSIGNED")


def _seconds() -> set[int]:
    """Code points that canonical composition joins to something before them."""
    seconds = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))  # Hangul V and T jamo
    for item in _table("COMPOSE"):
        pair, _ = item.split(":")
        seconds.add(int(pair.split(".")[1], 16))
    return seconds


def test_pieces_split_before_simple_code_points_normalize_apart() -> None:
    """The page normalizes a text in pieces, each starting at a simple code point.

    With P = NFKC . casefold . NFKC, P(A + cB) = P(A) + P(cB) for a simple c when
    (1) c has a normalization boundary before it: a starter that composes with nothing before
        it, whose NFKD starts with such a starter (then NFKC(A + cB) = NFKC(A) + NFKC(cB));
    (2) NFKC(cB) starts with c or a primary composite q of c, and casefold(q) starts with such a
        boundary too (then the second NFKC splits there as well; casefold is per code point).
    And a simple code point is left as it is: its own NFKC and case folding, not White_Space.
    """
    seconds = _seconds()

    def boundary(cp: int) -> bool:
        ch = chr(cp)
        first = unicodedata.normalize("NFKD", ch)[0]
        return (
            unicodedata.combining(ch) == 0
            and cp not in seconds
            and unicodedata.combining(first) == 0
            and ord(first) not in seconds
        )

    simple = _code_points("SIMPLE") | set(range(0x80))
    composites = {int(item.split(":")[1], 16) for item in _table("COMPOSE")}
    hangul = set(range(0xAC00, 0xD7A4))  # LV + T -> LVT, algorithmically
    assert not [cp for cp in simple if not boundary(cp)]
    starts = simple | composites | hangul
    assert not [q for q in starts if not boundary(ord(chr(q).casefold()[0]))]
    white_space = {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029}
    white_space |= set(range(0x2000, 0x200B)) | {0x202F, 0x205F, 0x3000}
    others = sorted(simple - set(range(0x80)))
    for cp in others:
        ch = chr(cp)
        assert cp not in white_space and cp != 0xFEFF, hex(cp)
        assert unicodedata.normalize("NFKC", ch) == ch == ch.casefold(), hex(cp)
    batch = normalize_batch([chr(cp).encode() for cp in others])
    assert [batch.text(k) for k in range(len(others))] == [chr(cp).encode() for cp in others]


def test_vendored_hash_wasm_is_the_npm_file_with_its_license() -> None:
    vendor = STATIC / "vendor" / "hash-wasm"
    origin = (vendor / "ORIGIN.md").read_text(encoding="utf-8")
    assert "hash-wasm` 4.13.0" in origin
    rows = re.findall(r"\| `([^`]+)` \| `[^`]+` \| `([0-9a-f]{64})` \|", origin)
    assert {name for name, _ in rows} == {"sha256.umd.min.js", "LICENSE"}
    for name, digest in rows:
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
    assert (vendor / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert "@license MIT" in (vendor / "sha256.umd.min.js").read_text(encoding="utf-8")[:200]


def test_every_asset_is_local() -> None:
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    references = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert references
    for reference in references:
        if reference.startswith(("data:", "#")):
            continue
        assert "//" not in reference and ":" not in reference, reference
        if reference.startswith("static/"):
            assert (STATIC / reference.removeprefix("static/")).is_file(), reference
    for script in STATIC.glob("*.js"):
        text = script.read_text(encoding="utf-8")
        assert not re.search(r"https?://", text), script.name
        for imported in re.findall(r'^import .*?"(\./[^"]+)";', text, re.MULTILINE):
            assert (STATIC / imported).is_file(), (script.name, imported)
    assert "default-src 'none'" in html and "connect-src 'self'" in html
