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
VERSION = 2
"""The version written. Version 1 (every entry number 4 bytes, line offsets 8 bytes, a
per-entry fingerprint count) is still read."""
MAX_HEADER_BYTES = 64 * 1024
MAX_ENTRIES = 2**32 - 1

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]

ENTRY = "entry"
"""The dtype named for sections of entry numbers in version 2: unsigned little-endian integers
of ``entryBytes`` bytes each (1 to 4, the fewest that number every entry)."""

SECTIONS_V1: tuple[tuple[str, str], ...] = (
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
LINE = "line"
"""The dtype named for ``lineLengths`` in version 2: ``lineBytes`` bytes each (2, or 4 when a
line is 64 KiB or longer)."""

SECTIONS: tuple[tuple[str, str], ...] = (
    ("lineLengths", LINE),
    ("shaPrefix", "<u4"),
    ("textShaPrefix", "<u4"),
    ("textShaEntry", ENTRY),
    ("fpHash", "<u8"),
    ("fpEntry", ENTRY),
    ("imageEntry", ENTRY),
    ("imageHash", "<u8"),
)
"""Each section's name and dtype, in file order (version 2). Each entry's line length replaces
version 1's offsets (a line is far below 4 GiB); the digests' prefixes are their first 4 bytes,
not 8 (a lookup reads every candidate's line and compares the whole digest, so a shorter prefix
only adds a rare candidate, never loses one); entry numbers take the fewest bytes that number
every entry; and each entry's fingerprint count, which the inverted index already says, is
counted when the fingerprints are first used."""


def entry_bytes(count: int) -> int:
    """The bytes an entry number takes in a sidecar of ``count`` entries (1 to 4)."""
    return max(1, ((max(count, 1) - 1).bit_length() + 7) // 8)


def pack_entries(values: npt.NDArray[Any], width: int) -> bytes:
    """Entry numbers as ``width``-byte little-endian integers."""
    raw = np.ascontiguousarray(values, dtype="<u4").view(np.uint8).reshape(-1, 4)
    return raw[:, :width].tobytes()


def unpack_entries(raw: npt.NDArray[np.uint8], width: int) -> U32:
    """The entry numbers of a section of ``width``-byte integers (a view when 4 bytes)."""
    if width == 4:
        return raw.view("<u4").astype(np.uint32, copy=False)
    wide = np.zeros((len(raw) // width, 4), dtype=np.uint8)
    wide[:, :width] = raw.reshape(-1, width)
    return wide.view("<u4").reshape(-1).astype(np.uint32, copy=False)


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


def encode(
    manifest_digest: str, count: int, arrays: dict[str, Any], *, version: int = VERSION
) -> Iterator[bytes]:
    """Yield the file's pieces in order (magic, header length, header, padded sections) for a
    manifest with SHA-256 ``manifest_digest`` and ``count`` entries, one section at a time.

    ``arrays`` holds the sections as a reader sees them (``lineOffsets``, ``shaPrefix``,
    ``textShaPrefix``, ``textShaEntry``, ``fpHash``, ``fpEntry``, ``imageEntry``,
    ``imageHash``; and ``textFpCount`` for ``version`` 1, which only tests still write).

    Raises:
        ValueError: a manifest line of 4 GiB or more (version 2 cannot record it).
    """
    header: dict[str, Any] = {
        "format": FORMAT,
        "version": version,
        "manifest": {"sha256": manifest_digest, "entries": count},
        **parameters(),
    }
    sections: tuple[tuple[str, str], ...]
    values = dict(arrays)
    if version == 1:
        sections, width = SECTIONS_V1, 4
    else:
        sections, width = SECTIONS, entry_bytes(count)
        lengths = np.diff(np.asarray(arrays["lineOffsets"], dtype=np.uint64))
        longest = int(lengths.max()) if len(lengths) else 0
        if longest >= 2**32:
            raise ValueError("a manifest line of 4 GiB or more")
        header["entryBytes"] = width
        header["lineBytes"] = line_width = 2 if longest < 2**16 else 4
        values["lineLengths"] = lengths
        for name in ("shaPrefix", "textShaPrefix"):
            values[name] = np.asarray(arrays[name], dtype=np.uint64) >> np.uint64(32)
    header["sections"] = [
        {"name": name, "dtype": dtype, "count": int(len(values[name]))}
        for name, dtype in sections
    ]
    header_bytes = _json.canonical(header)
    header_bytes += b" " * (-len(header_bytes) % 8)
    yield MAGIC
    yield len(header_bytes).to_bytes(8, "little")
    yield header_bytes
    for name, dtype in sections:
        if dtype == ENTRY:
            data = pack_entries(values[name], width)
        elif dtype == LINE:
            data = pack_entries(values[name], line_width)
        else:
            data = np.ascontiguousarray(values[name], dtype=np.dtype(dtype)).tobytes()
        yield data + b"\0" * (-len(data) % 8)


def parse(path: object, mapped: Any, size: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse a sidecar's ``size`` bytes (``mapped``: bytes or a mapping) as the header and
    each section's array, by name, as version 1 named them: ``lineOffsets`` (from version 2's
    ``lineLengths``) and entry numbers as uint32. Version 2's ``fpEntry`` is left packed, as
    ``fpEntryPacked``, until :func:`check_prints` (the fingerprint sections are the bulk of
    the file, used only by near-duplicate lookups); the other arrays are views of ``mapped``
    where their encoding allows.

    Raises:
        FormatError: bad magic, header, version, parameters or section list, or a size that
            is not exactly the sections'.
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
    version = header.get("version")
    if header.get("format") != FORMAT or version not in (1, 2) or isinstance(version, bool):
        raise corrupt(path, f"not format {FORMAT} version 1 or 2 (version {version!r})")
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
    expected_sections = SECTIONS_V1 if version == 1 else SECTIONS
    width = line_width = 4
    if version == 2:
        width = header.get("entryBytes")  # type: ignore[assignment]
        if width != entry_bytes(manifest["entries"]) or isinstance(width, bool):
            raise corrupt(path, f"entryBytes {width!r} does not fit {manifest['entries']} entries")
        line_width = header.get("lineBytes")  # type: ignore[assignment]
        if line_width not in (2, 4) or isinstance(line_width, bool):
            raise corrupt(path, f"lineBytes {line_width!r} is not 2 or 4")
    sections = header.get("sections")
    names = (
        [(s.get("name"), s.get("dtype")) for s in sections if isinstance(s, dict)]
        if (isinstance(sections, list))
        else []
    )
    if names != list(expected_sections):
        raise corrupt(path, "unexpected sections")
    arrays: dict[str, Any] = {}
    position = 16 + header_length
    assert isinstance(sections, list)
    for section in sections:
        count = section.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise corrupt(path, f"section {section['name']}: bad count")
        packed = section["dtype"] in (ENTRY, LINE)
        item = line_width if section["dtype"] == LINE else width
        dtype = np.dtype(np.uint8 if packed else section["dtype"])
        length = count * (item if packed else dtype.itemsize)
        padded = length + (-length % 8)
        if position + padded > size:
            raise corrupt(path, f"section {section['name']} runs past the end of the file")
        array = np.frombuffer(
            mapped, dtype=dtype, count=length // dtype.itemsize, offset=position
        )
        if section["name"] == "fpEntry" and packed:
            arrays["fpEntryPacked"] = array
        elif packed:
            arrays[section["name"]] = unpack_entries(array, item)
        else:
            arrays[section["name"]] = array
        position += padded
    if position != size:
        raise corrupt(path, f"{size - position} unexpected bytes after the last section")
    if version == 2:
        header["fpEntries"] = sections[list(dict(SECTIONS)).index("fpEntry")]["count"]
        header["entryBytes"] = width
        offsets = np.zeros(len(arrays["lineLengths"]) + 1, dtype=np.uint64)
        np.cumsum(arrays.pop("lineLengths"), out=offsets[1:])
        arrays["lineOffsets"] = offsets
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
        "imageHash": len(a["imageEntry"]),
    }
    if "textFpCount" in a:  # version 1
        expected |= {"textFpCount": count, "fpEntry": len(a["fpHash"])}
    elif header["fpEntries"] != len(a["fpHash"]):
        raise corrupt(
            path, f"section fpEntry has {header['fpEntries']} values, expected {len(a['fpHash'])}"
        )
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


def check_prints(path: object, a: dict[str, npt.NDArray[Any]], header: dict[str, Any]) -> None:
    """Check the fingerprint sections of a sidecar with ``header`` (as :func:`parse` returned
    them), unpacking version 2's entry numbers and counting each entry's fingerprints into
    ``a`` (``fpEntry`` and ``textFpCount``) the first time.

    Raises:
        FormatError: the inverted index is unsorted, names an entry beyond the manifest's, or
            (version 1) disagrees with ``textFpCount``.
    """
    count = header["manifest"]["entries"]
    if "fpEntryPacked" in a:
        a["fpEntry"] = unpack_entries(a.pop("fpEntryPacked"), header["entryBytes"])
    fp_hash, fp_entry = a["fpHash"], a["fpEntry"]
    if not is_sorted(fp_hash):
        raise corrupt(path, "section fpHash is not sorted")
    if len(fp_entry) and int(fp_entry.max()) >= count:
        raise corrupt(path, f"section fpEntry names an entry beyond {count}")
    counts = np.bincount(fp_entry, minlength=count).astype(np.uint32)
    if "textFpCount" not in a:
        a["textFpCount"] = counts
    elif not np.array_equal(counts, a["textFpCount"]):
        raise corrupt(path, "textFpCount does not match the fingerprints")
