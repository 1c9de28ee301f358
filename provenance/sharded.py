"""Building one manifest from many inputs, shard by shard, on an executor (local or Ray).

The inputs (records files, folders, globs of them) form one dataset. Each *shard* (a records
file, or a chunk of a folder's files) is hashed by one task, which sorts its own entries and
spills them to per-partition run files, and its ids to per-bucket id files; no task holds more
than its shard. Then one task per id bucket checks that no id appears in two shards, and one
task per partition merges that partition's runs into its part file (a streamed k-way merge)
and computes the part's aligned Merkle subtree roots from its position in the whole tree. With
fingerprints, each shard also spills its entries' fingerprints beside each run, and the
partition's task writes the part's fingerprint sidecar (holding that partition, not more). The
driver writes the index (or, for a single-file manifest, moves the one part into place) and
computes the root from the parts' subtree roots. The result is byte-identical to a one-machine
build of the same entries whatever the executor, the shards and the partition count.

Small outputs (files only, at most ``HOLD_ENTRIES``: :func:`holds`) take a fast path: the shard
tasks return their sorted entries instead of spilling them, and the driver checks the ids,
merges and writes the parts itself, as the id and part tasks would (same bytes, same errors),
with no run files and no tasks beyond the shards'.

Temporary files live beside the output (on a cluster, the output's filesystem must be one every
node sees) and are removed whatever happens; nothing is moved into place unless every task
succeeded.
"""

from __future__ import annotations

import array
import bisect
import dataclasses
import functools
import glob
import heapq
import itertools
import os
import shutil
import sys
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

import msgspec

from provenance import manifest, partitions
from provenance.errors import InputError, LocalIOError, ProvenanceError
from provenance.executors import Executor, shard_error
from provenance.records import DEFAULT_COLUMNS, Columns

# Files per shard: a Ray worker sat idle 2-5 ms between two tasks (timed inside the tasks, at
# load 4), so tasks of 1,024 small files rather than 512: the 20,000-file build took 4-9%
# less time on Ray in four A/B runs (load 4-6; 2,048 lost as much again to the last, uneven
# tasks).
_FILES_PER_SHARD = 1024
_BYTES_PER_SHARD = 64 << 20
# Without sizes asked for (plan_shards), only this many files of a folder are stat'ed first, to
# see whether its files are small (as the one-machine build samples them); a file of
# _LARGE_FILE bytes or more is one the hashing would rather do alone.
_STAT_SAMPLE = 256
_LARGE_FILE = 32 << 20
ROWS_PER_SHARD = 1 << 20
"""Rows of a Parquet file per shard (whole row groups: a file of fewer is one shard)."""
_RUN_CHUNK = 1 << 18  # bytes of a run file read at a time by a partition's merge, at most
_MIN_RUN_CHUNK = 1 << 13
# A merge holds a chunk of each of its runs (one per shard), decoded (about 3.5x the bytes):
# with many shards the chunks shrink, so that the task stays near this many bytes of lines.
_MERGE_CHUNKS_BYTES = 96 << 20
# The fast path for small outputs (:func:`build`): when the shards are files, at most this many
# of them (and, with fingerprints, at most this many bytes of content), the tasks return their
# entries to the driver, which merges and writes the parts itself: no run files, no merge
# tasks. What the driver then holds is about that of the plain path's merge task of a
# single-file manifest (the whole manifest): 0.8 KB per entry at its peak (measured with
# tracemalloc: the lines returned, the entries decoded and merged, a block being written), so
# about 54 MB at the bound, plus with fingerprints their packed fingerprints (a few bytes per
# byte of text at most).
HOLD_ENTRIES = 1 << 16
HOLD_PRINTS_BYTES = 64 << 20
_decoder = msgspec.json.Decoder(manifest.ManifestEntry)
_SHA256 = attrgetter("sha256")
_ID = attrgetter("id")
_SIZE = attrgetter("size")
_ID_PATH = attrgetter("id", "path")
_SORT_KEY = attrgetter("sha256", "id")  # ManifestEntry.sort_key, at C speed
_TEXT_SHA256 = attrgetter("textSha256")
_FIRST = itemgetter(0)
_NO_TEXT = "0" * 64


def expand_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Expand globs (``crawl/*.parquet``) in ``inputs``, in order; each match sorted.

    Raises:
        InputError: a glob matches nothing, or an input is given twice.
    """
    found: list[Path] = []
    for item in inputs:
        text = str(item)
        if glob.has_magic(text):
            matches = sorted(glob.glob(text))
            if not matches:
                raise InputError(f"{text}: matches no file")
            found.extend(Path(m) for m in matches)
        else:
            found.append(Path(text))
    seen: dict[str, Path] = {}
    for path in found:
        real = os.path.realpath(path)
        if real in seen:
            raise InputError(f"{path}: given twice (also as {seen[real]})")
        seen[real] = path
    return found


@dataclass(frozen=True, slots=True)
class Shard:
    """One unit of work: a records file (or a range of a Parquet file's row groups), or some
    files of a folder (as (id, path))."""

    name: str
    records: str | None = None
    files: tuple[tuple[str, str], ...] = ()
    columns: Columns = DEFAULT_COLUMNS
    row_groups: tuple[int, int] | None = None
    """Row groups ``first`` to ``end - 1`` of the Parquet file ``records`` only."""
    size: int = -1
    """The bytes of ``files`` as walked (-1: not known)."""


def records_shards(
    path: Path, columns: Columns = DEFAULT_COLUMNS, *, rows: int = ROWS_PER_SHARD
) -> list[Shard]:
    """The shards of one records file: a Parquet file of more than ``rows`` rows is cut into
    ranges of whole row groups (DESIGN section 8), any other file is one shard.

    Raises:
        InputError, FormatError: a Parquet file whose metadata cannot be read.
    """
    from provenance.records import detect_format, row_group_ranges

    if path.suffix.lower() not in (".parquet", ".pq") or detect_format(path) != "parquet":
        return [Shard(name=str(path), records=str(path), columns=columns)]
    ranges = row_group_ranges(path, rows)
    if len(ranges) == 1:
        return [Shard(name=str(path), records=str(path), columns=columns)]
    return [
        Shard(
            name=f"{path} (row groups {first}-{end - 1})",
            records=str(path),
            columns=columns,
            row_groups=(first, end),
        )
        for first, end in ranges
    ]


def plan_shards(inputs: Sequence[Path], **options: Any) -> list[Shard]:
    """Split ``inputs`` into shards: the list of :func:`iter_shards` (same options).

    Raises:
        As :func:`iter_shards`.
    """
    return list(iter_shards(inputs, **options))


def iter_shards(
    inputs: Sequence[Path],
    *,
    columns: Columns = DEFAULT_COLUMNS,
    exclude: set[str] | None = None,
    ignore: Callable[[str], bool] | None = None,
    symlinks: manifest.SymlinkPolicy = "skip",
    stats: manifest.WalkStats | None = None,
    rows: int = ROWS_PER_SHARD,
    sizes: bool = True,
) -> Iterator[Shard]:
    """Split ``inputs`` into shards, yielded as the folders are walked (a shard as soon as
    its files are listed: :func:`provenance.manifest.walk_files_in_order`): each records file
    is one (a Parquet file, ranges of its row groups of at least ``rows`` rows:
    :func:`records_shards`), each folder is walked (ids are paths under it) and cut into
    shards of at most 1,024 files or 64 MiB, in id order.

    Without ``sizes``, a folder's files are stat'ed only when its first files (a sample) are
    large (:func:`_sizes_matter`); otherwise its shards are of 1,024 files, their size not known
    (``Shard.size`` -1). Stat'ing every file is most of the walk of many small files, and the
    tasks stat each file they open anyway. ``stats`` is complete once the iterator is.

    Raises:
        InputError: a missing input (at once, before any shard is yielded).
        InputError, UnsafePathError, LocalIOError: as :func:`provenance.manifest.walk_files`
            (once the shards before the offending entry are yielded).
    """
    for path in inputs:
        if not os.path.lexists(path):
            raise InputError(f"{path}: no such file or directory")
    return _shards_of(inputs, columns, exclude, ignore, symlinks, stats, rows, sizes)


def _shards_of(
    inputs: Sequence[Path],
    columns: Columns,
    exclude: set[str] | None,
    ignore: Callable[[str], bool] | None,
    symlinks: manifest.SymlinkPolicy,
    stats: manifest.WalkStats | None,
    rows: int,
    sizes: bool,
) -> Iterator[Shard]:
    for path in inputs:
        if path.is_dir():
            walk = functools.partial(
                manifest.walk_files_in_order, path, exclude=exclude, ignore=ignore,
                symlinks=symlinks,
            )  # fmt: skip
            if sizes:
                yield from _cut_sized(path, itertools.chain.from_iterable(walk(stats=stats)))
                continue
            sampled = manifest.WalkStats()
            runs = walk(stats=sampled, stat_files=_STAT_SAMPLE)
            # The files listed until the sample's are all known (or the walk ends).
            listed: list[manifest.FileRef] = []
            known = 0
            for run in runs:
                listed += run
                known += len(run) - list(map(_SIZE, run)).count(-1)
                if known >= _STAT_SAMPLE:
                    break
            if _sizes_matter(listed):
                yield from _cut_sized(path, itertools.chain.from_iterable(walk(stats=stats)))
                continue
            # Cut by count alone (the sample's sizes cannot reach a shard's bytes), at C
            # speed: the same shards as _cut_sized gives.
            pending: list[manifest.FileRef] = []
            for run in itertools.chain((listed,), runs):
                pending += run
                cut = len(pending) - len(pending) % _FILES_PER_SHARD
                for start in range(0, cut, _FILES_PER_SHARD):
                    yield _count_shard(path, pending[start : start + _FILES_PER_SHARD])
                del pending[:cut]
            if pending:
                yield _count_shard(path, pending)
            if stats is not None:
                _add_stats(stats, sampled)
        else:
            yield from records_shards(path, columns, rows=rows)


def _cut_sized(root: Path, files: Iterable[manifest.FileRef]) -> Iterator[Shard]:
    """Shards of ``files`` (in id order) of at most 1,024 files or 64 MiB."""
    chunk: list[tuple[str, str]] = []
    size, known = 0, True
    for ref in files:
        chunk.append((ref.id, ref.path))
        size += max(ref.size, 0)
        known = known and ref.size >= 0
        if len(chunk) >= _FILES_PER_SHARD or size >= _BYTES_PER_SHARD:
            yield _files_shard(root, chunk, size if known else -1)
            chunk, size, known = [], 0, True
    if chunk:
        yield _files_shard(root, chunk, size if known else -1)


def _count_shard(root: Path, files: list[manifest.FileRef]) -> Shard:
    """A shard of ``files``, cut by count: its size is known if theirs all are."""
    cut = list(map(_SIZE, files))
    return _files_shard(root, list(map(_ID_PATH, files)), -1 if min(cut) < 0 else sum(cut))


def _add_stats(stats: manifest.WalkStats, more: manifest.WalkStats) -> None:
    for field in dataclasses.fields(manifest.WalkStats):
        setattr(stats, field.name, getattr(stats, field.name) + getattr(more, field.name))


def _sizes_matter(files: Sequence[manifest.FileRef]) -> bool:
    """Whether shards of ``files`` should be cut by size too: the files stat'ed (the first
    ones walked) are not all small, so that a shard's count of them may be far more than 64
    MiB."""
    known = list(filter((0).__le__, map(_SIZE, files)))
    return bool(known) and (
        max(known) >= _LARGE_FILE or sum(known) * _FILES_PER_SHARD > _BYTES_PER_SHARD * len(known)
    )


def _files_shard(root: Path, chunk: list[tuple[str, str]], size: int) -> Shard:
    first, last = chunk[0][0], chunk[-1][0]
    name = f"{root}/{first}" if len(chunk) == 1 else f"{root} ({first} .. {last})"
    return Shard(name=name, files=tuple(chunk), size=size)


def shard_entries(
    shard: Shard, prints: dict[str, Any] | None = None
) -> list[manifest.ManifestEntry]:
    """Hash one shard, returning its entries in manifest order.

    With ``prints`` (a dict), contents are fingerprinted as one machine's build does: text
    entries get ``textSha256`` and ``prints`` each entry id's
    :class:`provenance.fingerprints.ContentPrints` that has near-duplicate fingerprints.

    Raises:
        As :func:`provenance.manifest.build_from_records` for a records file, and for files as
        :func:`provenance.manifest.build_from_directory` (the path of the first failing file,
        by id, named).
    """
    if shard.records is not None:
        return manifest.build_from_records(
            Path(shard.records),
            columns=shard.columns,
            prints=prints,
            row_groups=shard.row_groups,
        )
    entries = []
    digests = hash_paths([path for _, path in shard.files], fingerprint=prints is not None)
    for (entry_id, path), digest in zip(shard.files, digests, strict=True):
        if digest.error is not None:
            # Files are in id order: the first failure by id is named, as one machine does.
            raise digest.error.exception(path)
        found = digest.prints
        entries.append(
            manifest.ManifestEntry(
                id=entry_id,
                sha256=digest.sha256,
                size=digest.size,
                textSha256=None if found is None else found.text_sha256,
            )
        )
        if (
            prints is not None
            and found is not None
            and (len(found.text) or found.image is not None)
        ):
            prints[entry_id] = found
    entries.sort(key=_SORT_KEY)
    return entries


def hash_paths(paths: Sequence[str], *, fingerprint: bool = False) -> list[manifest.FileDigest]:
    """:func:`provenance.manifest.hash_file` of each of ``paths``, in order, in this process.

    The files are hashed a task of the hashing pool at a time (one loop over many files, as
    the one-machine build does, rather than a call per file: a few microseconds less per
    small file); a large file that such a task leaves to be hashed alone is hashed alone.

    Returns:
        Their digests (problems in ``FileDigest.error``, not raised).
    """
    from provenance.manifest.hashing import hash_task

    digests: list[manifest.FileDigest] = []
    while len(digests) < len(paths):
        rest = list(paths[len(digests) :])
        for result in hash_task(rest, fingerprint):
            if isinstance(result, int):  # a large file, left to be hashed alone
                result = manifest.hash_file(paths[len(digests)], fingerprint=fingerprint)
            digests.append(result)
    return digests


# ----------------------------------------------------------------------------------------------
# Tasks (module-level functions: executors pickle them by reference)


@dataclass(frozen=True, slots=True)
class _ShardTask:
    shard: Shard
    index: int
    workdir: str
    partitions: int
    spill_ids: bool
    fingerprints: bool = False
    hold: bool = False
    """Return the entries (the fast path) instead of spilling them."""


@dataclass(frozen=True, slots=True)
class _ShardDone:
    counts: tuple[int, ...]
    data_bytes: int
    held: _HeldRun | None = None
    """Held (``_ShardTask.hold``): the shard's entries, in manifest order."""


@dataclass(frozen=True, slots=True)
class _HeldRun:
    """A held shard's entries in manifest order, compactly (44 bytes an entry without text
    digests, about 40% of their manifest lines): small enough for Ray to return a shard's in
    its reply, not through its object store (which cost 2 ms more a task, measured), and
    cheap to make into entries (:func:`_held_run`). The ids are the shard's own."""

    order: bytes
    """Each entry's place in ``Shard.files`` (little-endian 64-bit integers)."""
    digests: bytes
    """Their sha256 digests, raw."""
    sizes: bytes
    """Their sizes (little-endian 64-bit integers)."""
    texts: bytes | None = None
    """Their ``textSha256`` digests, raw (32 zero bytes where there is none), if any has one."""
    prints: bytes | None = None
    """With fingerprints: their fingerprints, packed (``fpindex.pack_prints``)."""


def _int_bytes(values: Iterable[int]) -> bytes:
    numbers = array.array("q", values)
    if sys.byteorder != "little":
        numbers.byteswap()
    return numbers.tobytes()


def _ints(data: bytes) -> list[int]:
    numbers = array.array("q")
    numbers.frombytes(data)
    if sys.byteorder != "little":
        numbers.byteswap()
    return numbers.tolist()


def _hold_run(
    shard: Shard, entries: list[manifest.ManifestEntry], prints: dict[str, Any] | None
) -> _HeldRun:
    """A task's ``entries`` (of ``shard``, in manifest order) as :class:`_HeldRun`."""
    place = {entry_id: k for k, (entry_id, _) in enumerate(shard.files)}
    texts = list(map(_TEXT_SHA256, entries))
    packed = None
    if prints is not None:
        from provenance.fpindex import pack_prints

        packed = pack_prints(entries, prints)
    return _HeldRun(
        order=_int_bytes(map(place.__getitem__, map(_ID, entries))),
        digests=bytes.fromhex("".join(map(_SHA256, entries))),
        sizes=_int_bytes(map(_SIZE, entries)),
        texts=(
            None
            if texts.count(None) == len(texts)
            else bytes.fromhex("".join(t or _NO_TEXT for t in texts))
        ),
        prints=packed,
    )


def _hex_digests(data: bytes) -> list[str]:
    text = data.hex()
    return [text[i : i + 64] for i in range(0, len(text), 64)]


def _run_name(workdir: str, partition: int, shard: int) -> str:
    return os.path.join(workdir, f"run-{partition:05d}-{shard:06d}.jsonl")


def _prints_name(workdir: str, partition: int, shard: int) -> str:
    return os.path.join(workdir, f"prints-{partition:05d}-{shard:06d}.bin")


def _ids_name(workdir: str, bucket: int, shard: int) -> str:
    return os.path.join(workdir, f"ids-{bucket:05d}-{shard:06d}.txt")


def _hash_shard(task: _ShardTask) -> _ShardDone:
    """Hash a shard; spill its entries by partition and its ids by bucket (both sorted), and
    with fingerprints each partition's fingerprints beside its run, in the run's order. Held
    (the fast path), return its entries and fingerprints instead."""
    prints: dict[str, Any] | None = {} if task.fingerprints else None
    entries = shard_entries(task.shard, prints)
    data_bytes = sum(filter(None, map(_SIZE, entries)))
    if task.hold:
        return _ShardDone((), data_bytes, _hold_run(task.shard, entries, prints))
    _spill(task, entries, prints)
    return _ShardDone(_partition_counts(entries, task.partitions), data_bytes)


def _partition_cuts(entries: list[manifest.ManifestEntry], count: int) -> list[int]:
    """Where each partition starts in ``entries`` (in sha256 order), and their end: each
    partition is one slice, found by bisection at its first hex prefix
    (partitions.partition_of)."""
    shas = list(map(_SHA256, entries))
    cuts = [0, *(bisect.bisect_left(shas, partitions.first_prefix(k, count)) for k in
                 range(1, count)), len(entries)]  # fmt: skip
    return cuts


def _partition_counts(entries: list[manifest.ManifestEntry], count: int) -> tuple[int, ...]:
    cuts = _partition_cuts(entries, count)
    return tuple(cuts[k + 1] - cuts[k] for k in range(count))


def _spill(
    task: _ShardTask, entries: list[manifest.ManifestEntry], prints: dict[str, Any] | None
) -> None:
    count = task.partitions
    cuts = _partition_cuts(entries, count)
    for k in range(count):
        start, end = cuts[k], cuts[k + 1]
        if start < end:
            _write(_run_name(task.workdir, k, task.index), manifest.entry_lines(entries[start:end]))
            if prints is not None:
                from provenance.fpindex import pack_prints

                packed = pack_prints(entries[start:end], prints)
                _write(_prints_name(task.workdir, k, task.index), packed)
    if task.spill_ids:
        suffix = f"\t{task.index}\n"
        for bucket, listed in enumerate(_ids_by_bucket(list(map(_ID, entries)), count)):
            if listed:
                data = (suffix.join(listed) + suffix).encode("utf-8")
                _write(_ids_name(task.workdir, bucket, task.index), data)


def _ids_by_bucket(ids: list[str], count: int) -> list[list[str]]:
    """``ids`` split as the id tasks split them (bucket: the CRC-32 of the UTF-8 id modulo
    ``count``), each bucket sorted."""
    buckets: list[list[str]] = [[] for _ in range(count)]
    crc32 = zlib.crc32
    for entry_id, bucket in zip(ids, [crc32(i.encode("utf-8")) % count for i in ids], strict=True):
        buckets[bucket].append(entry_id)
    for listed in buckets:
        listed.sort()
    return buckets


def _write(path: str, data: bytes) -> None:
    try:
        with open(path, "xb") as handle:
            handle.write(data)
    except OSError as exc:
        raise LocalIOError(f"{path}: cannot write: {exc.strerror}") from None


@dataclass(frozen=True, slots=True)
class _IdsTask:
    bucket: int
    files: tuple[str, ...]
    names: tuple[str, ...]


def _check_ids(task: _IdsTask) -> None:
    """Refuse an id that two shards both hold (each shard's own ids are unique already)."""

    def lines(path: str) -> Iterator[str]:
        with open(path, encoding="utf-8") as handle:
            yield from handle

    _check_id_lines([lines(f) for f in task.files], task.names)


def _check_id_lines(files: Sequence[Iterable[str]], names: Sequence[str]) -> None:
    """Refuse an id that two of ``files`` (one bucket's id files: ``id<TAB>shard`` lines,
    sorted) both hold, naming the two shards."""
    previous: tuple[str, str] | None = None
    for line in heapq.merge(*files):
        entry_id, _, shard = line.rstrip("\n").rpartition("\t")
        if previous is not None and previous[0] == entry_id:
            first, second = names[int(previous[1])], names[int(shard)]
            raise InputError(f"id {entry_id!r} appears in two inputs: {first} and {second}")
        previous = (entry_id, shard)


@dataclass(frozen=True, slots=True)
class _PartTask:
    k: int
    partitions: int
    offset: int
    runs: tuple[str, ...]
    output: str
    prints: tuple[str, ...] | None = None
    """With fingerprints: each run's packed fingerprints (the sidecar is ``output`` + .fp)."""


def _merge_part(task: _PartTask) -> partitions.PartInfo:
    """Merge one partition's sorted runs into its part file (a streamed k-way merge), and
    with fingerprints write the part's sidecar (the part's entries and fingerprints are then
    held: memory is bounded by the partition, not the dataset)."""
    if task.prints is not None:
        return _merge_part_with_prints(task, task.prints)

    size = max(_MIN_RUN_CHUNK, min(_RUN_CHUNK, _MERGE_CHUNKS_BYTES // max(1, len(task.runs))))

    def chunks(path: str) -> Iterator[list[manifest.ManifestEntry]]:
        # Streamed a chunk of whole lines at a time: memory is the runs' chunks, not the part.
        with open(path, "rb") as handle:
            while lines := handle.readlines(size):
                yield _decoder.decode_lines(b"".join(lines))

    merged = itertools.chain.from_iterable(merge_runs([chunks(r) for r in task.runs]))
    return partitions.write_part(
        merged, Path(task.output), offset=task.offset, k=task.k, partitions=task.partitions
    )


def _merge_part_with_prints(task: _PartTask, packed: tuple[str, ...]) -> partitions.PartInfo:
    from provenance.fingerprints import ContentPrints

    prints: dict[str, ContentPrints] = {}
    runs: list[list[manifest.ManifestEntry]] = []
    for run, prints_file in zip(task.runs, packed, strict=True):
        with open(run, "rb") as handle:
            lines = handle.read()
        with open(prints_file, "rb") as handle:
            runs.append(_with_prints(lines, handle.read(), prints, f"{prints_file}: does not"
                                     f" match {run}"))  # fmt: skip
    merged = list(itertools.chain.from_iterable(merge_runs([iter((run,)) for run in runs])))
    return _write_part_with_prints(merged, prints, task.output, task.offset, task.k,
                                   task.partitions)  # fmt: skip


def _with_prints(
    lines: bytes, packed: bytes, prints: dict[str, Any], mismatch: str
) -> list[manifest.ManifestEntry]:
    """Decode a run's ``lines``, adding the fingerprints ``packed`` beside them to ``prints``."""
    entries = _decoder.decode_lines(lines)
    _add_prints(entries, packed, prints, mismatch)
    return entries


def _add_prints(
    entries: list[manifest.ManifestEntry], packed: bytes, prints: dict[str, Any], mismatch: str
) -> None:
    """Add the fingerprints ``packed`` beside ``entries`` (a run's) to ``prints``."""
    from provenance import fpindex

    found = fpindex.unpack_prints(packed)
    if len(found) != len(entries):
        raise LocalIOError(mismatch)
    for entry, content in zip(entries, found, strict=True):
        if content is not None:
            prints[entry.id] = content


def _write_part_with_prints(
    merged: list[manifest.ManifestEntry],
    prints: dict[str, Any],
    output: str,
    offset: int,
    k: int,
    count: int,
) -> partitions.PartInfo:
    """Write part ``k`` of ``merged`` (in manifest order) and its fingerprint sidecar."""
    from provenance import fpindex

    path = Path(output)
    part = partitions.write_part(merged, path, offset=offset, k=k, partitions=count)
    sidecar = path.with_name(partitions.sidecar_name(k))
    digest = fpindex.write_sidecar_for(merged, part.sha256, prints, sidecar)
    size = sidecar.stat().st_size
    return dataclasses.replace(
        part, fingerprints=partitions.SidecarPart(sidecar.name, digest, size)
    )


def merge_runs(
    runs: Sequence[Iterator[list[manifest.ManifestEntry]]],
) -> Iterator[list[manifest.ManifestEntry]]:
    """Merge runs (each in strictly increasing manifest order, read in chunks) into manifest
    order, yielded in batches: ``heapq.merge`` of the runs' entries, at C speed.

    Each round, every loaded entry up to the smallest of the runs' last loaded keys is taken
    (no entry still unread can come before it: each run's unread entries follow its loaded
    ones), sorted at once (Timsort merges the runs' sorted slices in C), and yielded; then the
    run that set that bound reads its next chunk. Memory: about one chunk per run.
    """
    buffers: list[list[manifest.ManifestEntry]] = [[] for _ in runs]
    live = set(range(len(runs)))
    while True:
        for r in sorted(live):
            while not buffers[r]:
                chunk = next(runs[r], None)
                if chunk is None:
                    live.discard(r)
                    break
                buffers[r] = chunk
        if not live:
            rest = [entry for buffer in buffers for entry in buffer]
            if rest:
                manifest.sort_entries(rest)
                yield rest
            return
        bound = min(_SORT_KEY(buffers[r][-1]) for r in live)
        batch: list[manifest.ManifestEntry] = []
        for r, buffer in enumerate(buffers):
            if buffer:
                cut = bisect.bisect_right(buffer, bound, key=_SORT_KEY)
                batch += buffer[:cut]
                buffers[r] = buffer[cut:]
        manifest.sort_entries(batch)
        yield batch


# ----------------------------------------------------------------------------------------------
# The driver


def holds(shards: Sequence[Shard], *, fingerprints: bool) -> bool:
    """Whether :func:`build` takes its fast path for ``shards``: files only, at most
    ``HOLD_ENTRIES`` of them, and with ``fingerprints`` at most ``HOLD_PRINTS_BYTES`` bytes of
    them (sizes known), so that what the driver holds is bounded before a task runs."""
    if any(s.records is not None for s in shards):
        return False  # a records file's entry count is not known before it is read
    if sum(len(s.files) for s in shards) > HOLD_ENTRIES:
        return False
    sizes = [s.size for s in shards]
    return not fingerprints or (min(sizes, default=0) >= 0 and sum(sizes) <= HOLD_PRINTS_BYTES)


def _held_run(
    result: _ShardDone, shard: Shard, prints: dict[str, Any] | None
) -> list[manifest.ManifestEntry]:
    """A held task's entries (of ``shard``), made from its :class:`_HeldRun` at C speed (its
    fingerprints added to ``prints``)."""
    held = result.held
    assert held is not None  # a held task returns its entries
    ids = list(map(_FIRST, map(shard.files.__getitem__, _ints(held.order))))
    shas, sizes = _hex_digests(held.digests), _ints(held.sizes)
    if not len(ids) == len(shas) == len(sizes):
        raise LocalIOError(f"{shard.name}: a task's entries are not whole")
    if held.texts is None:
        entries = list(map(manifest.ManifestEntry, ids, shas, sizes))
    else:
        texts = [None if t == _NO_TEXT else t for t in _hex_digests(held.texts)]
        entries = [
            manifest.ManifestEntry(id=i, sha256=sha, size=size, textSha256=text)
            for i, sha, size, text in zip(ids, shas, sizes, texts, strict=True)
        ]
    if prints is not None and held.prints is not None:
        _add_prints(entries, held.prints, prints, f"{shard.name}: packed fingerprints do not"
                    " match their entries")  # fmt: skip
    return entries


def _write_held(
    runs: list[list[manifest.ManifestEntry]],
    prints: dict[str, Any] | None,
    names: list[str],
    staging: Path,
    output: Path,
    *,
    count: int,
    check_ids: bool,
) -> list[partitions.PartInfo]:
    """The fast path's finish, here: what the id tasks and the part tasks of
    :func:`_merge_spilled` do, on the entries the shard tasks returned (``runs``, decoded as
    they came: :func:`_held_run`), errors named as those tasks' are."""
    if check_ids:
        try:
            _check_held_ids(runs, names, count)
        except ProvenanceError as exc:
            raise shard_error(exc, str(output)) from None
    merged = list(itertools.chain.from_iterable(merge_runs([iter((run,)) for run in runs])))
    cuts = [0, len(merged)] if count == 1 else _partition_cuts(merged, count)
    parts = []
    for k in range(count):
        entries = merged[cuts[k] : cuts[k + 1]]
        path = str(staging / partitions.part_name(k))
        try:
            if prints is None:
                part = partitions.write_part(
                    entries, Path(path), offset=cuts[k], k=k, partitions=count
                )
            else:
                own = {e.id: prints[e.id] for e in entries if e.id in prints}
                part = _write_part_with_prints(entries, own, path, cuts[k], k, count)
        except (ProvenanceError, OSError) as exc:
            raise shard_error(exc, partitions.part_name(k)) from None
        parts.append(part)
    return parts


def _check_held_ids(runs: list[list[manifest.ManifestEntry]], names: list[str], count: int) -> None:
    """The id tasks' check on held runs: a repeated id is found with a set, then named as
    the id tasks name it (the first bucket holding one, in bucket order)."""
    ids = [list(map(_ID, run)) for run in runs]
    if len(set(itertools.chain.from_iterable(ids))) == sum(map(len, ids)):
        return
    by_run = [_ids_by_bucket(listed, count) for listed in ids]
    for bucket in range(count):
        files = [
            [f"{i}\t{index}\n" for i in buckets[bucket]]
            for index, buckets in enumerate(by_run)
            if buckets[bucket]
        ]
        if len(files) > 1:
            _check_id_lines(files, names)


def _merge_spilled(
    executor: Executor,
    done: list[_ShardDone],
    names: list[str],
    workdir: Path,
    staging: Path,
    output: Path,
    *,
    count: int,
    fingerprints: bool,
) -> list[partitions.PartInfo]:
    """The plain path's finish: tasks check the spilled ids bucket by bucket, then merge each
    partition's runs into its part in ``staging``."""
    id_tasks = []
    for bucket in range(count):
        files = [_ids_name(str(workdir), bucket, i) for i in range(len(names))]
        present = tuple(f for f in files if os.path.exists(f))
        if len(present) > 1:
            id_tasks.append(_IdsTask(bucket, present, tuple(names)))
    for _ in executor.map(_check_ids, id_tasks, names=[str(output)] * len(id_tasks)):
        pass
    part_tasks, offset = [], 0
    for k in range(count):
        holding = [i for i, d in enumerate(done) if d.counts[k]]
        runs = tuple(_run_name(str(workdir), k, i) for i in holding)
        packed = tuple(_prints_name(str(workdir), k, i) for i in holding)
        part_tasks.append(
            _PartTask(
                k,
                count,
                offset,
                runs,
                str(staging / partitions.part_name(k)),
                packed if fingerprints else None,
            )
        )
        offset += sum(d.counts[k] for d in done)
    return list(
        executor.map(_merge_part, part_tasks, names=[partitions.part_name(k) for k in range(count)])
    )


class _TaskStream:
    """The shard tasks of :func:`build`, made as its shards come (a plan still being walked).

    A list of shards is held or not as a whole (:func:`holds`). Shards that come one by one
    are held while the fast path's bounds allow, counting the shards so far; once one would
    cross them, it and every later shard are spilled (``held_all`` false), and the driver
    spills the runs it holds as their tasks would have (:func:`_spill_held`).
    """

    def __init__(
        self, shards: Iterable[Shard], workdir: str, count: int, spill_ids: bool, fingerprints: bool
    ) -> None:
        self._shards = shards
        self._make = functools.partial(
            _ShardTask, workdir=workdir, partitions=count, spill_ids=spill_ids,
            fingerprints=fingerprints,
        )  # fmt: skip
        self._fingerprints = fingerprints
        self._fixed = (
            holds(shards, fingerprints=fingerprints) if isinstance(shards, Sequence) else None
        )
        self._files = self._bytes = 0
        self.held_all = True if self._fixed is None else self._fixed
        self.tasks: list[_ShardTask] = []

    def __iter__(self) -> Iterator[_ShardTask]:
        for index, shard in enumerate(self._shards):
            task = self._make(shard=shard, index=index, hold=self._holds(shard))
            self.tasks.append(task)
            yield task

    def _holds(self, shard: Shard) -> bool:
        if self._fixed is not None:
            return self._fixed
        self._files += len(shard.files)
        self._bytes += shard.size
        self.held_all = self.held_all and (
            shard.records is None
            and self._files <= HOLD_ENTRIES
            and (not self._fingerprints or (shard.size >= 0 and self._bytes <= HOLD_PRINTS_BYTES))
        )
        return self.held_all

    def finish_walk(self) -> None:
        """Walk the rest of the shards (after a task failed), so that a problem the walk
        finds is reported as where no task ran: raises it, if there is one."""
        if not isinstance(self._shards, Sequence):
            for _ in self._shards:
                pass


def _task_name(task: _ShardTask) -> str:
    return task.shard.name


def _spill_held(
    tasks: list[_ShardTask],
    runs: dict[int, list[manifest.ManifestEntry]],
    done: list[_ShardDone],
    prints: dict[str, Any] | None,
) -> None:
    """Spill the held ``runs`` (by task index) as their tasks would have, for the plain path
    (:func:`_TaskStream`: the shards crossed the fast path's bounds after these were held)."""
    for index, entries in runs.items():
        task = tasks[index]
        try:
            _spill(task, entries, prints)
        except (ProvenanceError, OSError) as exc:
            raise shard_error(exc, task.shard.name) from None
        done[index] = _ShardDone(
            _partition_counts(entries, task.partitions), done[index].data_bytes
        )


def build(
    shards: Iterable[Shard],
    output: Path,
    *,
    executor: Executor,
    partition_count: int | None,
    progress: Callable[[int], None] | None = None,
    check_ids: bool = True,
    fingerprints: bool = False,
) -> manifest.ManifestSummary:
    """Build the manifest of ``shards`` into ``output``: a single file when
    ``partition_count`` is None, else a partitioned manifest of that many parts.

    ``shards`` may be an iterator (:func:`iter_shards`): the first tasks then start while the
    inputs are still being walked. A problem the walk finds is reported in place of a task's
    failure, as when the walk ends before any task starts.

    With ``fingerprints``, text entries get ``textSha256`` and each part its fingerprint
    sidecar, written by the part's own task (for a single file, ``output`` + ``.fp``; for a
    partitioned manifest, ``part-NNNNN.jsonl.fp``, listed in the index).

    ``check_ids`` false skips the check that no id is in two shards, for shards that cannot
    share one (the files of one folder).

    Small outputs take a fast path (:func:`holds`): the shard tasks return their entries and
    this process checks the ids, merges and writes the parts, as the id and part tasks would
    (same bytes, same errors); larger ones are spilled to sorted runs and merged by tasks.

    Returns:
        The summary of what was written (for a partitioned manifest, the index's digest).

    Raises:
        InputError: an id in two shards (both named), or a bad output directory; and as the
            shards' builders, with the shard named; and as the walk of ``shards``.
        ShardFailedError: a worker died (the shard named).
        LocalIOError: reading or writing failed. Nothing is left behind on any error.
    """
    count = partition_count or 1
    partitions.check_partitions(count)
    if partition_count is not None:
        partitions.check_output_dir(output)
    workdir = output.with_name(f".{output.name}.runs-{uuid.uuid4().hex[:12]}")
    staging: Path | None = None
    try:
        workdir.mkdir()
        stream = _TaskStream(shards, str(workdir), count, check_ids, fingerprints)
        tasks = stream.tasks
        done: list[_ShardDone] = []
        runs: dict[int, list[manifest.ManifestEntry]] = {}  # held: the tasks' entries
        prints: dict[str, Any] | None = {} if fingerprints else None
        try:
            for result in executor.map(_hash_shard, stream, names=_task_name):
                task = tasks[len(done)]
                if task.hold:
                    # Made as each comes, while the other tasks run, not all after the last.
                    runs[task.index] = _held_run(result, task.shard, prints)
                done.append(result)
                if progress is not None:
                    progress(result.data_bytes)
        except ProvenanceError:
            stream.finish_walk()
            raise
        names = [task.shard.name for task in tasks]
        staging = partitions.staging_dir(output)
        if stream.held_all:
            parts = _write_held(
                list(runs.values()), prints, names, staging, output, count=count,
                check_ids=check_ids,
            )  # fmt: skip
        else:
            _spill_held(tasks, runs, done, prints)
            parts = _merge_spilled(
                executor, done, names, workdir, staging, output, count=count,
                fingerprints=fingerprints,
            )  # fmt: skip
        index = partitions.make_index(parts)
        if partition_count is None:
            part = parts[0]
            try:
                os.replace(staging / part.file, output)
                if part.fingerprints is not None:
                    os.replace(
                        staging / part.fingerprints.file,
                        output.with_name(output.name + partitions.SIDECAR_SUFFIX),
                    )
            except OSError as exc:
                raise LocalIOError(f"{output}: cannot write: {exc.strerror}") from None
            return manifest.ManifestSummary(
                part.sha256, part.entries, part.data_bytes, index.merkle_root
            )
        data = partitions.index_bytes(index)
        from provenance._files import atomic_write

        atomic_write(staging / partitions.INDEX_NAME, data)
        partitions.publish(staging, output)
        staging = None
        return partitions.summary_of(index, data)
    except OSError as exc:
        raise LocalIOError(f"{workdir}: {exc.strerror}") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def build_dataset(
    inputs: Sequence[str | Path],
    output: Path,
    *,
    partitioned: bool = False,
    partition_count: int = 16,
    executor: str = "local",
    ray_address: str | None = None,
    workers: int | None = None,
    ignore: Callable[[str], bool] | None = None,
    symlinks: manifest.SymlinkPolicy = "skip",
    columns: Columns = DEFAULT_COLUMNS,
    fingerprints: bool = True,
    stats: manifest.WalkStats | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    rows_per_shard: int = ROWS_PER_SHARD,
) -> manifest.ManifestSummary:
    """Hash ``inputs`` (records files, folders or globs of them: one dataset) into the manifest
    ``output``, partitioned into ``partition_count`` parts when ``partitioned``. A Parquet
    file of more than ``rows_per_shard`` rows is hashed as ranges of its row groups.

    One input into one file on the local executor is built as
    :func:`provenance.manifest_files.build_manifest_file` builds it; anything else is built
    shard by shard (:func:`build`), byte-identical, fingerprint sidecars included (one per
    part of a partitioned manifest).

    Raises:
        InputError: a glob that matches nothing, an input given twice, an id in two inputs;
            and as the builders.
        ShardFailedError, UnavailableError: a worker died; Ray cannot be started or reached.
        LocalIOError: reading or writing failed (nothing is left half-written).
    """
    from provenance.executors import make_executor
    from provenance.manifest_files import build_manifest_file, sidecar_path

    paths = expand_inputs(inputs)
    if len(paths) == 1 and not partitioned and executor == "local":
        return build_manifest_file(
            paths[0],
            output,
            workers=workers or (os.cpu_count() or 1),
            ignore=ignore,
            symlinks=symlinks,
            columns=columns,
            fingerprints=fingerprints,
            stats=stats,
            progress=progress,
            on_total=on_total,
        )
    if not any(p.is_dir() for p in paths) and (ignore is not None or symlinks == "error"):
        raise InputError("exclusions and the symlink policy apply to folders, not records files")
    exclude = {os.path.realpath(output), os.path.realpath(sidecar_path(output))}
    shards: Iterable[Shard] = iter_shards(
        paths,
        columns=columns,
        exclude=exclude,
        ignore=ignore,
        symlinks=symlinks,
        stats=stats,
        rows=rows_per_shard,
        # Sizes bound what the fast path holds of fingerprints, and make the progress total.
        sizes=fingerprints or on_total is not None,
    )
    # The files of one folder have distinct ids; records files check their own, but the
    # row-group ranges of one Parquet file are checked against each other.
    check_ids = len(paths) > 1
    if on_total is not None or not (check_ids or paths[0].is_dir()):
        shards = list(shards)  # a total to report first, or one records file's ranges
        check_ids = check_ids or any(s.row_groups is not None for s in shards)
        if on_total is not None and all(p.is_dir() for p in paths):
            on_total(sum(s.size for s in shards))
    with make_executor(executor, workers=workers, address=ray_address) as runner:
        summary = build(
            shards,
            output,
            executor=runner,
            partition_count=partition_count if partitioned else None,
            progress=progress,
            check_ids=check_ids,
            fingerprints=fingerprints,
        )
    if not partitioned:
        # Files left from an earlier build of this output would describe another manifest.
        manifest.write_shard_record(output, None, summary)
        try:
            if not fingerprints:
                sidecar_path(output).unlink(missing_ok=True)
        except OSError as exc:
            raise LocalIOError(f"{sidecar_path(output)}: cannot remove: {exc.strerror}") from None
    return summary


def merge_to_partitioned(
    inputs: Sequence[Path], output: Path, *, partition_count: int
) -> manifest.ManifestSummary:
    """Merge manifests (files, shards of one build, or partitioned) into the partitioned
    manifest ``output``: as ``manifest.merge_manifests`` merges them, then split into parts.
    The inputs' fingerprint sidecars (all or none of them must have some) are carried over,
    one sidecar per part, byte-identical to a partitioned build's.

    Raises:
        InputError: some inputs have fingerprint sidecars and others not; and as
            :func:`provenance.manifest.merge_manifests` and
            :func:`provenance.partitions.write_partitioned`.
        FormatError, DigestMismatchError: a sidecar is corrupt or not the one listed.
        LocalIOError: as those.
    """
    from provenance import fpindex

    partitions.check_partitions(partition_count)
    partitions.check_output_dir(output)
    prints = fpindex.merged_prints(list(inputs))
    writer: partitions.PartSidecarWriter | None = None
    if prints is not None:
        found = prints

        def writer(
            entries: list[manifest.ManifestEntry], part: partitions.PartInfo, path: Path
        ) -> partitions.SidecarPart:
            own = {e.id: found[e.id] for e in entries if e.id in found}
            digest = fpindex.write_sidecar_for(entries, part.sha256, own, path)
            return partitions.SidecarPart(path.name, digest, path.stat().st_size)

    merged = output.with_name(f".{output.name}.merge-{uuid.uuid4().hex[:12]}.jsonl")
    try:
        manifest.merge_manifests(inputs, merged)
        return partitions.write_partitioned(
            manifest.iter_manifest(merged), output, partitions=partition_count, sidecars=writer
        )
    finally:
        merged.unlink(missing_ok=True)


def _hash_paths(paths: tuple[str, ...]) -> list[manifest.FileDigest]:
    """Hash files in order (a task): problems in ``FileDigest.error``, not raised."""
    return [manifest.hash_file(path) for path in paths]


def hash_tree_on(
    root: Path,
    *,
    executor: str,
    ray_address: str | None = None,
    workers: int | None = None,
    select: Callable[[str], bool] | None = None,
    exclude: set[str] | None = None,
    ignore: Callable[[str], bool] | None = None,
    symlinks: manifest.SymlinkPolicy = "skip",
    stats: manifest.WalkStats | None = None,
    progress: Callable[[int], None] | None = None,
    while_hashing: Callable[[], None] | None = None,
) -> list[tuple[manifest.FileRef, manifest.FileDigest | None]]:
    """:func:`provenance.manifest.hash_tree` on an executor: ``root`` is walked here, the files
    ``select`` accepts are hashed in shards of files (tasks), and ``while_hashing`` runs here
    once the first shard is back. Same result as ``hash_tree``.

    Raises:
        InputError, UnsafePathError, LocalIOError: as :func:`provenance.manifest.walk_files`.
        ShardFailedError, UnavailableError: a worker died; Ray cannot be started or reached.
    """
    from provenance.executors import make_executor

    files = manifest.walk_files(
        root, exclude=exclude, ignore=ignore, symlinks=symlinks, stats=stats
    )
    chosen = [ref for ref in files if select is None or select(ref.id)]
    chunks = [
        tuple(ref.path for ref in chosen[i : i + _FILES_PER_SHARD])
        for i in range(0, len(chosen), _FILES_PER_SHARD)
    ]
    digests: dict[str, manifest.FileDigest] = {}
    with make_executor(executor, workers=workers, address=ray_address) as runner:
        results = runner.map(_hash_paths, chunks, names=[f"{root} ({c[0]} ..)" for c in chunks])
        for number, (chunk, done) in enumerate(zip(chunks, results, strict=True)):
            digests.update(zip(chunk, done, strict=True))
            if progress is not None:
                progress(sum(d.size for d in done))
            if number == 0 and while_hashing is not None:
                while_hashing()
    if not chunks and while_hashing is not None:
        while_hashing()
    if stats is not None:
        stats.hard_linked += sum(d.linked for d in digests.values())
    return [(ref, digests.get(ref.path)) for ref in files]
