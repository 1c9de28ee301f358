"""A manifest opened for lookups: its fingerprint sidecar mapped, or indexes made from it."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from provenance import _files
from provenance.errors import FormatError, InputError, LocalIOError
from provenance.fingerprints import ContentPrints
from provenance.fpindex.layout import (
    U64,
    PackedKeys,
    check_prints,
    check_sections,
    corrupt,
    parse,
)
from provenance.fpindex.scan import ManifestScan, prefix, scan_manifest
from provenance.fpsidecar import Sidecar, open_sidecar
from provenance.manifest import ManifestEntry, decode_entry
from provenance.partitions import ManifestLines, open_lines

LineCheck = Callable[[int, bytes], None]
"""Called with (entry number, manifest line without its newline) for every line read after
opening; raises if the line is not the one checked before (e.g. against a signed card)."""


class FingerprintIndex:
    """A manifest opened for lookups, with its sidecar (or, without one, exact indexes only).

    Use :meth:`open` (or :meth:`from_sidecar`), then as a context manager (it keeps the
    manifest and sidecar open).
    """

    def __init__(
        self,
        manifest_path: Path,
        arrays: dict[str, npt.NDArray[Any]],
        *,
        sidecar: Path | None,
        keep: list[Any],
        check_prints: Callable[[], None] | None = None,
        line_check: LineCheck | None = None,
    ) -> None:
        """Use :meth:`open`, :meth:`from_sidecar` or :meth:`from_scan`."""
        self.manifest_path = manifest_path
        self.sidecar = sidecar
        self._arrays = arrays
        self._keep = keep
        self._check_prints = check_prints
        self._line_check = line_check
        self._fd: int | None = None
        self._lines: ManifestLines | None = None  # when no file was hashed and kept open

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, manifest_path: Path, sidecar: Path | None = None) -> FingerprintIndex:
        """Open ``manifest_path`` with its sidecar (``sidecar`` or the one beside it), checking
        nothing against a card (:func:`provenance.fpsidecar.open_sidecar` without one).

        Without a sidecar file, exact and normalized lookups still work: the manifest is read
        and indexed in memory.

        Raises:
            InputError: the manifest is missing or unreadable, the sidecar is not a regular
                file or belongs to another manifest.
            FormatError: the manifest or the sidecar is corrupt (named, with what is wrong).
        """
        return cls.from_sidecar(manifest_path, open_sidecar(manifest_path, None, sidecar=sidecar))

    @classmethod
    def from_sidecar(
        cls,
        manifest_path: Path,
        sidecar: Sidecar,
        *,
        scan: ManifestScan | None = None,
        line_check: LineCheck | None = None,
    ) -> FingerprintIndex:
        """Open ``manifest_path`` for lookups as :func:`provenance.fpsidecar.open_sidecar`
        decided: with the sidecar's bytes if it is used (the index then owns them), else with
        indexes made from the manifest (exact and normalized lookups only).

        ``scan`` is the manifest as already read (the sidecar must then name its digest and
        line offsets, and the manifest is not read again); ``line_check`` is called on every
        manifest line read later (see :data:`LineCheck`).

        Raises:
            InputError: the manifest is missing or unreadable, or the sidecar belongs to
                another manifest.
            FormatError: the manifest or the sidecar is corrupt (named, with what is wrong).
            LocalIOError: the manifest cannot be read.
        """
        data = sidecar.data
        if data is None:
            if scan is None:
                scan = scan_manifest(manifest_path)
            return cls.from_scan(manifest_path, scan, line_check=line_check)
        path = sidecar.path
        try:
            if len(data) < 16:
                raise corrupt(path, "shorter than its fixed header")
            header, arrays = parse(path, data, len(data))
            index = cls(manifest_path, arrays, sidecar=path, keep=[data], line_check=line_check)
        except BaseException:
            # Arrays made before the error may still hold the mapping; it goes with them.
            sidecar.close()
            raise
        try:
            index._check_layout(header, scan)
        except BaseException:
            index.close()
            raise
        return index

    @classmethod
    def for_part(
        cls, part_path: Path, sidecar: Sidecar, *, manifest_sha256: str, manifest_bytes: int
    ) -> FingerprintIndex:
        """Open the sidecar of one part of a partitioned manifest without reading the part:
        the part is known (from its index) to have SHA-256 ``manifest_sha256`` and
        ``manifest_bytes`` bytes, and the sidecar must say it was built for exactly that.
        Entries are read by the caller, from the part it checks against the index.

        Raises:
            InputError: the sidecar belongs to another manifest.
            FormatError: it is corrupt.
        """
        data = sidecar.data
        assert data is not None
        path = sidecar.path
        try:
            if len(data) < 16:
                raise corrupt(path, "shorter than its fixed header")
            header, arrays = parse(path, data, len(data))
            index = cls(part_path, arrays, sidecar=path, keep=[data])
        except BaseException:
            sidecar.close()
            raise
        try:
            check_sections(path, header, arrays)
            index._check_owner(header, manifest_sha256)
            if int(arrays["lineOffsets"][-1]) != manifest_bytes:
                raise corrupt(path, "line offsets do not match the part's size")
            index._check_prints = lambda: check_prints(path, arrays, header)
        except BaseException:
            index.close()
            raise
        return index

    def _check_owner(self, header: dict[str, Any], manifest_digest: str) -> None:
        if manifest_digest != header["manifest"]["sha256"]:
            raise InputError(
                f"{self.sidecar}: fingerprint index belongs to another manifest (sha256"
                f" {header['manifest']['sha256']}, {self.manifest_path} has {manifest_digest});"
                " rebuild it with 'provenance manifest build'"
            )

    @classmethod
    def from_scan(
        cls, manifest_path: Path, scan: ManifestScan, *, line_check: LineCheck | None = None
    ) -> FingerprintIndex:
        """An index without fingerprints (exact and normalized lookups) from a manifest scan.

        Nothing but the manifest is read, and only its lines, on demand (each passed to
        ``line_check`` if given).
        """
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
        return cls(manifest_path, arrays, sidecar=None, keep=[], line_check=line_check)

    def _check_layout(self, header: dict[str, Any], scan: ManifestScan | None) -> None:
        path = self.sidecar
        assert path is not None
        a = self._arrays
        check_sections(path, header, a)
        # The manifest must be the one the sidecar was built for.
        if scan is not None:
            manifest_digest, size = scan.digest, None
        else:
            manifest_digest, size = self._open_manifest()
        self._check_owner(header, manifest_digest)
        offsets = a["lineOffsets"]
        if scan is not None:
            if not np.array_equal(offsets, scan.offsets):
                raise corrupt(path, "line offsets do not match the manifest's lines")
        elif int(offsets[-1]) != size:
            raise corrupt(path, "line offsets do not match the manifest's size")
        self._check_prints = lambda: check_prints(path, a, header)

    def _open_manifest(self) -> tuple[str, int]:
        """Open the manifest, hash it and keep it open: lines are read later from the file
        hashed here, not from whatever the path names by then. Returns its digest and size."""
        with _files.open_input(self.manifest_path, kind="manifest file") as handle:
            try:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
                size = handle.tell()
            except OSError as exc:
                raise LocalIOError(f"{self.manifest_path}: cannot read: {exc.strerror}") from None
            self._fd = os.dup(handle.fileno())
        return digest, size

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
        if self._lines is not None:
            self._lines.close()
            self._lines = None
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
            if self._fd is not None:
                line = os.pread(self._fd, end - start, start)
            else:  # a manifest file or the parts of a partitioned one
                if self._lines is None:
                    self._lines = open_lines(self.manifest_path)
                line = self._lines.pread(end - start, start)
        except OSError as exc:
            raise LocalIOError(f"{self.manifest_path}: cannot read: {exc.strerror}") from None
        if not line.endswith(b"\n"):
            raise FormatError(f"{self.manifest_path}: changed since it was indexed")
        if self._line_check is not None:
            self._line_check(number, line[:-1])
        return decode_entry(line[:-1], what=f"{self.manifest_path}: entry {number}")

    def _range(self, keys: str, values: str | None, prefix: int) -> Iterator[int]:
        array = self._arrays[keys]
        # Version 2 keeps 4-byte prefixes: the key is then the digest's first 4 bytes.
        key = np.uint64(prefix) >> np.uint64(64 - 8 * array.itemsize)
        key = key.astype(array.dtype)
        lo = int(np.searchsorted(array, key, side="left"))
        hi = int(np.searchsorted(array, key, side="right"))
        for position in range(lo, hi):
            yield position if values is None else int(self._arrays[values][position])

    def exact(self, sha256: str) -> list[ManifestEntry]:
        """Return the entries whose ``sha256`` is ``sha256`` (hex), in manifest order."""
        return [entry for _, entry in self.exact_numbered(sha256)]

    def exact_numbered(self, sha256: str) -> list[tuple[int, ManifestEntry]]:
        """Like :meth:`exact`, with each entry's number (its manifest line, from 0)."""
        found = [(n, self.entry(n)) for n in self._range("shaPrefix", None, prefix(sha256))]
        return [(n, e) for n, e in found if e.sha256 == sha256]

    def normalized(self, text_sha256: str) -> list[ManifestEntry]:
        """Return the entries whose ``textSha256`` is ``text_sha256``, in manifest order."""
        return [entry for _, entry in self.normalized_numbered(text_sha256)]

    def normalized_numbered(self, text_sha256: str) -> list[tuple[int, ManifestEntry]]:
        """Like :meth:`normalized`, with each entry's number (its manifest line, from 0)."""
        found = [(n, self.entry(n)) for n in self.text_sha_candidates(text_sha256)]
        return sorted((n, e) for n, e in found if e.textSha256 == text_sha256)

    def text_sha_candidates(self, text_sha256: str) -> list[int]:
        """The entries whose ``textSha256`` may be ``text_sha256`` (same first 8 bytes), by
        number, unchecked: the caller reads each entry and compares."""
        return list(self._range("textShaPrefix", "textShaEntry", prefix(text_sha256)))

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
        lo, lengths = self.postings(prints)
        return self.candidates_in(lo, lengths, (lengths > 0) & (lengths <= max_postings))

    def postings(self, prints: U64) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Where each of ``prints`` starts in the inverted index, and how many entries hold it
        (what :meth:`text_candidates` needs; the parts of a partitioned manifest add up their
        counts before skipping boilerplate, so that they skip what one file would).

        Raises:
            FormatError: the sidecar's fingerprint sections are corrupt (checked on first use).
        """
        if self._check_prints is not None:
            self._check_prints()
            self._check_prints = None
        if "fpKeys" in self._arrays:  # version 2: by key, in buckets
            keys: PackedKeys = self._arrays["fpKeys"]  # type: ignore[assignment]
            return keys.postings(prints)
        fp_hash = self._arrays["fpHash"]
        if not len(prints) or not len(fp_hash):
            empty = np.zeros(len(prints), dtype=np.intp)
            return empty, empty
        lo = np.searchsorted(fp_hash, prints, side="left").astype(np.intp)
        hi = np.searchsorted(fp_hash, prints, side="right").astype(np.intp)
        return lo, hi - lo

    def candidates_in(
        self,
        lo: npt.NDArray[np.intp],
        lengths: npt.NDArray[np.intp],
        keep: npt.NDArray[np.bool_],
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """:meth:`text_candidates` from :meth:`postings`, for the fingerprints ``keep`` marks."""
        empty = np.zeros(0, dtype=np.intp)
        lo, lengths = lo[keep], lengths[keep]
        total = int(lengths.sum())
        if total == 0:
            return empty, empty, empty
        fp_entry = self._arrays["fpEntry"]
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
        text = np.sort(self._hashes()[a["fpEntry"] == number])
        images = np.flatnonzero(a["imageEntry"] == number)
        image = int(a["imageHash"][images[0]]) if len(images) else None
        return ContentPrints(None, text, image)

    def _hashes(self) -> U64:
        """Every fingerprint of the inverted index, in its order (aligned with ``fpEntry``)."""
        if "fpKeys" in self._arrays:
            keys: PackedKeys = self._arrays["fpKeys"]  # type: ignore[assignment]
            return keys.hashes()
        return self._arrays["fpHash"]

    def prints_by_id(self) -> dict[str, ContentPrints]:
        """Return the fingerprints the sidecar holds for each entry id (what merging needs).

        Raises:
            FormatError: the fingerprint sections are corrupt.
            LocalIOError: the manifest cannot be read.
        """
        if self._check_prints is not None:
            self._check_prints()
            self._check_prints = None
        a = self._arrays
        ids = [self.entry(n).id for n in range(self.size)]
        order = np.argsort(a["fpEntry"], kind="stable")
        hashes, owners = self._hashes()[order], a["fpEntry"][order]
        bounds = np.searchsorted(owners, np.arange(self.size + 1), side="left")
        images = dict(zip(a["imageEntry"].tolist(), a["imageHash"].tolist(), strict=True))
        result: dict[str, ContentPrints] = {}
        for number, entry_id in enumerate(ids):
            text = np.array(hashes[bounds[number] : bounds[number + 1]])
            image = images.get(number)
            if len(text) or image is not None:
                result[entry_id] = ContentPrints(None, np.sort(text), image)
        return result


def _popcount(values: U64) -> npt.NDArray[np.intp]:
    counter = getattr(np, "bitwise_count", None)
    if counter is not None:
        return np.asarray(counter(values), dtype=np.intp)
    bits = np.unpackbits(values.view(np.uint8).reshape(-1, 8), axis=1)  # pragma: no cover
    counts: npt.NDArray[np.intp] = bits.sum(axis=1).astype(np.intp)  # pragma: no cover
    return counts  # pragma: no cover
