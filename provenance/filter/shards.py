"""``filter`` over several records files (globs such as ``crawl/*.parquet``) as one dataset, one
task per shard on an executor (local or Ray).

A shard is a records file, or a range of the row groups of a large Parquet file (DESIGN section
8). Each task filters its shard as :func:`provenance.filter.apply_lists` filters a file (same
per-record decisions) into its own kept and removed files, and returns its counts. The listed
``sha256`` and ``text-sha256`` digests are written once, by hash-prefix bucket
(:func:`provenance.lists.joins.write_buckets`); a task computes its records' digests, joins each
bucket of them with the listed bucket in DuckDB, and matches URLs with the lists' own matcher
(:meth:`ListIndex.match_urls`), which together give exactly :meth:`ListIndex.match_records`.
The driver adds the counts up into one report and concatenates the outputs in input order, in
the inputs' format (Parquet re-batched as one file's filter writes it): the result is the same
bytes whatever the executor and the shards. Nothing is written unless every task succeeded.
The records files must share one format (and, for CSV and Parquet, one header or schema); each
file's records are checked as a single-file filter checks them, including the refusal of a file
in which no record has a URL while URL entries are applied.
"""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from provenance import _json
from provenance._files import atomic_write, atomic_writer
from provenance.errors import InputError, LocalIOError
from provenance.filter._records import BATCH_SIZE, batches, check_some_url, filter_records
from provenance.filter.report import MAX_EXAMPLES, Tally, build_report, records_notes
from provenance.filter.selection import list_cache, select_lists
from provenance.filter_report import FilterReport
from provenance.lists.cache import CachedList
from provenance.lists.match import NO_MATCH, Digest, ListIndex, RecordMatch
from provenance.records import DEFAULT_COLUMNS, Columns, Record, detect_format
from provenance.sharded import ROWS_PER_SHARD, records_shards
from provenance.trust import TrustStore

__all__ = ["filter_inputs"]


@dataclass(frozen=True, slots=True)
class _Listed:
    """The listed digests of the lists applied, one Parquet file per hash-prefix bucket."""

    content: tuple[str, ...]
    text: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Task:
    path: str
    cached: tuple[CachedList, ...]
    kept: str
    removed: str | None
    columns: Columns
    keep_missing_url: bool
    row_groups: tuple[int, int] | None = None
    listed: _Listed | None = None


def _join_all(
    parts: list[tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]], files: Sequence[str]
) -> dict[int, tuple[int, ...]]:
    """Join digests (rows and record numbers) with the listed bucket files, a bucket a query."""
    from provenance.lists import joins

    if not parts or not files:
        return {}
    rows = np.concatenate([r for r, _ in parts])
    numbers = np.concatenate([n for _, n in parts])
    of_row = joins.bucket_numbers(rows, len(files))
    found: dict[int, tuple[int, ...]] = {}
    for bucket, listed in enumerate(files):
        chosen = np.flatnonzero(of_row == bucket)
        if not len(chosen):
            continue
        mine, refs = joins.join_rows(rows[chosen], numbers[chosen], listed)
        for number, ref in zip(mine.tolist(), refs.tolist(), strict=True):
            found[number] = (*found.get(number, ()), ref)
    return found


class _BucketMatcher:
    """Matches a shard's records as :meth:`ListIndex.match_records` does, with the digests
    joined by bucket: one pass computes every record's digests and joins them (only those
    digests are held), then each batch gets its digest matches and its URLs' matches."""

    def __init__(self, path: Path, index: ListIndex, task: _Task) -> None:
        from provenance.filter._digests import record_digests
        from provenance.lists.digests import digest_rows
        from provenance.records import iter_records

        assert task.listed is not None
        self._index = index
        held: dict[bool, list[tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]]] = {
            False: [],
            True: [],
        }
        first = 0
        records = iter_records(path, columns=task.columns, row_groups=task.row_groups)
        for batch in batches(records, BATCH_SIZE):
            digests = record_digests(batch, path.parent, index, str(path))
            for text, values in zip((False, True), digests, strict=True):
                present = [n for n, d in enumerate(values) if d is not None]
                if present:
                    rows = digest_rows(cast("list[Digest]", [values[n] for n in present]))
                    held[text].append((rows, np.asarray(present, dtype=np.int64) + first))
            first += len(batch)
        # Matches by record number, taken in order as the batches come (each batch once).
        self._content = sorted(_join_all(held[False], task.listed.content).items(), reverse=True)
        self._text = sorted(_join_all(held[True], task.listed.text).items(), reverse=True)

    @staticmethod
    def _take(
        pending: list[tuple[int, tuple[int, ...]]], first: int, end: int
    ) -> dict[int, tuple[int, ...]]:
        taken = {}
        while pending and pending[-1][0] < end:
            number, refs = pending.pop()
            taken[number - first] = refs
        return taken

    def __call__(self, batch: list[Record], first: int) -> list[RecordMatch]:
        index = self._index
        count = len(batch)
        url_refs: list[tuple[int, ...]] | None = None
        problems: dict[int, str] = {}
        url_hits: Iterable[int] = ()
        if index.has_url_entries:
            url_refs, problems = index.match_urls([r.url for r in batch])
            url_hits = itertools.compress(range(count), url_refs)
        content = self._take(self._content, first, first + count)
        text = self._take(self._text, first, first + count)
        results = [NO_MATCH] * count
        for number in sorted({*url_hits, *content, *text, *problems}):
            refs = content.get(number, ()) + text.get(number, ())
            if url_refs is not None:
                refs += url_refs[number]
            hits = tuple(index.hit(ref) for ref in sorted(set(refs)))
            results[number] = RecordMatch(hits, problems.get(number))
        return results


@dataclass(slots=True)
class _Counts:
    """A tally without its index: what a task sends back."""

    input: int = 0
    kept: int = 0
    removed: int = 0
    unevaluable: int = 0
    missing_url: int = 0
    with_url: int = 0
    examples: list[dict[str, str]] = field(default_factory=list)
    missing_url_examples: list[str] = field(default_factory=list)
    lists: list[tuple[dict[str, int], int]] = field(default_factory=list)


def _filter_one(task: _Task) -> _Counts:
    index = ListIndex([c.list for c in task.cached])
    tally = Tally(index, keep_missing_url=task.keep_missing_url)
    removed = Path(task.removed) if task.removed is not None else None
    path = Path(task.path)
    matcher = _BucketMatcher(path, index, task) if task.listed is not None else None
    filter_records(
        path,
        index,
        tally,
        Path(task.kept),
        removed,
        None,
        columns=task.columns,
        row_groups=task.row_groups,
        matcher=matcher,
        # A file cut into ranges is checked whole, by the driver.
        check_urls=task.row_groups is None,
    )
    return _Counts(
        tally.input,
        tally.kept,
        tally.removed,
        tally.unevaluable,
        tally.missing_url,
        tally.with_url,
        tally.examples,
        tally.missing_url_examples,
        [(dict(t.matched), t.removed) for t in tally.lists],
    )


def _add(tally: Tally, counts: _Counts) -> None:
    tally.input += counts.input
    tally.kept += counts.kept
    tally.removed += counts.removed
    tally.unevaluable += counts.unevaluable
    tally.missing_url += counts.missing_url
    tally.with_url += counts.with_url
    tally.examples.extend(counts.examples[: MAX_EXAMPLES - len(tally.examples)])
    room = MAX_EXAMPLES - len(tally.missing_url_examples)
    tally.missing_url_examples.extend(counts.missing_url_examples[:room])
    for mine, (matched, removed) in zip(tally.lists, counts.lists, strict=True):
        for category, number in matched.items():
            mine.matched[category] += number
        mine.removed += removed


def _concatenate(parts: list[Path], output: Path, fmt: str) -> None:
    """Write ``parts`` (outputs of one format) into ``output`` as one file, in order.

    Raises:
        InputError: CSV headers or Parquet schemas differ between inputs.
        LocalIOError: writing failed (nothing is left behind).
    """
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pq.ParquetFile(parts[0]).schema_arrow
        with atomic_writer(output) as handle:
            writer = pq.ParquetWriter(handle, schema)
            try:
                rows: list[dict[str, Any]] = []
                for part in parts:
                    source = pq.ParquetFile(part)
                    if not source.schema_arrow.equals(schema):
                        raise InputError(
                            f"{output}: the inputs' Parquet schemas differ; filter files of"
                            " one schema together"
                        )
                    # Re-batched as one file's filter writes its rows (BATCH_SIZE a table), so
                    # the bytes do not depend on how the dataset was cut into shards.
                    for batch in source.iter_batches(batch_size=BATCH_SIZE):
                        rows.extend(batch.to_pylist())
                        while len(rows) >= BATCH_SIZE:
                            table = pa.Table.from_pylist(rows[:BATCH_SIZE], schema=schema)
                            writer.write_table(table)
                            del rows[:BATCH_SIZE]
                if rows:
                    writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            finally:
                writer.close()
        return
    header: bytes | None = None
    with atomic_writer(output) as handle:
        for part in parts:
            with part.open("rb") as source:
                if fmt == "csv":
                    line = source.readline()
                    if header is None:
                        header = line
                        handle.write(line)
                    elif line != header:
                        raise InputError(
                            f"{output}: the inputs' CSV headers differ; filter files with one"
                            " header together"
                        )
                shutil.copyfileobj(source, handle)


def _write_listed(index: ListIndex, directory: Path, buckets: int | None) -> _Listed | None:
    """Write the listed digests by bucket; None when no digest is listed."""
    from provenance.lists import joins

    content = index.listed_digests(text=False)
    text = index.listed_digests(text=True)
    if content is None and text is None:
        return None
    if buckets is None:
        total = sum(len(side[0]) for side in (content, text) if side is not None)
        buckets = max(1, min(1 << 12, total >> 16))
    files: list[tuple[str, ...]] = []
    for name, side in (("content", content), ("text", text)):
        if side is None:
            files.append(())
            continue
        paths = joins.write_buckets(*side, directory, side=name, buckets=buckets)
        files.append(tuple(str(p) for p in paths))
    return _Listed(files[0], files[1])


def filter_inputs(
    inputs: Sequence[Path],
    lists: str | None,
    store: TrustStore,
    *,
    at: dt.datetime,
    kept_path: Path,
    removed_path: Path | None = None,
    report_path: Path | None = None,
    selectors: Sequence[str] = (),
    columns: Columns = DEFAULT_COLUMNS,
    keep_missing_url: bool = False,
    executor: str = "local",
    ray_address: str | None = None,
    workers: int | None = None,
    rows_per_shard: int = ROWS_PER_SHARD,
    buckets: int | None = None,
) -> FilterReport:
    """Apply the lists of a cache (or a repository URL) to several records files as one
    dataset, one task per shard (a file, or a range of at least ``rows_per_shard`` rows of a
    Parquet file's row groups), the listed digests in ``buckets`` hash-prefix buckets (default:
    about 65,536 listed digests a bucket).

    Returns:
        The filter report of the whole dataset.

    Raises:
        InputError: a directory among the inputs, inputs of different formats, headers or
            schemas; and as :func:`provenance.filter.filter_file` (each file's error names it).
        ShardFailedError, UnavailableError: a worker died; Ray cannot be started or reached.
        LocalIOError: reading or writing failed (no output is left half-written).
    """
    from provenance.executors import make_executor

    formats = set()
    for path in inputs:
        if path.is_dir():
            raise InputError(f"{path}: a directory; several inputs must be records files")
        formats.add(detect_format(path))
    if len(formats) > 1:
        raise InputError(f"the inputs mix formats ({', '.join(sorted(formats))}); use one")
    fmt = formats.pop()
    workdir = kept_path.with_name(f".{kept_path.name}.shards-{uuid.uuid4().hex[:12]}")
    try:
        with list_cache(lists, store=store, at=at) as cache:
            cached = tuple(select_lists(cache, selectors, at=at, store=store))
            if not cached:
                raise InputError("no exclusion list to apply; run 'provenance lists fetch' first")
            index = ListIndex([c.list for c in cached])
            listed = _write_listed(index, workdir / "listed", buckets)
            tasks: list[_Task] = []
            names: list[str] = []
            for path in inputs:
                for shard in records_shards(path, columns, rows=rows_per_shard):
                    folder = workdir / f"{len(tasks):06d}"
                    folder.mkdir(parents=True)
                    tasks.append(
                        _Task(
                            str(path),
                            cached,
                            str(folder / kept_path.name),
                            str(folder / removed_path.name) if removed_path is not None else None,
                            columns,
                            keep_missing_url,
                            shard.row_groups,
                            listed,
                        )
                    )
                    names.append(shard.name)
            tally = Tally(index, keep_missing_url=keep_missing_url)
            by_file: dict[str, Tally] = {}
            with make_executor(executor, workers=workers, address=ray_address) as runner:
                results = runner.map(_filter_one, tasks, names=names)
                for task, counts in zip(tasks, results, strict=True):
                    _add(tally, counts)
                    if task.row_groups is not None:
                        of_file = by_file.setdefault(task.path, Tally(index, keep_missing_url))
                        of_file.input += counts.input
                        of_file.with_url += counts.with_url
            for path_text, of_file in by_file.items():
                check_some_url(Path(path_text), index, of_file, columns)
            notes = records_notes(index, tally, columns, keep_missing_url)
            report = build_report(tally, list(cached), at=at, notes=notes)
            _concatenate([Path(t.kept) for t in tasks], kept_path, fmt)
            if removed_path is not None:
                _concatenate([Path(t.removed) for t in tasks if t.removed], removed_path, fmt)
            if report_path is not None:
                atomic_write(report_path, _json.pretty(report.to_dict()))
            return report
    except OSError as exc:
        raise LocalIOError(f"{workdir}: {exc.strerror}") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
