"""The fingerprint sidecar ``<manifest>.fp``: lookup indexes kept next to a manifest.

The manifest stays lean (one ``textSha256`` per text entry); everything a creator's lookup
needs beyond it lives in this binary file, whose SHA-256 the dataset card records in
``predicate.manifest.fingerprints``. Layout (all integers little-endian)::

    b"PVFPIDX1"                    8 bytes, magic
    header length                  uint64
    header                         RFC 8785 JSON, padded with spaces to a multiple of 8 bytes
    sections                       raw arrays in the order the header lists them, each padded
                                   with zero bytes to a multiple of 8 bytes

The header names the format and version, the manifest it belongs to (``manifest.sha256`` and
``manifest.entries``), the fingerprint methods and parameters, and each section's
``{"name", "dtype", "count"}``. Sections (entries are numbered by their manifest line, from 0):

- ``lineOffsets`` ``<u8`` [N+1]: byte offset of every manifest line (and the file size);
- ``shaPrefix`` ``<u8`` [N]: the first 8 bytes of each entry's ``sha256`` as a big-endian
  number; non-decreasing since the manifest is ordered by ``sha256``;
- ``textShaPrefix`` ``<u8`` [T] and ``textShaEntry`` ``<u4`` [T]: the same for ``textSha256``,
  sorted by (prefix, entry);
- ``textFpCount`` ``<u4`` [N]: the number of text fingerprints of each entry;
- ``fpHash`` ``<u8`` [M] and ``fpEntry`` ``<u4`` [M]: an inverted index of the text
  fingerprints, sorted by (hash, entry);
- ``imageEntry`` ``<u4`` [I] and ``imageHash`` ``<u8`` [I]: the pHash of every image entry,
  by entry.

The file is a pure function of the manifest and its entries' fingerprints, so it is
byte-identical whatever the number of workers, and merging shards gives the single build's
file. Opening checks the layout, every invariant above and that the manifest is the one named.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from provenance import _files, _json
from provenance._files import atomic_writer
from provenance.errors import FormatError, InputError, LocalIOError
from provenance.fingerprints import IMAGE_METHOD, NGRAM, TEXT_METHOD, WINDOW, ContentPrints
from provenance.manifest import (
    ManifestEntry,
    decode_entry,
    entry_bytes,
    entry_lines,
    iter_manifest,
)
from provenance.normtext import NORM_TEXT_NAME

__all__ = [
    "FORMAT",
    "MAGIC",
    "SUFFIX",
    "FingerprintIndex",
    "file_sha256",
    "merge_sidecars",
    "read_entry_prints",
    "sidecar_path",
    "write_sidecar",
    "write_sidecar_for",
]

MAGIC = b"PVFPIDX1"
FORMAT = "provenance-fingerprints"
VERSION = 1
SUFFIX = ".fp"
MAX_HEADER_BYTES = 64 * 1024
MAX_ENTRIES = 2**32 - 1

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]

_SECTIONS: tuple[tuple[str, str], ...] = (
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


def _parameters() -> dict[str, Any]:
    return {
        "text": {
            "method": TEXT_METHOD,
            "normalization": NORM_TEXT_NAME,
            "ngram": NGRAM,
            "window": WINDOW,
        },
        "image": {"method": IMAGE_METHOD},
    }


def sidecar_path(manifest_path: Path) -> Path:
    """Return where the sidecar of ``manifest_path`` lives: the same name plus ``.fp``."""
    return manifest_path.with_name(manifest_path.name + SUFFIX)


def file_sha256(path: Path) -> str:
    """Return the SHA-256 (hex) of the file at ``path`` (see :func:`provenance._files.file_sha256`).

    Raises:
        InputError: missing or unreadable.
        LocalIOError: a read fails.
    """
    return _files.file_sha256(path)


def _prefix(hex_digest: str) -> int:
    return int(hex_digest[:16], 16)


@dataclass(frozen=True, slots=True)
class _ManifestScan:
    digest: str
    ids: list[str]
    offsets: U64
    sha_prefix: U64
    text_prefix: U64  # textSha256 prefixes, sorted; ties in entry order
    text_entry: U32  # the entry of each


def _scan_manifest(manifest_path: Path) -> _ManifestScan:
    """Read a manifest (checking it like iter_manifest) and collect what the sidecar needs."""
    summaries: list[Any] = []
    ids: list[str] = []
    offsets = [0]
    sha_prefix: list[int] = []
    text_sha: list[tuple[int, int]] = []
    position = 0
    for number, entry in enumerate(iter_manifest(manifest_path, on_summary=summaries.append)):
        ids.append(entry.id)
        position += len(entry_bytes(entry)) + 1
        offsets.append(position)
        sha_prefix.append(_prefix(entry.sha256))
        if entry.textSha256 is not None:
            text_sha.append((_prefix(entry.textSha256), number))
    if len(ids) > MAX_ENTRIES:
        raise InputError(f"{manifest_path}: more than {MAX_ENTRIES} entries")
    text_sha.sort()
    return _ManifestScan(
        summaries[0].digest,
        ids,
        np.array(offsets, dtype=np.uint64),
        np.array(sha_prefix, dtype=np.uint64),
        np.array([p for p, _ in text_sha], dtype=np.uint64),
        np.array([e for _, e in text_sha], dtype=np.uint32),
    )


def write_sidecar(
    manifest_path: Path, prints: Mapping[str, ContentPrints], output: Path | None = None
) -> tuple[Path, str]:
    """Write the sidecar of the manifest at ``manifest_path`` from per-entry fingerprints.

    ``prints`` maps entry ids to their fingerprints; entries it does not name have none.

    Returns:
        The sidecar's path (``output`` or :func:`sidecar_path`) and its SHA-256.

    Raises:
        InputError, FormatError, LocalIOError: the manifest cannot be read or is invalid, an id
            in ``prints`` is not in it, or the file cannot be written (nothing is left behind).
    """
    scan = _scan_manifest(manifest_path)
    target = output or sidecar_path(manifest_path)
    return target, _write_scan(scan, prints, target, what=str(manifest_path))


def write_sidecar_for(
    entries: Sequence[ManifestEntry],
    manifest_digest: str,
    prints: Mapping[str, ContentPrints],
    output: Path,
) -> str:
    """Like :func:`write_sidecar`, from the entries just written (in manifest order).

    ``manifest_digest`` is the SHA-256 of the manifest file those entries were written to.

    Returns:
        The sidecar's SHA-256.

    Raises:
        InputError: an id in ``prints`` is not in ``entries``.
        LocalIOError: the file cannot be written (nothing is left behind).
    """
    count = len(entries)
    lines = np.frombuffer(entry_lines(entries), dtype=np.uint8)
    offsets = np.zeros(count + 1, dtype=np.uint64)
    offsets[1:] = np.flatnonzero(lines == 0x0A) + 1  # JSON strings escape newlines
    text_numbers = [number for number, e in enumerate(entries) if e.textSha256]
    text_prefix = _prefixes([entries[number].textSha256 or "" for number in text_numbers])
    # Stable: entries of equal prefixes stay in entry order.
    by_prefix = np.argsort(text_prefix, kind="stable")
    scan = _ManifestScan(
        manifest_digest,
        [e.id for e in entries],
        offsets,
        _prefixes([e.sha256 for e in entries]),
        text_prefix[by_prefix],
        np.array(text_numbers, dtype=np.uint32)[by_prefix],
    )
    return _write_scan(scan, prints, output, what=str(output))


def _prefixes(hex_digests: list[str]) -> U64:
    """:func:`_prefix` of each digest, at once."""
    joined = "".join([digest[:16] for digest in hex_digests])
    return np.frombuffer(bytes.fromhex(joined), dtype=">u8").astype(np.uint64)


def _write_scan(
    scan: _ManifestScan, prints: Mapping[str, ContentPrints], target: Path, *, what: str
) -> str:
    count = len(scan.ids)
    numbers: list[int] = []
    texts: list[U64] = []
    image_entries: list[int] = []
    image_hashes: list[int] = []
    found = 0
    get = prints.get
    for number, entry_id in enumerate(scan.ids):
        content = get(entry_id)
        if content is None:
            continue
        found += 1
        if len(content.text):
            numbers.append(number)
            texts.append(content.text)
        if content.image is not None:
            image_entries.append(number)
            image_hashes.append(content.image)
    if found != len(prints):
        known = set(scan.ids)
        unknown = next(entry_id for entry_id in prints if entry_id not in known)
        raise InputError(f"{what}: fingerprints for an unknown entry {unknown!r}")
    fp_hash, fp_entry = _inverted_index(numbers, texts)
    fp_count = np.bincount(fp_entry, minlength=count).astype(np.uint32)
    arrays: dict[str, npt.NDArray[Any]] = {
        "lineOffsets": scan.offsets,
        "shaPrefix": scan.sha_prefix,
        "textShaPrefix": scan.text_prefix,
        "textShaEntry": scan.text_entry,
        "textFpCount": fp_count,
        "fpHash": fp_hash,
        "fpEntry": fp_entry,
        "imageEntry": np.array(image_entries, dtype=np.uint32),
        "imageHash": np.array(image_hashes, dtype=np.uint64),
    }
    return _write(target, scan.digest, count, arrays)


def _inverted_index(numbers: list[int], texts: list[U64]) -> tuple[U64, U32]:
    """The pairs (hash, entry) of the entries' fingerprints, sorted, each pair once.

    ``texts[k]`` holds the fingerprints of entry ``numbers[k]`` (any order, repeats allowed);
    ``numbers`` is increasing.
    """
    if not texts:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint32)
    sizes = np.fromiter(map(len, texts), dtype=np.intp, count=len(texts))
    try:
        # bytes.join takes the arrays' buffers: faster than np.concatenate for many small ones.
        joined = b"".join(cast("list[bytes]", texts))
    except (TypeError, BufferError):  # a non-contiguous array
        joined = b""
    if len(joined) == 8 * int(sizes.sum()):
        fp_hash = np.frombuffer(joined, dtype=np.uint64)
    else:  # not all uint64 arrays
        fp_hash = np.concatenate(texts).astype(np.uint64)
    fp_entry = np.repeat(np.array(numbers, dtype=np.uint32), sizes)  # non-decreasing
    if len(fp_hash) >= 2**32:  # pragma: no cover - the single-key sort below needs ranks < 2**32
        by_pair = np.lexsort((fp_entry, fp_hash))
        fp_hash, fp_entry = fp_hash[by_pair].astype(np.uint64), fp_entry[by_pair]
        fresh = np.ones(len(fp_hash), dtype=np.bool_)
        fresh[1:] = (fp_hash[1:] != fp_hash[:-1]) | (fp_entry[1:] != fp_entry[:-1])
        return fp_hash[fresh], fp_entry[fresh]
    by_hash = np.argsort(fp_hash)
    fp_hash = fp_hash[by_hash]
    fp_entry = fp_entry[by_hash]
    first = np.empty(len(fp_hash), dtype=np.bool_)
    first[0] = True
    np.not_equal(fp_hash[1:], fp_hash[:-1], out=first[1:])
    if first.all():  # every hash once: nothing more to order
        return fp_hash, fp_entry
    # The entries of a repeated hash are put in order by sorting one uint64 key per pair,
    # (rank of the hash) << 32 | entry: each hash's pairs keep their positions as a group,
    # so the sorted keys line up with ``fp_hash`` as it is. Several times faster than lexsort.
    key = np.cumsum(first, dtype=np.uint64)
    key <<= np.uint64(32)
    key |= fp_entry
    key.sort()
    fresh = first  # reused: True where a pair differs from the one before
    np.not_equal(key[1:], key[:-1], out=fresh[1:])
    np.bitwise_and(key, np.uint64(0xFFFFFFFF), out=key)
    return fp_hash[fresh], key[fresh].astype(np.uint32)


def _write(target: Path, manifest_digest: str, count: int, arrays: dict[str, Any]) -> str:
    header = {
        "format": FORMAT,
        "version": VERSION,
        "manifest": {"sha256": manifest_digest, "entries": count},
        **_parameters(),
        "sections": [
            {"name": name, "dtype": dtype, "count": int(len(arrays[name]))}
            for name, dtype in _SECTIONS
        ],
    }
    header_bytes = _json.canonical(header)
    header_bytes += b" " * (-len(header_bytes) % 8)
    digest = hashlib.sha256()
    with atomic_writer(target) as handle:

        def put(data: bytes) -> None:
            digest.update(data)
            handle.write(data)

        put(MAGIC)
        put(len(header_bytes).to_bytes(8, "little"))
        put(header_bytes)
        for name, dtype in _SECTIONS:
            data = np.ascontiguousarray(arrays[name], dtype=np.dtype(dtype)).tobytes()
            put(data + b"\0" * (-len(data) % 8))
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------
# Reading


def _corrupt(path: Path, what: str) -> FormatError:
    return FormatError(f"{path}: corrupt fingerprint index: {what}")


def _sorted(values: npt.NDArray[Any]) -> bool:
    return bool(len(values) < 2 or np.all(values[1:] >= values[:-1]))


class FingerprintIndex:
    """A manifest opened for lookups, with its sidecar (or, without one, exact indexes only).

    Use :meth:`open`, then as a context manager (it keeps the manifest and sidecar open).
    """

    def __init__(
        self,
        manifest_path: Path,
        arrays: dict[str, npt.NDArray[Any]],
        *,
        sidecar: Path | None,
        keep: list[Any],
        check_prints: Callable[[], None] | None = None,
    ) -> None:
        """Use :meth:`open`."""
        self.manifest_path = manifest_path
        self.sidecar = sidecar
        self._arrays = arrays
        self._keep = keep
        self._check_prints = check_prints
        self._fd: int | None = None

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, manifest_path: Path, sidecar: Path | None = None) -> FingerprintIndex:
        """Open ``manifest_path`` with its sidecar (``sidecar`` or :func:`sidecar_path`).

        Without a sidecar file, exact and normalized lookups still work: the manifest is read
        and indexed in memory.

        Raises:
            InputError: the manifest is missing or unreadable, or the sidecar belongs to another
                manifest.
            FormatError: the manifest or the sidecar is corrupt (named, with what is wrong).
        """
        path = sidecar or sidecar_path(manifest_path)
        if sidecar is None and not path.exists():
            return cls._from_manifest(manifest_path)
        return cls._from_sidecar(manifest_path, path)

    @classmethod
    def _from_manifest(cls, manifest_path: Path) -> FingerprintIndex:
        scan = _scan_manifest(manifest_path)
        count = len(scan.ids)
        arrays: dict[str, npt.NDArray[Any]] = {
            "lineOffsets": scan.offsets,
            "shaPrefix": scan.sha_prefix,
            "textShaPrefix": scan.text_prefix,
            "textShaEntry": scan.text_entry,
            "textFpCount": np.zeros(count, dtype=np.uint32),
            "fpHash": np.zeros(0, dtype=np.uint64),
            "fpEntry": np.zeros(0, dtype=np.uint32),
            "imageEntry": np.zeros(0, dtype=np.uint32),
            "imageHash": np.zeros(0, dtype=np.uint64),
        }
        return cls(manifest_path, arrays, sidecar=None, keep=[])

    @classmethod
    def _from_sidecar(cls, manifest_path: Path, path: Path) -> FingerprintIndex:
        try:
            handle = open(path, "rb")  # noqa: SIM115 - kept open by the index (mmap)
        except FileNotFoundError:
            raise InputError(f"{path}: no such fingerprint index") from None
        except PermissionError:
            raise InputError(f"{path}: permission denied") from None
        except IsADirectoryError:
            raise InputError(f"{path}: is a directory, expected a fingerprint index") from None
        except OSError as exc:
            raise LocalIOError(f"{path}: cannot open: {exc.strerror}") from None
        with handle:
            size = os.fstat(handle.fileno()).st_size
            if size < 16:
                raise _corrupt(path, "shorter than its fixed header")
            try:
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError) as exc:
                raise LocalIOError(f"{path}: cannot map: {exc}") from None
        try:
            header, arrays = _parse(path, mapped, size)
        except BaseException:
            # Arrays made before the error may still hold the mapping; it goes with them.
            with contextlib.suppress(BufferError):
                mapped.close()
            raise
        index = cls(manifest_path, arrays, sidecar=path, keep=[mapped])
        index._check_layout(header)
        return index

    def _check_layout(self, header: dict[str, Any]) -> None:
        path = self.sidecar
        assert path is not None
        a = self._arrays
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
                raise _corrupt(path, f"section {name} has {len(a[name])} values, expected {want}")
        if offsets[0] != 0 or (count and not np.all(offsets[1:] > offsets[:-1])):
            raise _corrupt(path, "line offsets are not increasing from 0")
        for name in ("shaPrefix", "textShaPrefix"):
            if not _sorted(a[name]):
                raise _corrupt(path, f"section {name} is not sorted")
        for name in ("textShaEntry", "imageEntry"):
            if len(a[name]) and int(a[name].max()) >= count:
                raise _corrupt(path, f"section {name} names an entry beyond {count}")
        if len(a["imageEntry"]) > 1 and not np.all(a["imageEntry"][1:] > a["imageEntry"][:-1]):
            raise _corrupt(path, "section imageEntry is not strictly increasing")
        # The manifest must be the one the sidecar was built for.
        manifest_digest = file_sha256(self.manifest_path)
        if manifest_digest != header["manifest"]["sha256"]:
            raise InputError(
                f"{path}: fingerprint index belongs to another manifest (sha256"
                f" {header['manifest']['sha256']}, {self.manifest_path} has {manifest_digest});"
                " rebuild it with 'provenance manifest build'"
            )
        if int(offsets[-1]) != os.stat(self.manifest_path).st_size:
            raise _corrupt(path, "line offsets do not match the manifest's size")

        def check_prints() -> None:
            fp_hash, fp_entry = a["fpHash"], a["fpEntry"]
            if not _sorted(fp_hash):
                raise _corrupt(path, "section fpHash is not sorted")
            if len(fp_entry) and int(fp_entry.max()) >= count:
                raise _corrupt(path, f"section fpEntry names an entry beyond {count}")
            counts = np.bincount(fp_entry, minlength=count) if count else np.zeros(0)
            if not np.array_equal(counts, a["textFpCount"]):
                raise _corrupt(path, "textFpCount does not match the fingerprints")

        self._check_prints = check_prints

    # -- context -----------------------------------------------------------------------------------

    def __enter__(self) -> FingerprintIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the files held open."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._arrays = {}
        for item in self._keep:
            # numpy views still alive keep the mapping; it goes with them.
            with contextlib.suppress(BufferError):
                item.close()
        self._keep = []

    # -- entries ---------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """The number of manifest entries."""
        return len(self._arrays["shaPrefix"])

    @property
    def has_text_prints(self) -> bool:
        """True if a sidecar with text fingerprints is open."""
        return self.sidecar is not None

    def entry(self, number: int) -> ManifestEntry:
        """Return manifest entry ``number`` (0-based), read from the manifest and checked.

        Raises:
            FormatError: the line is not a valid entry (the manifest changed?).
            LocalIOError: it cannot be read.
        """
        offsets = self._arrays["lineOffsets"]
        start, end = int(offsets[number]), int(offsets[number + 1])
        try:
            if self._fd is None:
                self._fd = os.open(self.manifest_path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            line = os.pread(self._fd, end - start, start)
        except OSError as exc:
            raise LocalIOError(f"{self.manifest_path}: cannot read: {exc.strerror}") from None
        if not line.endswith(b"\n"):
            raise FormatError(f"{self.manifest_path}: changed since it was indexed")
        return decode_entry(line[:-1], what=f"{self.manifest_path}: entry {number}")

    def _range(self, keys: str, values: str | None, prefix: int) -> Iterator[int]:
        array = self._arrays[keys]
        key = np.uint64(prefix)
        lo = int(np.searchsorted(array, key, side="left"))
        hi = int(np.searchsorted(array, key, side="right"))
        for position in range(lo, hi):
            yield position if values is None else int(self._arrays[values][position])

    def exact(self, sha256: str) -> list[ManifestEntry]:
        """Return the entries whose ``sha256`` is ``sha256`` (hex), in manifest order."""
        found = [self.entry(n) for n in self._range("shaPrefix", None, _prefix(sha256))]
        return [e for e in found if e.sha256 == sha256]

    def normalized(self, text_sha256: str) -> list[ManifestEntry]:
        """Return the entries whose ``textSha256`` is ``text_sha256``, in manifest order."""
        numbers = self._range("textShaPrefix", "textShaEntry", _prefix(text_sha256))
        found = [self.entry(n) for n in numbers]
        return [e for e in found if e.textSha256 == text_sha256]

    def text_candidates(
        self, prints: U64, *, max_postings: int = 100_000
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Entries sharing text fingerprints with ``prints`` (sorted unique uint64).

        Fingerprints held by more than ``max_postings`` entries (boilerplate) are skipped.

        Returns:
            ``(entries, shared, entry_prints)``: entry numbers, how many of ``prints`` each
            holds, and how many fingerprints each has.

        Raises:
            FormatError: the sidecar's fingerprint sections are corrupt (checked on first use).
        """
        if self._check_prints is not None:
            self._check_prints()
            self._check_prints = None
        fp_hash, fp_entry = self._arrays["fpHash"], self._arrays["fpEntry"]
        empty = np.zeros(0, dtype=np.intp)
        if not len(prints) or not len(fp_hash):
            return empty, empty, empty
        lo = np.searchsorted(fp_hash, prints, side="left")
        hi = np.searchsorted(fp_hash, prints, side="right")
        lengths = hi - lo
        keep = (lengths > 0) & (lengths <= max_postings)
        lo, lengths = lo[keep], lengths[keep]
        total = int(lengths.sum())
        if total == 0:
            return empty, empty, empty
        # Concatenate the ranges [lo, lo + length) without a Python loop.
        starts = np.repeat(lo - np.cumsum(lengths) + lengths, lengths)
        positions = starts + np.arange(total)
        entries, shared = np.unique(fp_entry[positions], return_counts=True)
        entry_prints = self._arrays["textFpCount"][entries].astype(np.intp)
        return entries.astype(np.intp), shared.astype(np.intp), entry_prints

    def image_candidates(
        self, phash: int, *, max_distance: int
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Image entries whose pHash is within ``max_distance`` bits of ``phash``.

        Returns:
            ``(entries, distances)``, by entry number.
        """
        hashes = self._arrays["imageHash"]
        if not len(hashes):
            empty = np.zeros(0, dtype=np.intp)
            return empty, empty
        distances = _popcount(np.bitwise_xor(hashes, np.uint64(phash)))
        close = np.flatnonzero(distances <= max_distance)
        return self._arrays["imageEntry"][close].astype(np.intp), distances[close]

    def entry_prints(self, number: int) -> ContentPrints:
        """Return the fingerprints recorded for entry ``number`` (slow: scans the index)."""
        if self._check_prints is not None:
            self._check_prints()
            self._check_prints = None
        a = self._arrays
        text = np.sort(a["fpHash"][a["fpEntry"] == number])
        images = np.flatnonzero(a["imageEntry"] == number)
        image = int(a["imageHash"][images[0]]) if len(images) else None
        return ContentPrints(None, text, image)


def _popcount(values: U64) -> npt.NDArray[np.intp]:
    counter = getattr(np, "bitwise_count", None)
    if counter is not None:
        return np.asarray(counter(values), dtype=np.intp)
    bits = np.unpackbits(values.view(np.uint8).reshape(-1, 8), axis=1)  # pragma: no cover
    counts: npt.NDArray[np.intp] = bits.sum(axis=1).astype(np.intp)  # pragma: no cover
    return counts  # pragma: no cover


def _parse(path: Path, mapped: mmap.mmap, size: int) -> tuple[dict[str, Any], dict[str, Any]]:
    if mapped[:8] != MAGIC:
        raise _corrupt(path, "not a provenance fingerprint index (bad magic)")
    header_length = int.from_bytes(mapped[8:16], "little")
    if header_length > MAX_HEADER_BYTES or header_length % 8 or 16 + header_length > size:
        raise _corrupt(path, f"bad header length {header_length}")
    raw = bytes(mapped[16 : 16 + header_length]).rstrip(b" ")
    try:
        header = _json.loads_object(raw, what=f"{path}: header")
    except FormatError as exc:
        raise _corrupt(path, str(exc)) from None
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise _corrupt(path, f"not format {FORMAT} version {VERSION}")
    manifest = header.get("manifest")
    if (
        not isinstance(manifest, dict)
        or not isinstance(manifest.get("sha256"), str)
        or not isinstance(manifest.get("entries"), int)
        or isinstance(manifest.get("entries"), bool)
        or not 0 <= manifest["entries"] <= MAX_ENTRIES
    ):
        raise _corrupt(path, "header lacks a valid 'manifest' {sha256, entries}")
    for key, value in _parameters().items():
        if header.get(key) != value:
            raise _corrupt(
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
    if names != list(_SECTIONS):
        raise _corrupt(path, "unexpected sections")
    arrays: dict[str, Any] = {}
    position = 16 + header_length
    assert isinstance(sections, list)
    for section in sections:
        count = section.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise _corrupt(path, f"section {section['name']}: bad count")
        dtype = np.dtype(section["dtype"])
        length = count * dtype.itemsize
        padded = length + (-length % 8)
        if position + padded > size:
            raise _corrupt(path, f"section {section['name']} runs past the end of the file")
        arrays[section["name"]] = np.frombuffer(mapped, dtype=dtype, count=count, offset=position)
        position += padded
    if position != size:
        raise _corrupt(path, f"{size - position} unexpected bytes after the last section")
    return header, arrays


# ----------------------------------------------------------------------------------------------
# Merging (shards built separately)


def read_entry_prints(manifest_path: Path, sidecar: Path) -> dict[str, ContentPrints]:
    """Return the fingerprints a sidecar holds for each entry id of its manifest.

    Raises:
        InputError, FormatError: as :meth:`FingerprintIndex.open`.
    """
    with FingerprintIndex.open(manifest_path, sidecar) as index:
        if index._check_prints is not None:
            index._check_prints()
        a = index._arrays
        ids = [index.entry(n).id for n in range(index.size)]
        order = np.argsort(a["fpEntry"], kind="stable")
        hashes, owners = a["fpHash"][order], a["fpEntry"][order]
        bounds = np.searchsorted(owners, np.arange(index.size + 1), side="left")
        images = dict(zip(a["imageEntry"].tolist(), a["imageHash"].tolist(), strict=True))
        result: dict[str, ContentPrints] = {}
        for number, entry_id in enumerate(ids):
            text = np.array(hashes[bounds[number] : bounds[number + 1]])
            image = images.get(number)
            if len(text) or image is not None:
                result[entry_id] = ContentPrints(None, np.sort(text), image)
        return result


def merge_sidecars(
    inputs: list[Path], merged_manifest: Path, output: Path | None = None
) -> tuple[Path, str] | None:
    """Merge the sidecars of manifests ``inputs`` into the sidecar of ``merged_manifest``.

    Returns:
        The merged sidecar's path and digest, or None when no input has a sidecar.

    Raises:
        InputError: some inputs have a sidecar and others do not.
        FormatError: a sidecar is corrupt.
    """
    present = [sidecar_path(p).exists() for p in inputs]
    if not any(present):
        return None
    if not all(present):
        missing = [str(p) for p, has in zip(inputs, present, strict=True) if not has]
        raise InputError(
            f"{missing[0]}: has no fingerprint index ({SUFFIX}) while other inputs do; build"
            " every shard the same way"
        )
    prints: dict[str, ContentPrints] = {}
    for path in inputs:
        prints.update(read_entry_prints(path, sidecar_path(path)))
    return write_sidecar(merged_manifest, prints, output)
