"""Generate the Unicode 14.0 tables that the creator's page uses for ``norm-text-v1``.

The page (``provenance/registry/static/``) computes ``norm-text-v1`` in JavaScript. The browser's
own ``String.prototype.normalize`` follows whatever Unicode version the browser ships (newer or
older than 14.0), and its case mapping is not Python's full case folding. So the page does not use
either: it normalizes with its own code from tables written here from Python's ``unicodedata``,
the same data :mod:`provenance.normtext` uses:

- ``UNASSIGNED``: the General_Category Cn ranges of Unicode 14.0 (``provenance._unicode14``);
- ``SIMPLE``: the code points norm-text-v1 leaves as they are (``provenance._unicode14_stable``)
  and the Hangul syllables; the page copies runs of ASCII and these without normalizing them
  and splits the text before them;
- ``NFKD``: the full compatibility decomposition of every assigned code point that has one
  (Hangul syllables excepted: they decompose algorithmically);
- ``CCC``: the non-zero Canonical_Combining_Class values;
- ``COMPOSE``: the primary composites (pairs that canonical composition joins; Hangul excepted);
- ``CASEFOLD``: ``str.casefold`` of every assigned code point it changes (CaseFolding.txt C+F).

Only code points assigned in Unicode 14.0 are listed: the page refuses text with any other one
before normalizing, as Python does. By the Unicode stability policies for normalization and case
folding, these values are the same in any later ``unicodedata``, so this module writes the same
file on Python 3.11 (Unicode 14.0) and newer; ``tests/test_page_tables.py`` checks the committed
file against a fresh generation.

Run ``python -m provenance._pagetables`` to rewrite the file (``--check`` only compares).
"""

from __future__ import annotations

import itertools
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

from provenance._unicode14 import CN_ENDS, CN_STARTS, UNICODE_VERSION
from provenance._unicode14_stable import STABLE_RANGES

__all__ = ["TABLES_PATH", "generate", "main"]

TABLES_PATH = Path(__file__).resolve().parent / "registry" / "static" / "unicode14.js"

_HANGUL_FIRST, _HANGUL_LAST = 0xAC00, 0xD7A3
_SURROGATES = range(0xD800, 0xE000)


def _assigned() -> Iterator[int]:
    """Every code point assigned in Unicode 14.0 that UTF-8 can encode, in order."""
    start = 0
    for first, last in zip(CN_STARTS, CN_ENDS, strict=True):
        for cp in range(start, first):
            if cp not in _SURROGATES:
                yield cp
        start = last + 1
    yield from range(start, 0x110000)


def _hex(cps: Iterable[int]) -> str:
    return ".".join(f"{cp:x}" for cp in cps)


def _ranges(values: dict[int, int]) -> list[str]:
    """``first-last:value`` (or ``cp:value``) for runs of consecutive code points with one value."""
    items: list[str] = []
    run: list[int] = []
    for cp in sorted(values):
        if run and cp == run[-1] + 1 and values[cp] == values[run[0]]:
            run.append(cp)
            continue
        if run:
            items.append(_range_item(run, values[run[0]]))
        run = [cp]
    if run:
        items.append(_range_item(run, values[run[0]]))
    return items


def _range_item(run: list[int], value: int) -> str:
    span = f"{run[0]:x}" if len(run) == 1 else f"{run[0]:x}-{run[-1]:x}"
    return f"{span}:{value:x}"


def _simple() -> list[str]:
    """``STABLE_RANGES`` plus the Hangul syllables, in order.

    A Hangul syllable is its own NFKC and case folding, a starter that composes with nothing
    before it; only a following trailing jamo (not simple, so it takes the general path, which
    starts at the syllable) composes with it. The Python fast path leaves syllables out only
    because it handles whole texts without any general path.
    """
    spans = [(_HANGUL_FIRST, _HANGUL_LAST)]
    for item in STABLE_RANGES.split():
        start, _, end = item.partition("-")
        spans.append((int(start, 16), int(end or start, 16)))
    spans.sort()
    for (_, last), (first, _) in itertools.pairwise(spans):
        if first <= last:
            raise AssertionError("STABLE_RANGES overlaps the Hangul syllables")
    return [f"{a:x}" if a == b else f"{a:x}-{b:x}" for a, b in spans]


def _tables() -> dict[str, list[str]]:
    nfkd: list[str] = []
    ccc: dict[int, int] = {}
    compose: list[str] = []
    casefold: list[str] = []
    for cp in _assigned():
        ch = chr(cp)
        if not _HANGUL_FIRST <= cp <= _HANGUL_LAST:
            decomposed = unicodedata.normalize("NFKD", ch)
            if decomposed != ch:
                nfkd.append(f"{cp:x}:{_hex(map(ord, decomposed))}")
            mapping = unicodedata.decomposition(ch)
            if mapping and not mapping.startswith("<"):
                parts = [int(part, 16) for part in mapping.split()]
                # A primary composite: canonical composition gives it back from its two parts
                # (composition exclusions and singletons do not).
                if (
                    len(parts) == 2
                    and unicodedata.normalize("NFC", chr(parts[0]) + chr(parts[1])) == ch
                ):
                    compose.append(f"{_hex(parts)}:{cp:x}")
        combining = unicodedata.combining(ch)
        if combining:
            ccc[cp] = combining
        folded = ch.casefold()
        if folded != ch:
            casefold.append(f"{cp:x}:{_hex(map(ord, folded))}")
    unassigned = [
        f"{first:x}" if first == last else f"{first:x}-{last:x}"
        for first, last in zip(CN_STARTS, CN_ENDS, strict=True)
    ]
    return {
        "UNASSIGNED": unassigned,
        "SIMPLE": _simple(),
        "NFKD": nfkd,
        "CCC": _ranges(ccc),
        "COMPOSE": compose,
        "CASEFOLD": casefold,
    }


def _wrap(items: list[str], width: int = 99) -> str:
    lines: list[str] = []
    line = ""
    for item in items:
        if line and len(line) + 1 + len(item) > width:
            lines.append(line)
            line = item
        else:
            line = f"{line} {item}" if line else item
    if line:
        lines.append(line)
    return "\n".join(lines)


_HEADER = """\
// Unicode {version} tables for norm-text-v1 (docs/design.md §2.9) in the creator's page.
// GENERATED by `python -m provenance._pagetables` from Python's unicodedata: do not edit.
// tests/test_page_tables.py checks that this file equals a fresh generation.
//
// Each table is a whitespace-separated list, every number lowercase hex:
//   UNASSIGNED, SIMPLE  ranges "first-last" or single code points
//   NFKD                "cp:d1.d2..."  full compatibility decomposition (Hangul syllables excepted)
//   CCC                 "first-last:class" (or "cp:class"), non-zero combining classes
//   COMPOSE             "first.second:composite"  primary composites (Hangul excepted)
//   CASEFOLD            "cp:f1.f2..."  full case folding, CaseFolding.txt statuses C and F
"""


def generate() -> str:
    """Return the text of ``unicode14.js`` for the running Python's ``unicodedata``.

    Raises:
        RuntimeError: ``unicodedata`` is older than Unicode 14.0 (it cannot describe it).
    """
    version = tuple(int(part) for part in unicodedata.unidata_version.split(".")[:2])
    if version < (14, 0):
        raise RuntimeError(
            f"the tables need Unicode >= 14.0, this Python has {unicodedata.unidata_version}"
        )
    parts = [
        _HEADER.format(version=UNICODE_VERSION),
        f'export const UNICODE_VERSION = "{UNICODE_VERSION}";\n',
    ]
    for name, items in _tables().items():
        parts.append(f"\n// {len(items)} items\nexport const {name} = `\n{_wrap(items)}\n`;\n")
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) ``unicode14.js``; return the exit code."""
    args = sys.argv[1:] if argv is None else argv
    text = generate()
    if args == ["--check"]:
        same = TABLES_PATH.read_text(encoding="utf-8") == text
        print(f"{TABLES_PATH}: {'up to date' if same else 'DIFFERS from a fresh generation'}")
        return 0 if same else 1
    if args:
        print("usage: python -m provenance._pagetables [--check]", file=sys.stderr)
        return 2
    from provenance._files import atomic_write

    atomic_write(TABLES_PATH, text.encode("utf-8"))
    print(f"wrote {TABLES_PATH} ({len(text.encode('utf-8'))} bytes)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
