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
KEY = "key"
"""The dtype named for ``fpKeys`` in version 2: ``keyBytes`` bytes each (:class:`PackedKeys`)."""
KEY_MULTIPLIER = 0x9E3779B97F4A7C15
"""Odd, so multiplying by it modulo 2**64 is a bijection: a fingerprint's key. Winnowed hashes
are window minima, crowded at small values; their keys are spread evenly over the buckets."""
KEY_INVERSE = pow(KEY_MULTIPLIER, -1, 2**64)
MAX_KEY_BITS = 32

LINE = "line"
"""The dtype named for ``lineLengths`` in version 2: ``lineBytes`` bytes each (2, or 4 when a
line is 64 KiB or longer)."""

SECTIONS: tuple[tuple[str, str], ...] = (
    ("lineLengths", LINE),
    ("shaPrefix", "<u4"),
    ("textShaPrefix", "<u4"),
    ("textShaEntry", ENTRY),
    ("fpBuckets", "<u4"),
    ("fpKeys", KEY),
    ("fpEntry", ENTRY),
    ("imageEntry", ENTRY),
    ("imageHash", "<u8"),
)
"""Each section's name and dtype, in file order (version 2). Each entry's line length replaces
version 1's offsets (a line is far below 4 GiB); the digests' prefixes are their first 4 bytes,
not 8 (a lookup reads every candidate's line and compares the whole digest, so a shorter prefix
only adds a rare candidate, never loses one); entry numbers take the fewest bytes that number
every entry; and each entry's fingerprint count, which the inverted index already says, is
counted when the fingerprints are first used. The inverted index is kept by key (the
fingerprint times :data:`KEY_MULTIPLIER`, modulo 2**64), sorted by (key, entry): ``fpBuckets``
[2**keyBits + 1] holds where each bucket of keys (their top ``keyBits`` bits) starts, and
``fpKeys`` [M] each key's remaining ``64 - keyBits`` bits in ``keyBytes`` bytes, so that a key
costs ``keyBytes`` bytes plus its share of the bucket table instead of 8 (see
:func:`key_layout`)."""


def key_layout(count: int) -> tuple[int, int]:
    """The ``(keyBits, keyBytes)`` of a sidecar with ``count`` fingerprints: the fewest bytes
    in all (bucket table and remainders), with at most about 32 keys per bucket on average (a
    lookup reads every key of the buckets it queries)."""
    best: tuple[int, int, int] | None = None
    for bits in range(max(0, (max(count, 1) - 1).bit_length() - 5), MAX_KEY_BITS + 1):
        width = (64 - bits + 7) // 8
        cost = 4 * (2**bits + 1) + width * count
        if best is None or cost < best[0]:
            best = (cost, bits, width)
    assert best is not None
    return best[1], best[2]


class PackedKeys:
    """Version 2's inverted index keys (``fpBuckets`` and ``fpKeys``), searched in place."""

    def __init__(self, buckets: U32, raw: npt.NDArray[np.uint8], bits: int, width: int) -> None:
        self.buckets = buckets
        self.raw = raw
        self.bits = bits
        self.width = width

    def __len__(self) -> int:
        return len(self.raw) // self.width

    def _rests(self, positions: npt.NDArray[np.intp]) -> U64:
        rows = self.raw.reshape(-1, self.width)[positions]
        wide = np.zeros((len(rows), 8), dtype=np.uint8)
        wide[:, : self.width] = rows
        return wide.view("<u8").reshape(-1).astype(np.uint64, copy=False)

    def _split(self, keys: U64) -> tuple[npt.NDArray[np.intp], U64]:
        if not self.bits:
            return np.zeros(len(keys), dtype=np.intp), keys
        shift = np.uint64(64 - self.bits)
        mask = np.uint64((1 << (64 - self.bits)) - 1)
        return (keys >> shift).astype(np.intp), keys & mask

    def keys(self, start: int, stop: int) -> U64:
        """The whole keys of positions ``start .. stop-1``."""
        positions = np.arange(start, stop, dtype=np.intp)
        rests = self._rests(positions)
        if not self.bits:
            return rests
        bucket = np.searchsorted(self.buckets, positions, side="right") - 1
        return (bucket.astype(np.uint64) << np.uint64(64 - self.bits)) | rests

    def hashes(self) -> U64:
        """Every fingerprint, in index order (by key)."""
        with np.errstate(over="ignore"):
            return self.keys(0, len(self)) * np.uint64(KEY_INVERSE)

    def by_hash(self, entries: U32) -> tuple[U64, U32]:
        """The inverted index as version 1 kept it, sorted by (hash, entry), from ``entries``
        (``fpEntry``, in key order)."""
        hashes = self.hashes()
        order = np.lexsort((entries, hashes))
        return hashes[order], np.asarray(entries, dtype=np.uint32)[order]

    def postings(self, prints: U64) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Where each of ``prints`` starts in the index, and how many entries hold it."""
        with np.errstate(over="ignore"):
            keys = np.asarray(prints, dtype=np.uint64) * np.uint64(KEY_MULTIPLIER)
        bucket, rest = self._split(keys)
        lo = self.buckets[bucket].astype(np.intp)
        sizes = self.buckets[bucket + 1].astype(np.intp) - lo
        first = np.zeros(len(keys), dtype=np.intp)
        total = int(sizes.sum())
        if not total:
            return first, np.zeros(len(keys), dtype=np.intp)
        owner = np.repeat(np.arange(len(keys), dtype=np.intp), sizes)
        positions = np.repeat(lo - np.cumsum(sizes) + sizes, sizes) + np.arange(total)
        # Equal keys are adjacent within their bucket: the matches of one print are a range.
        hit = self._rests(positions) == rest[owner]
        owners, where = owner[hit], positions[hit]
        found, at = np.unique(owners, return_index=True)
        first[found] = where[at]
        return first, np.bincount(owners, minlength=len(keys)).astype(np.intp)

    def check(self, path: object) -> None:
        """Check the bucket table and that the keys are sorted, a block at a time.

        Raises:
            FormatError: a bucket table that does not cover the keys, a remainder wider than
                its bits, or keys out of order.
        """
        table, count = self.buckets, len(self)
        if len(table) != 2**self.bits + 1 or table[0] != 0 or int(table[-1]) != count:
            raise corrupt(path, "section fpBuckets does not cover section fpKeys")
        if not is_sorted(table):
            raise corrupt(path, "section fpBuckets is not sorted")
        spare = 8 * self.width - (64 - self.bits)
        if spare and count and int(self.raw.reshape(-1, self.width)[:, -1].max()) >> (8 - spare):
            raise corrupt(path, "section fpKeys holds a key wider than its bits")
        previous: int | None = None
        for start in range(0, count, 1 << 20):
            block = self.keys(start, min(count, start + (1 << 20)))
            if not is_sorted(block) or (previous is not None and int(block[0]) < previous):
                raise corrupt(path, "section fpKeys is not sorted")
            previous = int(block[-1])


def pack_keys(hashes: U64, entries: U32) -> tuple[U32, bytes, U32, int, int]:
    """Version 2's ``fpBuckets``, ``fpKeys`` (packed) and ``fpEntry`` order from the inverted
    index sorted by (hash, entry), with its ``keyBits`` and ``keyBytes``."""
    with np.errstate(over="ignore"):
        keys = np.asarray(hashes, dtype=np.uint64) * np.uint64(KEY_MULTIPLIER)
    order = np.argsort(keys, kind="stable")  # equal keys (equal hashes) keep entry order
    keys, entries = keys[order], np.asarray(entries)[order]
    bits, width = key_layout(len(keys))
    table = np.zeros(2**bits + 1, dtype="<u4")
    if bits:
        bucket = (keys >> np.uint64(64 - bits)).astype(np.intp)
        keys = keys & np.uint64((1 << (64 - bits)) - 1)
    else:
        bucket = np.zeros(len(keys), dtype=np.intp)
    np.cumsum(np.bincount(bucket, minlength=2**bits), out=table[1:])
    raw = keys.astype("<u8").view(np.uint8).reshape(-1, 8)[:, :width].tobytes()
    return table, raw, entries.astype(np.uint32), bits, width


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
        table, keys, values["fpEntry"], bits, key_width = pack_keys(
            arrays["fpHash"], arrays["fpEntry"]
        )
        header["keyBits"], header["keyBytes"] = bits, key_width
        values["fpBuckets"], packed_keys = table, keys
        for name in ("shaPrefix", "textShaPrefix"):
            values[name] = np.asarray(arrays[name], dtype=np.uint64) >> np.uint64(32)
    header["sections"] = [
        {
            "name": name,
            "dtype": dtype,
            "count": int(len(values["fpEntry" if name == "fpKeys" else name])),
        }
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
        elif dtype == KEY:
            data = packed_keys
        else:
            data = np.ascontiguousarray(values[name], dtype=np.dtype(dtype)).tobytes()
        yield data + b"\0" * (-len(data) % 8)


def parse(path: object, mapped: Any, size: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse a sidecar's ``size`` bytes (``mapped``: bytes or a mapping) as the header and
    each section's array, by name: ``lineOffsets`` (from version 2's ``lineLengths``) and
    entry numbers as uint32 for both versions; version 2's keys as ``fpKeys``, a
    :class:`PackedKeys` (version 1's ``fpHash`` array otherwise), and its ``fpEntry`` left
    packed, as ``fpEntryPacked``, until :func:`check_prints` (the fingerprint sections are the
    bulk of the file, used only by near-duplicate lookups). Arrays are views of ``mapped``
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
    width: Any = 4
    line_width: Any = 4
    key_bits: Any = 0
    key_width: Any = 8
    if version == 2:
        width = header.get("entryBytes")
        if width != entry_bytes(manifest["entries"]) or isinstance(width, bool):
            raise corrupt(path, f"entryBytes {width!r} does not fit {manifest['entries']} entries")
        line_width = header.get("lineBytes")
        if line_width not in (2, 4) or isinstance(line_width, bool):
            raise corrupt(path, f"lineBytes {line_width!r} is not 2 or 4")
        key_bits, key_width = header.get("keyBits"), header.get("keyBytes")
        if (
            not isinstance(key_bits, int)
            or isinstance(key_bits, bool)
            or not 0 <= key_bits <= MAX_KEY_BITS
            or key_width != (64 - key_bits + 7) // 8
            or isinstance(key_width, bool)
        ):
            raise corrupt(path, f"keyBits {key_bits!r} and keyBytes {key_width!r} do not fit")
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
        packed = section["dtype"] in (ENTRY, LINE, KEY)
        item = {LINE: line_width, KEY: key_width}.get(section["dtype"], width)
        dtype = np.dtype(np.uint8 if packed else section["dtype"])
        length = count * (item if packed else dtype.itemsize)
        padded = length + (-length % 8)
        if position + padded > size:
            raise corrupt(path, f"section {section['name']} runs past the end of the file")
        array = np.frombuffer(mapped, dtype=dtype, count=length // dtype.itemsize, offset=position)
        if section["name"] == "fpEntry" and packed:
            arrays["fpEntryPacked"] = array
        elif section["dtype"] == KEY:
            arrays["fpKeys"] = PackedKeys(arrays.pop("fpBuckets"), array, key_bits, key_width)
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
    elif header["fpEntries"] != len(a["fpKeys"]):
        raise corrupt(
            path, f"section fpEntry has {header['fpEntries']} values, expected {len(a['fpKeys'])}"
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
    fp_entry = a["fpEntry"]
    if "fpKeys" in a:
        keys: PackedKeys = a["fpKeys"]  # type: ignore[assignment]
        keys.check(path)
    elif not is_sorted(a["fpHash"]):
        raise corrupt(path, "section fpHash is not sorted")
    if len(fp_entry) and int(fp_entry.max()) >= count:
        raise corrupt(path, f"section fpEntry names an entry beyond {count}")
    counts = np.bincount(fp_entry, minlength=count).astype(np.uint32)
    if "textFpCount" not in a:
        a["textFpCount"] = counts
    elif not np.array_equal(counts, a["textFpCount"]):
        raise corrupt(path, "textFpCount does not match the fingerprints")
