"""``filter`` over several records files (globs such as ``crawl/*.parquet``) as one dataset, one
task per file on an executor (local or Ray).

Each task filters its file as :func:`provenance.filter.apply_lists` filters one (same matcher,
same per-record decisions) into its own kept and removed files, and returns its counts. The
driver adds the counts up into one report and concatenates the outputs in input order, in the
inputs' format: the result is the same whatever the executor. Nothing is written unless every
task succeeded. The records files must share one format (and, for CSV and Parquet, one header or
schema); each file's records are checked as a single-file filter checks them, including the
refusal of a file in which no record has a URL while URL entries are applied.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from provenance import _json
from provenance._files import atomic_write, atomic_writer
from provenance.errors import InputError, LocalIOError
from provenance.filter._records import filter_records
from provenance.filter.report import MAX_EXAMPLES, Tally, build_report
from provenance.filter.selection import list_cache, select_lists
from provenance.filter_report import FilterReport
from provenance.lists.cache import CachedList
from provenance.lists.match import ListIndex
from provenance.records import DEFAULT_COLUMNS, Columns, detect_format
from provenance.trust import TrustStore

__all__ = ["filter_inputs"]


@dataclass(frozen=True, slots=True)
class _Task:
    path: str
    cached: tuple[CachedList, ...]
    kept: str
    removed: str | None
    columns: Columns
    keep_missing_url: bool


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
    filter_records(
        Path(task.path), index, tally, Path(task.kept), removed, None, columns=task.columns
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
        import pyarrow.parquet as pq

        schema = pq.ParquetFile(parts[0]).schema_arrow
        with atomic_writer(output) as handle:
            writer = pq.ParquetWriter(handle, schema)
            try:
                for part in parts:
                    source = pq.ParquetFile(part)
                    if not source.schema_arrow.equals(schema):
                        raise InputError(
                            f"{output}: the inputs' Parquet schemas differ; filter files of"
                            " one schema together"
                        )
                    for group in range(source.num_row_groups):
                        writer.write_table(source.read_row_group(group))
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
) -> FilterReport:
    """Apply the lists of a cache (or a repository URL) to several records files as one
    dataset, one task per file.

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
            tasks = []
            for number, path in enumerate(inputs):
                folder = workdir / f"{number:06d}"
                folder.mkdir(parents=True)
                tasks.append(
                    _Task(
                        str(path),
                        cached,
                        str(folder / kept_path.name),
                        str(folder / removed_path.name) if removed_path is not None else None,
                        columns,
                        keep_missing_url,
                    )
                )
            tally = Tally(ListIndex([c.list for c in cached]), keep_missing_url=keep_missing_url)
            with make_executor(executor, workers=workers, address=ray_address) as runner:
                for counts in runner.map(_filter_one, tasks, names=[str(p) for p in inputs]):
                    _add(tally, counts)
            notes = []
            if tally.missing_url and keep_missing_url:
                notes.append(
                    f"{tally.missing_url} record(s) without a URL in column {columns.url!r} were"
                    " kept: the lists' domain and URL entries could not check them"
                )
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

