"""Exclusion joins at scale: manifest digests against listed digests, bucketed by hash prefix,
each bucket joined by DuckDB inside one task (DESIGN section 8; never an engine's shuffle join).

SHA-256 values are uniform, so splitting both sides by their leading bits gives balanced buckets
with no shuffle: bucket ``b`` of the manifest can only meet bucket ``b`` of the lists. Each side
is written once as one Parquet file per bucket (:func:`write_buckets`; a ``sha256`` column of
32-byte values and an ``n`` column numbering the rows), and each task joins one pair of files
with a one-thread DuckDB (:func:`join_bucket`). Tasks run through an executor: anything with
``map(fn, items, *, names)`` that yields ``fn(item)`` in input order (:class:`ShardMap`; the
default, :class:`ThreadMap`, runs them on this machine's cores, since DuckDB releases the GIL).

:func:`match_records_bucketed` gives exactly what :meth:`ListIndex.match_records` gives for the
same records (a test holds them equal): ``sha256`` and ``text-sha256`` entries through the
bucketed joins, domain and URL entries per shard of records with the index itself.

This is the only module that imports ``duckdb`` (the ``scale`` extra); it also needs ``pyarrow``
to write the buckets.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import numpy as np
import numpy.typing as npt

from provenance.errors import InputError
from provenance.lists.digests import digest_rows
from provenance.lists.match import NO_MATCH, Digest, ListIndex, RecordMatch

T = TypeVar("T")
R = TypeVar("R")
_Ints = npt.NDArray[np.int64]
_Rows = npt.NDArray[np.uint8]


class ShardMap(Protocol):
    """What runs the tasks: ``fn(item)`` for every item, yielded in input order.

    ``fn`` is a module-level function and the items are picklable, so that a process pool or a
    Ray cluster can run them (``provenance.executors`` implements this interface).
    """

    def map(self, fn: Callable[[T], R], items: Sequence[T], *, names: Sequence[str]) -> Iterator[R]:
        """Yield ``fn(item)`` for each item, in order; ``names`` name the items in errors."""
        ...


class ThreadMap:
    """Tasks on threads of this process (DuckDB and numpy release the GIL while they work)."""

    def __init__(self, workers: int | None = None) -> None:
        """``workers`` threads (default: the CPUs this process may use)."""
        if workers is None:
            workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        self.workers = max(1, workers)

    def map(self, fn: Callable[[T], R], items: Sequence[T], *, names: Sequence[str]) -> Iterator[R]:
        """See :meth:`ShardMap.map`."""
        with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
            yield from pool.map(fn, items)


# ----------------------------------------------------------------------------------------------
# Buckets


def bucket_numbers(rows: _Rows, buckets: int) -> npt.NDArray[np.int64]:
    """The bucket of each digest: its first 16 bits scaled to ``buckets`` (balanced for any
    count, and bucket order is digest order)."""
    if not 1 <= buckets <= 1 << 16:
        raise InputError(f"bucket count {buckets}: expected 1 to 65536")
    prefix = rows[:, 0].astype(np.int64) << 8 | rows[:, 1].astype(np.int64)
    return (prefix * buckets) >> 16


def partition_numbers(rows: _Rows, partitions: int) -> npt.NDArray[np.int64]:
    """The part of a partitioned manifest (of ``partitions``) that each digest falls in: its
    first 32 bits scaled, as :func:`provenance.partitions.partition_of` computes it."""
    if not 1 <= partitions <= 1 << 16:
        raise InputError(f"partition count {partitions}: expected 1 to 65536")
    prefix = np.zeros(rows.shape[0], dtype=np.int64)
    for column in range(4):
        prefix = prefix << 8 | rows[:, column].astype(np.int64)
    return (prefix * partitions) >> 32


def _digest_table(rows: _Rows, numbers: _Ints, **more: Any) -> Any:
    """An Arrow table of 32-byte ``sha256`` values and their ``n``, and ``more`` columns."""
    import pyarrow as pa

    part = np.ascontiguousarray(rows)
    column = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(32), len(part), [None, pa.py_buffer(part.tobytes())]
    )
    return pa.table({"sha256": column, "n": pa.array(numbers, type=pa.int64()), **more})


def _write_groups(
    rows: _Rows,
    numbers: _Ints,
    of_row: _Ints,
    directory: Path,
    *,
    side: str,
    count: int,
    compression: str = "zstd",
) -> list[Path]:
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    order = np.argsort(of_row, kind="stable")
    bounds = np.searchsorted(of_row[order], np.arange(count + 1))
    paths = []
    for bucket in range(count):
        chosen = order[bounds[bucket] : bounds[bucket + 1]]
        path = directory / f"{side}-{bucket:05d}.parquet"
        table = _digest_table(rows[chosen], numbers[chosen])
        pq.write_table(table, path, compression=compression)
        paths.append(path)
    return paths


def write_buckets(
    rows: _Rows, numbers: _Ints, directory: Path, *, side: str, buckets: int
) -> list[Path]:
    """Write ``rows`` (32-byte digests) and their ``numbers`` as one Parquet file per bucket,
    ``directory/SIDE-BBBBB.parquet`` (every bucket has a file, perhaps empty).

    Returns:
        The files, in bucket order.
    """
    of_row = bucket_numbers(rows, buckets)
    return _write_groups(rows, numbers, of_row, directory, side=side, count=buckets)


def write_partition_buckets(
    rows: _Rows, numbers: _Ints, directory: Path, *, side: str, partitions: int
) -> list[Path]:
    """:func:`write_buckets` with the buckets of a partitioned manifest of ``partitions``
    parts (:func:`partition_numbers`): bucket ``k`` can only meet part ``k``.

    Returns:
        The files, in part order.
    """
    of_row = partition_numbers(rows, partitions)
    # Scratch files read once, of digests that do not compress: written as they are.
    return _write_groups(
        rows, numbers, of_row, directory, side=side, count=partitions, compression="none"
    )


def join_rows(rows: _Rows, numbers: _Ints, listed: str) -> tuple[_Ints, _Ints]:
    """Join digests held in memory (``rows``, numbered ``numbers``) with one bucket file, with
    DuckDB (the task's own side is not written to disk first).

    Returns:
        ``(numbers, listed numbers)``: one pair per equal digest, in no particular order.
    """
    connection = _connection()
    connection.register("held", _digest_table(rows, numbers))
    try:
        result = connection.execute(
            "SELECT l.n AS left_n, r.n AS right_n"
            " FROM held AS l JOIN read_parquet(?) AS r USING (sha256)",
            [listed],
        ).fetchnumpy()
    finally:
        connection.unregister("held")
    return (
        np.asarray(result["left_n"], dtype=np.int64),
        np.asarray(result["right_n"], dtype=np.int64),
    )


def write_keyed(path: Path, keys: _Ints, rows: _Rows, numbers: _Ints, ids: Sequence[str]) -> None:
    """Write digests with their numbers and ids to one Parquet file, one row group per key
    (in key order), so that a reader of one key (:func:`join_keyed`, :func:`first_repeated`)
    skips the other row groups by their statistics."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    table = _digest_table(
        rows[order],
        numbers[order],
        id=pa.array([ids[i] for i in order.tolist()], type=pa.string()),
        key=pa.array(sorted_keys, type=pa.int64()),
    )
    starts = np.flatnonzero(np.diff(sorted_keys, prepend=-1)).tolist() + [len(order)]
    with pq.ParquetWriter(path, table.schema, compression="none") as writer:
        for start, end in itertools.pairwise(starts):
            writer.write_table(table.slice(start, end - start))


def join_keyed(files: Sequence[str], key: int, listed: str) -> tuple[_Ints, list[str], _Ints]:
    """Join the rows of ``key`` in ``files`` (written by :func:`write_keyed`) with one bucket
    file on ``sha256``.

    Returns:
        ``(numbers, ids, listed numbers)``: one triple per equal digest, in no given order.
    """
    if not files:
        return np.zeros(0, dtype=np.int64), [], np.zeros(0, dtype=np.int64)
    result = (
        _connection()
        .execute(
            "SELECT l.n AS left_n, l.id AS id, r.n AS right_n"
            " FROM (SELECT sha256, n, id FROM read_parquet(?) WHERE key = ?) AS l"
            " JOIN read_parquet(?) AS r USING (sha256)",
            [list(files), key, listed],
        )
        .fetchnumpy()
    )
    return (
        np.asarray(result["left_n"], dtype=np.int64),
        [str(i) for i in result["id"].tolist()],
        np.asarray(result["right_n"], dtype=np.int64),
    )


def first_repeated(files: Sequence[str], key: int) -> tuple[int, str] | None:
    """The first repetition of an id among the rows of ``key`` in ``files`` (written by
    :func:`write_keyed`, ids in the ``id`` column): the ``(n, id)`` of the lowest-numbered row
    whose id an earlier row has, or None."""
    if not files:
        return None
    # Fetched to the end: a result left unfinished would block the next query on this
    # worker's connection (a Ray worker runs many tasks).
    rows = (
        _connection()
        .execute(
            "SELECT n, id FROM (SELECT n, id, row_number() OVER (PARTITION BY id ORDER BY n)"
            " AS seen FROM read_parquet(?) WHERE key = ?) WHERE seen = 2 ORDER BY n LIMIT 1",
            [list(files), key],
        )
        .fetchall()
    )
    return (int(rows[0][0]), str(rows[0][1])) if rows else None


@dataclass(frozen=True, slots=True)
class BucketJob:
    """One task: join the rows of two bucket files on ``sha256``."""

    left: str
    right: str


_LOCAL = threading.local()
_INHERITED: list[Any] = []


def _connection() -> Any:
    """This worker thread's DuckDB connection (one thread: the executor gives parallelism).

    A process forked from one that had a connection (a process pool's worker) makes its own,
    and keeps the inherited one unused and unclosed: using or closing it waits for threads
    of the parent's, which do not exist in the child, forever.
    """
    connection = getattr(_LOCAL, "connection", None)
    if connection is None or getattr(_LOCAL, "pid", None) != os.getpid():
        import duckdb

        if connection is not None:
            _INHERITED.append(connection)
        connection = duckdb.connect()
        connection.execute("SET threads = 1")
        _LOCAL.connection = connection
        _LOCAL.pid = os.getpid()
    return connection


def join_bucket(job: BucketJob) -> tuple[_Ints, _Ints]:
    """Join one pair of bucket files with DuckDB.

    Returns:
        ``(left numbers, right numbers)``: one pair per equal digest, in no particular order.
    """
    result = (
        _connection()
        .execute(
            "SELECT l.n AS left_n, r.n AS right_n"
            " FROM read_parquet(?) AS l JOIN read_parquet(?) AS r USING (sha256)",
            [job.left, job.right],
        )
        .fetchnumpy()
    )
    return (
        np.asarray(result["left_n"], dtype=np.int64),
        np.asarray(result["right_n"], dtype=np.int64),
    )


def bucketed_join(
    left: Sequence[Path], right: Sequence[Path], executor: ShardMap | None = None
) -> tuple[_Ints, _Ints]:
    """Join bucket ``b`` of ``left`` with bucket ``b`` of ``right`` for every ``b``, as tasks.

    Returns:
        ``(left numbers, right numbers)`` of every equal pair, sorted by left then right number.

    Raises:
        InputError: the two sides have different bucket counts.
    """
    if len(left) != len(right):
        raise InputError(f"{len(left)} buckets on one side, {len(right)} on the other")
    jobs = [BucketJob(str(a), str(b)) for a, b in zip(left, right, strict=True)]
    names = [f"bucket {n} ({Path(job.left).name})" for n, job in enumerate(jobs)]
    parts = list((executor or ThreadMap()).map(join_bucket, jobs, names=names))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    lefts = np.concatenate([p[0] for p in parts])
    rights = np.concatenate([p[1] for p in parts])
    order = np.lexsort((rights, lefts))
    return lefts[order], rights[order]


# ----------------------------------------------------------------------------------------------
# Records, as ListIndex.match_records matches them


def _query_rows(digests: Sequence[Digest | None]) -> tuple[_Rows, _Ints]:
    """The present digests as rows, and their positions."""
    present = [n for n, d in enumerate(digests) if d is not None]
    values = [digests[n] for n in present]
    if not values:
        return np.zeros((0, 32), dtype=np.uint8), np.zeros(0, dtype=np.int64)
    rows = digest_rows(cast("Sequence[Digest]", values))
    return rows, np.asarray(present, dtype=np.int64)


def _digest_refs(
    index: ListIndex,
    digests: Sequence[Digest | None],
    *,
    text: bool,
    directory: Path,
    buckets: int,
    executor: ShardMap | None,
) -> dict[int, tuple[int, ...]]:
    """The entries equal to each digest that equals any, by the digest's position."""
    listed = index.listed_digests(text=text)
    if listed is None or not digests:
        return {}
    rows, positions = _query_rows(digests)
    if not rows.shape[0]:
        return {}
    kind = "text" if text else "content"
    left = write_buckets(rows, positions, directory, side=f"records-{kind}", buckets=buckets)
    right = write_buckets(*listed, directory, side=f"listed-{kind}", buckets=buckets)
    numbers, refs = bucketed_join(left, right, executor)
    grouped: dict[int, tuple[int, ...]] = {}
    for number, ref in zip(numbers.tolist(), refs.tolist(), strict=True):
        grouped[number] = (*grouped.get(number, ()), ref)
    return grouped


@dataclass(frozen=True, slots=True)
class UrlShard:
    """One task of URL matching: an index and a run of URLs."""

    index: ListIndex
    urls: Sequence[str | None]


def match_url_shard(shard: UrlShard) -> tuple[list[tuple[int, ...]], dict[int, str]]:
    """:meth:`ListIndex.match_urls` on one shard."""
    return shard.index.match_urls(shard.urls)


def match_records_bucketed(
    index: ListIndex,
    urls: Sequence[str | None],
    contents: Sequence[Digest | None],
    texts: Sequence[Digest | None],
    *,
    directory: Path,
    buckets: int = 16,
    shard_size: int = 1 << 16,
    executor: ShardMap | None = None,
) -> list[RecordMatch]:
    """Match records as :meth:`ListIndex.match_records` does, with the digest lookups done as
    bucketed DuckDB joins and the URL matching per shard of records, all as tasks.

    ``directory`` receives the bucket files (the caller removes it). The answers are exactly
    those of ``index.match_records(urls, contents, texts)``.

    Raises:
        FormatError: a hex digest is not 64 lower-case hex digits.
        InputError: ``buckets`` is not 1 to 65536.
    """
    count = len(urls)
    if len(contents) != count or len(texts) != count:
        raise InputError("urls, contents and texts must describe the same records")
    content = _digest_refs(
        index, contents, text=False, directory=directory, buckets=buckets, executor=executor
    )
    normalized = _digest_refs(
        index, texts, text=True, directory=directory, buckets=buckets, executor=executor
    )
    url_refs: list[tuple[int, ...]] = []
    problems: dict[int, str] = {}
    if index.has_url_entries:
        starts = range(0, count, shard_size)
        url_index = index.urls_only()
        shards = [UrlShard(url_index, urls[first : first + shard_size]) for first in starts]
        names = [f"records {first}-{min(count, first + shard_size) - 1}" for first in starts]
        answers = (executor or ThreadMap()).map(match_url_shard, shards, names=names)
        for first, (shard_refs, shard_problems) in zip(starts, answers, strict=True):
            url_refs += shard_refs
            problems.update({first + n: why for n, why in shard_problems.items()})
    url_hits = itertools.compress(range(count), url_refs) if url_refs else ()
    results = [NO_MATCH] * count
    for number in sorted({*url_hits, *content, *normalized, *problems}):
        refs = content.get(number, ()) + normalized.get(number, ())
        if url_refs:
            refs += url_refs[number]
        hits = tuple(index.hit(ref) for ref in sorted(set(refs)))
        results[number] = RecordMatch(hits, problems.get(number))
    return results


__all__ = [
    "BucketJob",
    "ShardMap",
    "ThreadMap",
    "bucket_numbers",
    "bucketed_join",
    "first_repeated",
    "join_bucket",
    "join_keyed",
    "join_rows",
    "match_records_bucketed",
    "partition_numbers",
    "write_buckets",
    "write_keyed",
    "write_partition_buckets",
]
