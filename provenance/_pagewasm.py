"""Assemble the WebAssembly kernel that the creator's page uses for runs of ASCII in norm-text-v1.

The page's normalizer (``provenance/registry/static/normtext.js``) spends nearly all of its time
on runs of ASCII, where norm-text-v1 only lowers A-Z and turns every run of White_Space
(U+0009..U+000D, U+0020) into one U+0020. This module writes that step as a WebAssembly SIMD
function, 16 bytes at a time, and the page calls it for long runs (``fold``, below); everything
else, and the last bytes of a run, stay with the plain JavaScript path, which the browser tests
hold it equal to.

There is no WebAssembly toolchain to rely on here, so the function is written below as a list of
instructions and assembled by a few lines of Python (the binary format of the WebAssembly Core
Specification 2.0, sections 5.1-5.5, with the fixed-width SIMD instructions). The module is
written into ``asciifold.js`` as base64 (a JavaScript module, so the page loads it like its other
assets); ``tests/test_page_tables.py`` checks the committed file against a fresh assembly.

``fold(in, n, out, prevWs) -> consumed``: reads the 16-byte blocks of the ``n`` bytes at ``in``,
and stops at the first block holding a byte above 0x7F or a NUL (the caller's path takes it);
for each block before it writes its bytes to ``out`` with A-Z lowered, White_Space as U+0020,
and White_Space that follows White_Space dropped (``prevWs``: whether the text before ``in``
ends in White_Space). Returns how many bytes it consumed (a multiple of 16); the exported globals
``written`` and ``ws`` say how many bytes it wrote and whether its output ends in White_Space.
It may write up to 16 bytes past the end of its output.

Run ``python -m provenance._pagewasm`` to rewrite the file (``--check`` only compares).
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["IN", "KERNEL_PATH", "MAX_BLOCK", "OUT", "assemble", "generate", "main"]

KERNEL_PATH = Path(__file__).resolve().parent / "registry" / "static" / "asciifold.js"

# The module's memory: the compaction table (below), then an input and an output area.
TABLE = 0
IN = 4096
MAX_BLOCK = 1 << 20  # the largest input the caller passes at once
OUT = IN + MAX_BLOCK
PAGES = -(-(OUT + MAX_BLOCK + 64) // 65536)

# Value types and block types.
I32 = 0x7F
V128 = 0x7B
EMPTY_BLOCK = 0x40

# Opcodes (Core Specification 2.0, 5.4): one byte, or the SIMD prefix 0xFD and a u32.
CORE = {
    "block": 0x02,
    "loop": 0x03,
    "if": 0x04,
    "else": 0x05,
    "end": 0x0B,
    "br": 0x0C,
    "br_if": 0x0D,
    "local.get": 0x20,
    "local.set": 0x21,
    "local.tee": 0x22,
    "global.get": 0x23,
    "global.set": 0x24,
    "i32.const": 0x41,
    "i32.eqz": 0x45,
    "i32.gt_u": 0x4B,
    "i32.popcnt": 0x69,
    "i32.add": 0x6A,
    "i32.sub": 0x6B,
    "i32.and": 0x71,
    "i32.or": 0x72,
    "i32.shl": 0x74,
    "i32.shr_u": 0x76,
}
SIMD = {
    "v128.load": 0x00,
    "v128.store": 0x0B,
    "v128.const": 0x0C,
    "i8x16.shuffle": 0x0D,
    "i8x16.swizzle": 0x0E,
    "i8x16.splat": 0x0F,
    "i8x16.extract_lane_u": 0x16,
    "i8x16.eq": 0x23,
    "i8x16.lt_u": 0x26,
    "v128.and": 0x4E,
    "v128.or": 0x50,
    "v128.bitselect": 0x52,
    "v128.any_true": 0x53,
    "v128.load64_zero": 0x5D,
    "i8x16.bitmask": 0x64,
    "i8x16.add": 0x6E,
    "i8x16.sub": 0x71,
}
MEMORY_OPS = {"v128.load", "v128.store", "v128.load64_zero"}

Instruction = tuple[str | int | bytes, ...]


def _uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _sleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40):
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _vector(items: Sequence[bytes]) -> bytes:
    return _uleb(len(items)) + b"".join(items)


def _name(text: str) -> bytes:
    return _vector([bytes([b]) for b in text.encode()])


def _section(section_id: int, items: Sequence[bytes]) -> bytes:
    body = _vector(items)
    return bytes([section_id]) + _uleb(len(body)) + body


def _encode(code: Iterable[Instruction]) -> bytes:
    out = bytearray()
    for op, *args in code:
        assert isinstance(op, str)
        if op in SIMD:
            out += b"\xfd" + _uleb(SIMD[op])
        else:
            out.append(CORE[op])
        if op in MEMORY_OPS:
            align, offset = 0, args[0] if args else 0  # alignment 1: the caller's offsets
            assert isinstance(offset, int)
            out += _uleb(align) + _uleb(offset)
        elif op in ("v128.const", "i8x16.shuffle"):
            (lanes,) = args
            assert isinstance(lanes, bytes) and len(lanes) == 16
            out += lanes
        elif op == "i32.const":
            (value,) = args
            assert isinstance(value, int)
            out += _sleb(value)
        elif op in ("block", "loop", "if"):
            out.append(EMPTY_BLOCK)
        else:
            for arg in args:
                assert isinstance(arg, int)
                out += _uleb(arg)
    return bytes(out)


def _splat(byte: int) -> Instruction:
    return ("v128.const", bytes([byte]) * 16)


# fold's parameters and locals, by index.
P_IN, P_N, P_OUT, P_PREV_WS = 0, 1, 2, 3
L_I, L_O, L_MASK = 4, 5, 6
L_V, L_WS, L_PREV, L_RES = 7, 8, 9, 10
G_WRITTEN, G_WS = 0, 1

# Lane 0 the previous block's lane 15, lanes 1..15 this block's lanes 0..14: "the byte before".
BEFORE = bytes([15, *range(16, 31)])


def _half(shift: int, plus: int) -> list[Instruction]:
    """Write the kept bytes of one 8-byte half of the block (its drop mask: bits `shift` on of
    the mask), gathered with i8x16.swizzle by the table, and move `o` past them."""
    index: list[Instruction] = [("local.get", L_MASK)]
    if shift:
        index += [("i32.const", shift), ("i32.shr_u",)]
    index += [("i32.const", 0xFF), ("i32.and",)]
    gather: list[Instruction] = [
        *index,
        ("i32.const", 3),
        ("i32.shl",),
        ("v128.load64_zero", TABLE),
    ]
    if plus:
        gather += [_splat(plus), ("i8x16.add",)]
    return [
        ("local.get", L_O),
        ("local.get", L_RES),
        *gather,
        ("i8x16.swizzle",),
        ("v128.store", 0),
        ("local.get", L_O),
        ("i32.const", 8),
        *index,
        ("i32.popcnt",),
        ("i32.sub",),
        ("i32.add",),
        ("local.set", L_O),
    ]


def _fold() -> list[Instruction]:
    return [
        # prev = every lane 0xFF if the text before ends in White_Space, else 0
        ("i32.const", 0),
        ("local.get", P_PREV_WS),
        ("i32.sub",),
        ("i8x16.splat",),
        ("local.set", L_PREV),
        ("local.get", P_OUT),
        ("local.set", L_O),
        ("block",),
        ("loop",),
        # while i + 16 <= n
        ("local.get", L_I),
        ("i32.const", 16),
        ("i32.add",),
        ("local.get", P_N),
        ("i32.gt_u",),
        ("br_if", 1),
        ("local.get", P_IN),
        ("local.get", L_I),
        ("i32.add",),
        ("v128.load", 0),
        ("local.tee", L_V),
        # stop at a block with a byte above 0x7F or a NUL
        ("i8x16.bitmask",),
        ("local.get", L_V),
        _splat(0),
        ("i8x16.eq",),
        ("v128.any_true",),
        ("i32.or",),
        ("br_if", 1),
        # ws = (v == 0x20) | (v - 0x09 < 5, unsigned)
        ("local.get", L_V),
        _splat(0x20),
        ("i8x16.eq",),
        ("local.get", L_V),
        _splat(0x09),
        ("i8x16.sub",),
        _splat(5),
        ("i8x16.lt_u",),
        ("v128.or",),
        ("local.set", L_WS),
        # res = White_Space ? 0x20 : v + (v - 0x41 < 26, unsigned) & 0x20
        _splat(0x20),
        ("local.get", L_V),
        ("local.get", L_V),
        _splat(0x41),
        ("i8x16.sub",),
        _splat(26),
        ("i8x16.lt_u",),
        _splat(0x20),
        ("v128.and",),
        ("i8x16.add",),
        ("local.get", L_WS),
        ("v128.bitselect",),
        ("local.set", L_RES),
        # mask: the White_Space bytes whose byte before is White_Space (dropped)
        ("local.get", L_PREV),
        ("local.get", L_WS),
        ("i8x16.shuffle", BEFORE),
        ("local.get", L_WS),
        ("v128.and",),
        ("i8x16.bitmask",),
        ("local.set", L_MASK),
        ("local.get", L_WS),
        ("local.set", L_PREV),
        ("local.get", L_MASK),
        ("i32.eqz",),
        ("if",),
        ("local.get", L_O),
        ("local.get", L_RES),
        ("v128.store", 0),
        ("local.get", L_O),
        ("i32.const", 16),
        ("i32.add",),
        ("local.set", L_O),
        ("else",),
        *_half(0, 0),
        *_half(8, 8),
        ("end",),
        ("local.get", L_I),
        ("i32.const", 16),
        ("i32.add",),
        ("local.set", L_I),
        ("br", 0),
        ("end",),
        ("end",),
        ("local.get", L_O),
        ("local.get", P_OUT),
        ("i32.sub",),
        ("global.set", G_WRITTEN),
        ("local.get", L_PREV),
        ("i8x16.extract_lane_u", 15),
        ("i32.const", 1),
        ("i32.and",),
        ("global.set", G_WS),
        ("local.get", L_I),
        ("end",),
    ]


def _table() -> bytes:
    """For each 8-bit mask of bytes to drop, the indices of the bytes kept, in order, padded to 8
    with 0 (the bytes gathered past the kept ones are overwritten or never read)."""
    out = bytearray()
    for mask in range(256):
        kept = [k for k in range(8) if not mask >> k & 1]
        out += bytes(kept + [0] * (8 - len(kept)))
    return bytes(out)


def assemble() -> bytes:
    """The WebAssembly module (binary format) holding ``fold``, its memory and the table."""
    func_type = b"\x60" + _vector([bytes([I32])] * 4) + _vector([bytes([I32])])
    locals_ = _vector([_uleb(3) + bytes([I32]), _uleb(4) + bytes([V128])])
    body = locals_ + _encode(_fold())
    mutable_i32 = bytes([I32, 0x01]) + _encode([("i32.const", 0), ("end",)])
    table = _vector([bytes([b]) for b in _table()])
    data = b"\x00" + _encode([("i32.const", TABLE), ("end",)]) + table
    return b"".join(
        [
            b"\x00asm\x01\x00\x00\x00",
            _section(1, [func_type]),
            _section(3, [_uleb(0)]),
            _section(5, [b"\x01" + _uleb(PAGES) + _uleb(PAGES)]),
            _section(6, [mutable_i32, mutable_i32]),
            _section(
                7,
                [
                    _name("memory") + b"\x02" + _uleb(0),
                    _name("fold") + b"\x00" + _uleb(0),
                    _name("written") + b"\x03" + _uleb(G_WRITTEN),
                    _name("ws") + b"\x03" + _uleb(G_WS),
                ],
            ),
            _section(10, [_uleb(len(body)) + body]),
            _section(11, [data]),
        ]
    )


def generate() -> str:
    """The text of ``asciifold.js``: the module in base64 and where its areas are."""
    module = base64.b64encode(assemble()).decode("ascii")
    lines = [module[k : k + 96] for k in range(0, len(module), 96)]
    return "\n".join(
        [
            "// Generated by `python -m provenance._pagewasm` (provenance/_pagewasm.py holds the",
            "// source and says what `fold` does); do not edit. The WebAssembly module of the",
            "// page's fast path for runs of ASCII in norm-text-v1 (normtext.js), in base64.",
            "",
            f"export const IN = {IN};",
            f"export const OUT = {OUT};",
            f"export const MAX_BLOCK = {MAX_BLOCK};",
            "export const MODULE = `",
            *lines,
            "`;",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Write ``asciifold.js`` (or with ``--check`` compare it). Returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--check"]):
        print("usage: python -m provenance._pagewasm [--check]", file=sys.stderr)
        return 2
    text = generate()
    if args == ["--check"]:
        current = KERNEL_PATH.read_text(encoding="utf-8") if KERNEL_PATH.exists() else ""
        if current != text:
            print(f"error: {KERNEL_PATH.name}: differs from a fresh assembly", file=sys.stderr)
            return 1
        return 0
    KERNEL_PATH.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
