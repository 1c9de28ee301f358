"""Filtering a records file: read in batches, match, write kept and removed in input order.

Outputs are written in the input's format (JSON Lines lines as read, CSV rows under the input's
header, Parquet rows under its schema), each atomically: an error leaves neither half-written.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from provenance._files import atomic_writer
from provenance.errors import FormatError, InputError
from provenance.filter._digests import record_digests
from provenance.filter.report import Tally
from provenance.lists.match import ListIndex, RecordMatch
from provenance.records import (
    DEFAULT_COLUMNS,
    Columns,
    Record,
    RecordFormat,
    detect_format,
    file_columns,
    iter_records,
)

BATCH_SIZE = 4096
_FORMAT_NAMES = {"jsonl": "JSON Lines", "csv": "CSV", "parquet": "Parquet"}
_NONES = itertools.repeat(None)
_URL = operator.attrgetter("url")
_ID = operator.attrgetter("id")


def batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Yield ``items`` in lists of ``size`` (the last may be shorter)."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


class _Writer:
    def write(self, record: Record) -> None:
        raise NotImplementedError

    def write_many(self, records: list[Record]) -> None:
        for record in records:
            self.write(record)

    def close(self) -> None:
        """Flush what is buffered (the atomic writer then syncs and moves the file)."""

    def abort(self) -> None:
        """Release what the writer holds after an error (the atomic writer drops the file)."""

    def on_exit(self, exc_type: type[BaseException] | None, *_: object) -> bool:
        """An ``ExitStack`` exit callback: :meth:`abort` when the block raised."""
        if exc_type is not None:
            self.abort()
        return False


class _JsonlWriter(_Writer):
    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle

    def write(self, record: Record) -> None:
        self._handle.write(record.raw)
        self._handle.write(b"\n")

    def write_many(self, records: list[Record]) -> None:
        if records:
            self._handle.write(b"\n".join(map(_RAW, records)))
            self._handle.write(b"\n")


_RAW = operator.attrgetter("raw")


class _CsvWriter(_Writer):
    def __init__(self, handle: IO[bytes], fieldnames: list[str]) -> None:
        self._text = io.TextIOWrapper(handle, encoding="utf-8", newline="", write_through=False)
        self._writer = csv.DictWriter(self._text, fieldnames=fieldnames)
        self._writer.writeheader()

    def write(self, record: Record) -> None:
        self._writer.writerow(record.raw)

    def close(self) -> None:
        self._text.flush()
        self._text.detach()


class _ParquetWriter(_Writer):
    def __init__(self, handle: IO[bytes], source: Path) -> None:
        import pyarrow.parquet as pq

        self._schema = pq.ParquetFile(source).schema_arrow
        self._writer = pq.ParquetWriter(handle, self._schema)
        self._rows: list[dict[str, Any]] = []

    def write(self, record: Record) -> None:
        self._rows.append(record.raw)
        if len(self._rows) >= BATCH_SIZE:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=self._schema))
            self._rows = []

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def abort(self) -> None:
        # Closed now, while its file is open: left to the garbage collector, pyarrow would
        # print a traceback about writing to a closed file after the error message.
        with contextlib.suppress(Exception):
            self._writer.close()


def _csv_header(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            header = next(csv.reader(handle), None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FormatError(f"{path}: cannot read the CSV header: {exc}") from None
    if not header:
        raise FormatError(f"{path}: CSV header must name an 'id' column")
    return header


def _writer_for(fmt: RecordFormat, handle: IO[bytes], source: Path) -> _Writer:
    if fmt == "jsonl":
        return _JsonlWriter(handle)
    if fmt == "csv":
        return _CsvWriter(handle, _csv_header(source))
    return _ParquetWriter(handle, source)


def _check_output_name(output: Path, fmt: RecordFormat, label: str) -> None:
    try:
        implied = detect_format(output)
    except InputError:
        return
    if implied != fmt:
        raise InputError(
            f"{label} {output}: the input is {_FORMAT_NAMES[fmt]} and the output is written in"
            f" the input's format; name it with a {'.' + fmt} suffix"
        )


Matcher = Callable[[list[Record], int], list[RecordMatch]]
"""Matches a batch of records (and the number of the records before it) against the lists, as
:meth:`ListIndex.match_records` matches them."""


def index_matcher(path: Path, index: ListIndex) -> Matcher:
    """The plain matcher: each batch's digests computed and looked up in ``index``."""

    def match(batch: list[Record], first: int) -> list[RecordMatch]:
        contents, texts = record_digests(batch, path.parent, index, str(path))
        return index.match_records(list(map(_URL, batch)), contents, texts)

    return match


def check_some_url(path: Path, index: ListIndex, tally: Tally, columns: Columns) -> None:
    """Refuse a records file in which no record has a URL while URL entries are applied.

    Raises:
        InputError: naming the URL column looked for and the columns the file has (unless the
            tally keeps records without a URL).
    """
    if index.has_url_entries and tally.input and not tally.with_url and not tally.keep_missing_url:
        # Before anything is written: with a misnamed URL column every record would pass.
        present = file_columns(path, detect_format(path))
        raise InputError(
            f"{path}: no record has a URL in column {columns.url!r}, but the lists applied"
            " hold domain or URL entries, which would check nothing; the file's columns"
            f" are: {', '.join(repr(c) for c in present[:50]) or 'none'}"
            f"{', ...' if len(present) > 50 else ''}. Name the column that holds the URLs,"
            " or keep records without a URL knowingly"
        )


def filter_records(
    path: Path,
    index: ListIndex,
    tally: Tally,
    kept_path: Path,
    removed_path: Path | None,
    progress: Callable[[int], None] | None,
    *,
    columns: Columns = DEFAULT_COLUMNS,
    row_groups: tuple[int, int] | None = None,
    matcher: Matcher | None = None,
    check_urls: bool = True,
) -> None:
    """Filter the records file ``path`` into ``kept_path`` (and ``removed_path``), counting in
    ``tally``; see :func:`provenance.filter.apply_lists`.

    ``row_groups`` reads only those row groups of a Parquet file; ``matcher`` matches each
    batch (default :func:`index_matcher`); without ``check_urls`` the caller refuses a file in
    which no record has a URL (for a file filtered in several ranges).
    """
    fmt = detect_format(path)
    _check_output_name(kept_path, fmt, "kept records")
    if removed_path is not None:
        _check_output_name(removed_path, fmt, "removed records")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    url_entries = index.has_url_entries
    with contextlib.ExitStack() as stack:
        kept = _writer_for(fmt, stack.enter_context(atomic_writer(kept_path)), path)
        stack.push(kept.on_exit)
        removed = None
        if removed_path is not None:
            removed = _writer_for(fmt, stack.enter_context(atomic_writer(removed_path)), path)
            stack.push(removed.on_exit)
        match = matcher or index_matcher(path, index)
        first = 0
        records = iter_records(path, fmt, columns=columns, row_groups=row_groups)
        for batch in batches(records, BATCH_SIZE):
            urls = list(map(_URL, batch))
            results = match(batch, first)
            first += len(batch)
            no_url: list[int] = []
            if url_entries:
                no_url = list(itertools.compress(range(len(urls)), map(operator.is_, urls, _NONES)))
                tally.with_url += len(urls) - len(no_url)
            dropped = tally.add_many(list(map(_ID, batch)), results, no_url)
            # Outputs in input order: the kept records are the runs between the dropped ones.
            previous = 0
            for number in dropped:
                kept.write_many(batch[previous:number])
                previous = number + 1
            kept.write_many(batch[previous:])
            if removed is not None:
                removed.write_many([batch[number] for number in dropped])
            if progress:
                progress(len(batch))
        if check_urls:
            check_some_url(path, index, tally, columns)
        kept.close()
        if removed is not None:
            removed.close()
