"""Data for the manifest tests: a corpus that takes every path of building and hashing."""

from __future__ import annotations

import hashlib
from pathlib import Path


def mixed_corpus(root: Path) -> dict[str, bytes]:
    """Small files in folders, files over the (patched) large threshold, empty files,
    duplicate contents under different names, sizes around the (patched) buffer size."""
    files: dict[str, bytes] = {}
    for i in range(150):
        size = (i * 977) % 6000
        files[f"folder-{i % 7}/file-{i:03d}.txt"] = hashlib.shake_256(b"%d" % i).digest(size)
    for i in range(4):
        files[f"big/blob-{i}.bin"] = hashlib.shake_256(b"big%d" % i).digest(60_000 + i * 9_000)
    for size in (4095, 4096, 4097, 8192, 30_000):
        files[f"edges/size-{size}"] = bytes(size)
    files["empty-1"] = b""
    files["folder-3/empty-2"] = b""
    files["dup/a.txt"] = files["dup/b.txt"] = b"same content\n"
    files["caf\u00e9/\u65e5\u672c.txt"] = b"unicode"
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files
