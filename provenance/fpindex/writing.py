"""Writing sidecars: from a manifest, from the entries just written, and by merging shards'."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from provenance._files import atomic_writer
from provenance.errors import InputError
from provenance.fingerprints import ContentPrints
from provenance.fpindex.index import FingerprintIndex
from provenance.fpindex.layout import U32, U64, encode
from provenance.fpindex.scan import ManifestScan, prefixes, scan_manifest
from provenance.fpsidecar import SUFFIX, sidecar_path
from provenance.manifest import ManifestEntry, entry_lines


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
    scan = scan_manifest(manifest_path)
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
    text_prefix = prefixes([entries[number].textSha256 or "" for number in text_numbers])
    # Stable: entries of equal prefixes stay in entry order.
    by_prefix = np.argsort(text_prefix, kind="stable")
    scan = ManifestScan(
        manifest_digest,
        [e.id for e in entries],
        offsets,
        prefixes([e.sha256 for e in entries]),
        text_prefix[by_prefix],
        np.array(text_numbers, dtype=np.uint32)[by_prefix],
    )
    return _write_scan(scan, prints, output, what=str(output))


def _write_scan(
    scan: ManifestScan, prints: Mapping[str, ContentPrints], target: Path, *, what: str
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


def pack_prints(entries: Sequence[ManifestEntry], prints: Mapping[str, ContentPrints]) -> bytes:
    """Return the fingerprints of ``entries`` (in order; None for those ``prints`` does not
    name) as bytes for a task to hand to another (:func:`unpack_prints`): the entry count,
    then per entry its text fingerprint count, an image flag and pHash, then the fingerprints.
    """
    count = len(entries)
    found = [prints.get(e.id) for e in entries]
    sizes = np.array([0 if p is None else len(p.text) for p in found], dtype="<u4")
    flags = np.array([p is not None and p.image is not None for p in found], dtype=np.uint8)
    images = np.array(
        [p.image if p is not None and p.image is not None else 0 for p in found], dtype="<u8"
    )
    texts = [np.asarray(p.text, dtype="<u8") for p in found if p is not None and len(p.text)]
    hashes = np.concatenate(texts) if texts else np.zeros(0, dtype="<u8")
    return b"".join(
        (
            count.to_bytes(8, "little"),
            sizes.tobytes(),
            flags.tobytes(),
            images.tobytes(),
            hashes.tobytes(),
        )
    )


def unpack_prints(data: bytes) -> list[ContentPrints | None]:
    """Return what :func:`pack_prints` packed, per entry in order (None: no fingerprints).

    Raises:
        ValueError: ``data`` is not what :func:`pack_prints` wrote.
    """
    count = int.from_bytes(data[:8], "little")
    position = 8
    sizes = np.frombuffer(data, dtype="<u4", count=count, offset=position)
    position += 4 * count
    flags = np.frombuffer(data, dtype=np.uint8, count=count, offset=position)
    position += count
    images = np.frombuffer(data, dtype="<u8", count=count, offset=position)
    position += 8 * count
    hashes = np.frombuffer(data, dtype="<u8", offset=position).astype(np.uint64)
    if len(hashes) != int(sizes.sum()):
        raise ValueError("packed fingerprints of the wrong length")
    bounds = np.zeros(count + 1, dtype=np.intp)
    np.cumsum(sizes, out=bounds[1:])
    result: list[ContentPrints | None] = []
    for k in range(count):
        text = hashes[bounds[k] : bounds[k + 1]]
        image = int(images[k]) if flags[k] else None
        result.append(ContentPrints(None, text, image) if len(text) or image is not None else None)
    return result


def _write(target: Path, manifest_digest: str, count: int, arrays: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    with atomic_writer(target) as handle:
        for piece in encode(manifest_digest, count, arrays):
            digest.update(piece)
            handle.write(piece)
    return digest.hexdigest()


def read_entry_prints(manifest_path: Path, sidecar: Path) -> dict[str, ContentPrints]:
    """Return the fingerprints a sidecar holds for each entry id of its manifest.

    Raises:
        InputError, FormatError: as :meth:`FingerprintIndex.open`.
    """
    with FingerprintIndex.open(manifest_path, sidecar) as index:
        return index.prints_by_id()


def prints_of(manifest_path: Path) -> dict[str, ContentPrints] | None:
    """Return the fingerprints the sidecar(s) of a manifest hold for each entry id, or None
    when it has none: a manifest file's ``.fp`` beside it, or every sidecar part a partitioned
    manifest's index lists (each read once and checked against the digest listed).

    Raises:
        InputError: the index lists sidecar parts that are not there.
        FormatError: a sidecar is corrupt, or belongs to another manifest.
        DigestMismatchError: a sidecar part is not the one the index lists.
    """
    from provenance.fpsidecar import open_part_sidecars
    from provenance.partitions import is_partitioned

    if not is_partitioned(manifest_path):
        sidecar = sidecar_path(manifest_path)
        return read_entry_prints(manifest_path, sidecar) if sidecar.exists() else None
    sidecars = open_part_sidecars(manifest_path, None)
    if not sidecars.index.has_fingerprints:
        return None
    if not sidecars.used:
        raise InputError(f"{manifest_path}: {sidecars.note}")
    prints: dict[str, ContentPrints] = {}
    for k, part in enumerate(sidecars.index.parts):
        part_path = sidecars.directory / part.file
        with FingerprintIndex.from_sidecar(part_path, sidecars.open_part(k)) as index:
            prints.update(index.prints_by_id())
    return prints


def merge_sidecars(
    inputs: list[Path], merged_manifest: Path, output: Path | None = None
) -> tuple[Path, str] | None:
    """Merge the sidecars of manifests ``inputs`` (files or partitioned) into the sidecar of
    the manifest file ``merged_manifest``.

    Returns:
        The merged sidecar's path and digest, or None when no input has a sidecar.

    Raises:
        InputError: some inputs have a sidecar and others do not.
        FormatError, DigestMismatchError: a sidecar is corrupt, or not the one listed.
    """
    found = merged_prints(inputs)
    return None if found is None else write_sidecar(merged_manifest, found, output)


def merged_prints(inputs: list[Path]) -> dict[str, ContentPrints] | None:
    """The fingerprints of every input's sidecar(s) by entry id (:func:`prints_of`), or None
    when no input has any.

    Raises:
        InputError: some inputs have sidecars and others do not; and as :func:`prints_of`.
    """
    found = [prints_of(path) for path in inputs]
    if all(f is None for f in found):
        return None
    if any(f is None for f in found):
        missing = [str(p) for p, f in zip(inputs, found, strict=True) if f is None]
        raise InputError(
            f"{missing[0]}: has no fingerprint index ({SUFFIX}) while other inputs do; build"
            " every shard the same way"
        )
    prints: dict[str, ContentPrints] = {}
    for each in found:
        assert each is not None
        prints.update(each)
    return prints
