"""The sidecar's format: its header and sections, written and parsed, and its invariants.

Pure: bytes (or a mapping) in, header and numpy arrays out; nothing here opens a file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from provenance import _json
from provenance._hex import is_sha256_hex
from provenance.errors import FormatError
from provenance.fingerprints import IMAGE_METHOD, NGRAM, TEXT_METHOD, WINDOW
from provenance.normtext import NORM_TEXT_NAME

MAGIC = b"PVFPIDX1"
FORMAT = "provenance-fingerprints"
VERSION = 1
MAX_HEADER_BYTES = 64 * 1024
MAX_ENTRIES = 2**32 - 1

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]

SECTIONS: tuple[tuple[str, str], ...] = (
    ("lineOffsets", "<u8"),
    ("shaPrefix", "<u8"),
    ("textShaPrefix", "<u8"),
    ("textShaEntry", "<u4"),
    ("textFpCount", "<u4"),
    ("fpHash", "<u8"),
    ("fpEntry", "<u4"),
    ("imageEntry", "<u4"),
    ("imageHash", "<u8"),
)
"""Each section's name and dtype, in file order."""


def parameters() -> dict[str, Any]:
    """Return the fingerprint methods and parameters a header records (and must match)."""
    return {
        "text": {
            "method": TEXT_METHOD,
            "normalization": NORM_TEXT_NAME,
            "ngram": NGRAM,
            "window": WINDOW,
        },
        "image": {"method": IMAGE_METHOD},
    }


def corrupt(path: object, what: str) -> FormatError:
    """Return the error for a sidecar at ``path`` that breaks the format in ``what`` way."""
    return FormatError(f"{path}: corrupt fingerprint index: {what}")


def is_sorted(values: npt.NDArray[Any]) -> bool:
    """Return True if ``values`` never decrease."""
    return bool(len(values) < 2 or np.all(values[1:] >= values[:-1]))


def encode(manifest_digest: str, count: int, arrays: dict[str, Any]) -> Iterator[bytes]:
    """Yield the file's pieces in order (magic, header length, header, padded sections) for a
    manifest with SHA-256 ``manifest_digest`` and ``count`` entries, one section at a time."""
    header = {
        "format": FORMAT,
        "version": VERSION,
        "manifest": {"sha256": manifest_digest, "entries": count},
        **parameters(),
        "sections": [
            {"name": name, "dtype": dtype, "count": int(len(arrays[name]))}
            for name, dtype in SECTIONS
        ],
    }
    header_bytes = _json.canonical(header)
    header_bytes += b" " * (-len(header_bytes) % 8)
    yield MAGIC
    yield len(header_bytes).to_bytes(8, "little")
    yield header_bytes
    for name, dtype in SECTIONS:
        data = np.ascontiguousarray(arrays[name], dtype=np.dtype(dtype)).tobytes()
        yield data + b"\0" * (-len(data) % 8)


def parse(path: object, mapped: Any, size: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse a sidecar's ``size`` bytes (``mapped``: bytes or a mapping; the arrays returned
    are views of it) as the header and each section's array, by name.

    Raises:
        FormatError: bad magic, header, parameters or section list, or a size that is not
            exactly the sections'.
    """
    if mapped[:8] != MAGIC:
        raise corrupt(path, "not a provenance fingerprint index (bad magic)")
    header_length = int.from_bytes(mapped[8:16], "little")
    if header_length > MAX_HEADER_BYTES or header_length % 8 or 16 + header_length > size:
        raise corrupt(path, f"bad header length {header_length}")
    raw = bytes(mapped[16 : 16 + header_length]).rstrip(b" ")
    try:
        header = _json.loads_object(raw, what=f"{path}: header")
    except FormatError as exc:
        raise corrupt(path, str(exc)) from None
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise corrupt(path, f"not format {FORMAT} version {VERSION}")
    manifest = header.get("manifest")
    if (
        not isinstance(manifest, dict)
        or not is_sha256_hex(manifest.get("sha256"))
        or not isinstance(manifest.get("entries"), int)
        or isinstance(manifest.get("entries"), bool)
        or not 0 <= manifest["entries"] <= MAX_ENTRIES
    ):
        raise corrupt(path, "header lacks a valid 'manifest' {sha256, entries}")
    for key, value in parameters().items():
        if header.get(key) != value:
            raise corrupt(
                path,
                f"built with other {key} fingerprint parameters ({header.get(key)!r}); rebuild it"
                " with this version of provenance",
            )
    sections = header.get("sections")
    names = (
        [(s.get("name"), s.get("dtype")) for s in sections if isinstance(s, dict)]
        if (isinstance(sections, list))
        else []
    )
    if names != list(SECTIONS):
        raise corrupt(path, "unexpected sections")
    arrays: dict[str, Any] = {}
    position = 16 + header_length
    assert isinstance(sections, list)
    for section in sections:
        count = section.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise corrupt(path, f"section {section['name']}: bad count")
        dtype = np.dtype(section["dtype"])
        length = count * dtype.itemsize
        padded = length + (-length % 8)
        if position + padded > size:
            raise corrupt(path, f"section {section['name']} runs past the end of the file")
        arrays[section["name"]] = np.frombuffer(mapped, dtype=dtype, count=count, offset=position)
        position += padded
    if position != size:
        raise corrupt(path, f"{size - position} unexpected bytes after the last section")
    return header, arrays


def check_sections(path: object, header: dict[str, Any], a: dict[str, npt.NDArray[Any]]) -> None:
    """Check the invariants of the sections a lookup by digest relies on (lengths, order,
    entry numbers in range); the fingerprint sections are checked on first use
    (:func:`check_prints`), being the bulk of the file.

    Raises:
        FormatError: one does not hold.
    """
    count = header["manifest"]["entries"]
    offsets = a["lineOffsets"]
    expected = {
        "lineOffsets": count + 1,
        "shaPrefix": count,
        "textShaEntry": len(a["textShaPrefix"]),
        "textFpCount": count,
        "fpEntry": len(a["fpHash"]),
        "imageHash": len(a["imageEntry"]),
    }
    for name, want in expected.items():
        if len(a[name]) != want:
            raise corrupt(path, f"section {name} has {len(a[name])} values, expected {want}")
    if offsets[0] != 0 or (count and not np.all(offsets[1:] > offsets[:-1])):
        raise corrupt(path, "line offsets are not increasing from 0")
    for name in ("shaPrefix", "textShaPrefix"):
        if not is_sorted(a[name]):
            raise corrupt(path, f"section {name} is not sorted")
    for name in ("textShaEntry", "imageEntry"):
        if len(a[name]) and int(a[name].max()) >= count:
            raise corrupt(path, f"section {name} names an entry beyond {count}")
    if len(a["imageEntry"]) > 1 and not np.all(a["imageEntry"][1:] > a["imageEntry"][:-1]):
        raise corrupt(path, "section imageEntry is not strictly increasing")


def check_prints(path: object, a: dict[str, npt.NDArray[Any]], count: int) -> None:
    """Check the fingerprint sections of a sidecar for ``count`` entries.

    Raises:
        FormatError: the inverted index is unsorted, names an entry beyond ``count``, or
            disagrees with ``textFpCount``.
    """
    fp_hash, fp_entry = a["fpHash"], a["fpEntry"]
    if not is_sorted(fp_hash):
        raise corrupt(path, "section fpHash is not sorted")
    if len(fp_entry) and int(fp_entry.max()) >= count:
        raise corrupt(path, f"section fpEntry names an entry beyond {count}")
    counts = np.bincount(fp_entry, minlength=count) if count else np.zeros(0)
    if not np.array_equal(counts, a["textFpCount"]):
        raise corrupt(path, "textFpCount does not match the fingerprints")
