"""``provenance filter``: apply exclusion lists to training records, streaming.

The input is a records file (JSON Lines, CSV or Parquet, the columns of ``manifest build``) or a
directory. Records are read in batches, matched against every list applied (see
:mod:`provenance.lists.match`), and written in input order to KEPT or REMOVED, in the input's
format; for a directory those outputs are lists of relative paths, one per line. Memory is
bounded by the lists and one batch, never by the input.

A record is **removed** when any entry of any list matches it: its URL (``domain``,
``url-prefix``, ``url`` entries), the SHA-256 of its content (``sha256``; the UTF-8 bytes of
``text``, the file at ``path``, or the given ``sha256``) or the ``norm-text-v1`` digest of its
text (``text-sha256``). A record whose URL cannot be evaluated (WHATWG parsing fails, a
non-web scheme, an invalid host) while URL entries are applied is removed too, and counted as
``unevaluable``: applying a list means that nothing kept could be on it. For the same reason a
record **without a URL** (an empty, null or missing URL column) while URL entries are applied is
removed and counted as ``missingUrl``, unless the caller chooses to keep such records; then the
report (and a card built from it) says, per list, how many kept records its URL entries could not
check. A records file in which *no* record has a URL while URL entries are applied is refused:
the URL column is almost certainly named otherwise.

The report names every list applied exactly as a card's ``exclusions`` records it (name,
version, digest, signers, matched per category, removed, applied) plus the record counts.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import io
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from provenance import _json, schema
from provenance._files import atomic_writer
from provenance.card.model import Exclusion
from provenance.errors import FormatError, InputError, UnsafePathError
from provenance.filter_report import FilterReport, RecordCounts, UnevaluableExample
from provenance.lists.cache import CachedList
from provenance.lists.match import NO_MATCH, Digest, ListIndex, RecordMatch
from provenance.normtext import normalize_batch
from provenance.records import (
    DEFAULT_COLUMNS,
    Columns,
    Record,
    RecordFormat,
    detect_format,
    file_columns,
    iter_records,
    safe_join,
)
from provenance.trust import TrustStore, format_time

BATCH_SIZE = 4096
MAX_NORMALIZED_FILE_BYTES = 64 * 1024 * 1024
"""Files larger than this are hashed but not text-normalized (``text-sha256`` does not apply)."""
MAX_EXAMPLES = 100
"""How many unevaluable records (and records without a URL) the report names (all are counted)."""
URL_TYPES = frozenset({"domain", "url-prefix", "url"})
_FORMAT_NAMES = {"jsonl": "JSON Lines", "csv": "CSV", "parquet": "Parquet"}


# ----------------------------------------------------------------------------------------------
# The tally (pure)


@dataclass(slots=True)
class _ListTally:
    matched: dict[str, int]
    has_url_entries: bool = False
    removed: int = 0


@dataclass(slots=True)
class Tally:
    """Counts per list and per record outcome, updated one record at a time.

    ``keep_missing_url`` says what happens to a record without a URL that nothing matched
    while URL entries are applied: kept (and counted) or, by default, removed (and counted).
    """

    index: ListIndex
    keep_missing_url: bool = False
    lists: list[_ListTally] = field(default_factory=list)
    input: int = 0
    kept: int = 0
    removed: int = 0
    unevaluable: int = 0
    missing_url: int = 0
    with_url: int = 0
    """Records that had a URL (counted only while URL entries are applied)."""
    examples: list[dict[str, str]] = field(default_factory=list)
    missing_url_examples: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for the_list in self.index.lists:
            categories = sorted({entry.category for entry in the_list.entries})
            has_url = not URL_TYPES.isdisjoint({entry.type for entry in the_list.entries})
            self.lists.append(_ListTally({category: 0 for category in categories}, has_url))

    def add_missing_url(self, record_id: str) -> bool:
        """Count a record without a URL that no entry matched; return whether it is kept."""
        self.input += 1
        self.missing_url += 1
        if len(self.missing_url_examples) < MAX_EXAMPLES:
            self.missing_url_examples.append(record_id)
        if self.keep_missing_url:
            self.kept += 1
            return True
        return False

    def add(self, record_id: str, result: RecordMatch) -> bool:
        """Count one record's match; return whether it is kept."""
        self.input += 1
        if result.hits:
            self.removed += 1
            seen: set[tuple[int, str]] = set()
            lists_hit: set[int] = set()
            for hit in result.hits:
                category = self.index.entry(hit).category
                if (hit.list_number, category) not in seen:
                    seen.add((hit.list_number, category))
                    self.lists[hit.list_number].matched[category] += 1
                lists_hit.add(hit.list_number)
            for list_number in lists_hit:
                self.lists[list_number].removed += 1
            return False
        if result.unevaluable is not None:
            self.unevaluable += 1
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append({"id": record_id, "reason": result.unevaluable})
            return False
        self.kept += 1
        return True

    def add_many(
        self, ids: Sequence[str], results: Sequence[RecordMatch], no_url: Sequence[int] = ()
    ) -> list[int]:
        """Count a batch as :meth:`add` counts each record; return the positions not kept.

        ``no_url`` are the positions of records without a URL (given while URL entries are
        applied): those nothing else matched are counted by :meth:`add_missing_url`.
        """
        # Nearly every record is clean (the one NO_MATCH object): find the others in C.
        others: Iterable[int] = itertools.compress(
            range(len(results)), map(operator.is_not, results, itertools.repeat(NO_MATCH))
        )
        if no_url:
            others = sorted({*others, *no_url})
        examined = 0
        dropped = []
        for number in others:
            examined += 1
            result = results[number]
            if result is NO_MATCH:
                kept = self.add_missing_url(ids[number])
            else:
                kept = self.add(ids[number], result)
            if not kept:
                dropped.append(number)
        clean = len(results) - examined
        self.input += clean
        self.kept += clean
        return dropped


def build_report(
    tally: Tally, cached: Sequence[CachedList], *, at: dt.datetime, notes: Sequence[str] = ()
) -> FilterReport:
    """Return the filter report (schema ``filter-report.v1``).

    ``lists`` holds, per list applied, exactly what a card's ``exclusions`` records.
    """
    applied = format_time(at)
    kept_without_url = tally.missing_url if tally.keep_missing_url else 0
    lists = [
        Exclusion(
            name=item.list.name,
            version=item.list.version,
            digest=item.digest,
            signers=tuple(sorted(item.signers)),
            matched=dict(counts.matched),
            removed=counts.removed,
            applied=applied,
            # What the card must say: this list's URL entries never saw these kept records.
            missing_url=kept_without_url if kept_without_url and counts.has_url_entries else None,
        )
        for item, counts in zip(cached, tally.lists, strict=True)
    ]
    report = FilterReport(
        lists=tuple(lists),
        records=RecordCounts(
            input=tally.input,
            kept=tally.kept,
            removed=tally.removed,
            unevaluable=tally.unevaluable,
            missing_url=tally.missing_url,
        ),
        missing_url_policy="kept" if tally.keep_missing_url else "removed",
        unevaluable_examples=tuple(
            UnevaluableExample(id=e["id"], reason=e["reason"]) for e in tally.examples
        ),
        missing_url_examples=tuple(tally.missing_url_examples),
        notes=tuple(notes) or None,
    )
    schema.validate(report.to_dict(), schema.FILTER_REPORT, what="filter report")
    return report


# ----------------------------------------------------------------------------------------------
# Reading and matching batches


def _batches(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _text_digests(texts: Sequence[bytes | None]) -> list[bytes | None]:
    present = [t for t in texts if t is not None]
    normalized = normalize_batch(present) if present else None
    result: list[bytes | None] = []
    position = 0
    for text in texts:
        if text is None or normalized is None:
            result.append(None)
            continue
        data = normalized.text(position)
        position += 1
        result.append(None if data is None else hashlib.sha256(data).digest())
    return result


def _record_digests(
    records: list[Record], base: Path, index: ListIndex, where: str
) -> tuple[Sequence[Digest | None], Sequence[Digest | None]]:
    """Return the content and ``norm-text-v1`` digests the lists need, per record."""
    need_content = index.has_content_entries
    need_text = index.has_text_entries
    count = len(records)
    if not need_content:
        if not need_text:
            return [None] * count, [None] * count
    else:
        given = list(map(_SHA256, records))
        if None not in given:
            # Records that give their content's digest (and so have no text): the index
            # decodes a batch of hex at once.
            return given, [None] * count
    texts = list(map(_TEXT, records))
    if need_content and not need_text and None not in texts:
        # Only texts, only their SHA-256: a pass in C (a lone surrogate is named below).
        try:
            encoded = list(map(str.encode, cast("list[str]", texts)))
        except UnicodeEncodeError:
            pass
        else:
            return list(map(_DIGEST, map(hashlib.sha256, encoded))), [None] * count
    contents: list[bytes | None] = []
    raw_texts: list[bytes | None] = []
    for record in records:
        content: bytes | None = None
        text: bytes | None = None
        if record.text is not None:
            try:
                data = record.text.encode("utf-8")
            except UnicodeEncodeError:
                raise FormatError(
                    f"{where}: record {record.id!r}: text holds a lone surrogate"
                ) from None
            content = hashlib.sha256(data).digest() if need_content else None
            text = data if need_text else None
        elif record.path is not None:
            target = safe_join(base, record.path, what=f"{where}: record {record.id!r}")
            content, text = _read_file(Path(target), need_text, f"record {record.id!r}")
        elif record.sha256 is not None and need_content:
            content = bytes.fromhex(record.sha256)
        contents.append(content)
        raw_texts.append(text)
    if not need_content:
        contents = [None] * count
    return contents, _text_digests(raw_texts) if need_text else [None] * count


_NONES = itertools.repeat(None)
_TEXT = operator.attrgetter("text")
_SHA256 = operator.attrgetter("sha256")
_URL = operator.attrgetter("url")
_ID = operator.attrgetter("id")
_DIGEST = operator.methodcaller("digest")


def _read_file(path: Path, need_text: bool, what: str) -> tuple[bytes, bytes | None]:
    """Return the SHA-256 of a file and, when asked and small enough, its bytes for normalizing."""
    from provenance.manifest import hash_file

    if need_text:
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise InputError(f"{what}: {path}: {exc.strerror}") from None
        if size <= MAX_NORMALIZED_FILE_BYTES:
            from provenance._files import read_bytes

            data = read_bytes(path, limit=MAX_NORMALIZED_FILE_BYTES, what=f"{what}: {path}")
            return hashlib.sha256(data).digest(), data
    result = hash_file(str(path))
    if result.error is not None:
        raise result.error.exception(f"{what}: {path}")
    return bytes.fromhex(result.sha256), None


# ----------------------------------------------------------------------------------------------
# Writers (one per input format)


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


# ----------------------------------------------------------------------------------------------
# The command


def apply_lists(
    input_path: Path,
    cached: Sequence[CachedList],
    *,
    kept_path: Path,
    removed_path: Path | None,
    report_path: Path | None,
    at: dt.datetime,
    progress: Callable[[int], None] | None = None,
    columns: Columns = DEFAULT_COLUMNS,
    keep_missing_url: bool = False,
) -> FilterReport:
    """Filter ``input_path`` against the ``cached`` lists and write the outputs atomically.

    Args:
        columns: which column of a records file holds each field.
        keep_missing_url: keep records without a URL that nothing matched (they are counted,
            and each list with URL entries says how many kept records it could not check);
            by default they are removed.

    Returns:
        The filter report (see :func:`build_report`).

    Raises:
        InputError: the input is missing or of an unknown format, an output name implies
            another format than the input's, or URL entries are applied and no record has a
            URL (the message names the URL column looked for and the columns the file has),
            unless ``keep_missing_url``.
        FormatError: a malformed record, or a list entry that cannot be applied.
        UnsafePathError: a record's ``path`` escapes the records' directory.
        LocalIOError: reading or writing failed (no output is left half-written).
    """
    if not cached:
        raise InputError("no exclusion list to apply; run 'provenance lists fetch' first")
    names = [c.list.name for c in cached]
    if len(set(names)) != len(names):
        raise InputError("a list is named twice; apply one version of each list")
    index = ListIndex([c.list for c in cached])
    tally = Tally(index, keep_missing_url=keep_missing_url)
    notes: list[str] = []
    if input_path.is_dir():
        if columns != DEFAULT_COLUMNS:
            raise InputError(
                f"{input_path}: is a directory; column names ({columns.describe()}) apply only"
                " to records files"
            )
        skipped = _filter_directory(input_path, index, tally, kept_path, removed_path, progress)
        if index.has_url_entries:
            notes.append(
                "files in a directory have no URL: the lists' domain and URL entries apply only"
                " to records files; sha256 and text-sha256 entries were applied"
            )
        if skipped:
            notes.append(skipped)
    else:
        _filter_records(
            input_path, index, tally, kept_path, removed_path, progress, columns=columns
        )
        if index.has_url_entries and tally.input and not tally.with_url:
            notes.append(
                f"no record has a URL in column {columns.url!r}: the lists' domain and URL"
                f" entries were not applied to any of the {tally.input} record(s) kept or"
                " removed by content"
            )
        elif tally.missing_url and keep_missing_url:
            notes.append(
                f"{tally.missing_url} record(s) without a URL in column {columns.url!r} were"
                " kept: the lists' domain and URL entries could not check them"
            )
    report = build_report(tally, cached, at=at, notes=notes)
    if report_path is not None:
        from provenance._files import atomic_write

        atomic_write(report_path, _json.pretty(report.to_dict()))
    return report


def _filter_records(
    path: Path,
    index: ListIndex,
    tally: Tally,
    kept_path: Path,
    removed_path: Path | None,
    progress: Callable[[int], None] | None,
    *,
    columns: Columns = DEFAULT_COLUMNS,
) -> None:
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
        for batch in _batches(iter_records(path, fmt, columns=columns), BATCH_SIZE):
            contents, texts = _record_digests(batch, path.parent, index, str(path))
            urls = list(map(_URL, batch))
            results = index.match_records(urls, contents, texts)
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
        if url_entries and tally.input and not tally.with_url and not tally.keep_missing_url:
            # Before anything is written: with a misnamed URL column every record would pass.
            present = file_columns(path, fmt)
            raise InputError(
                f"{path}: no record has a URL in column {columns.url!r}, but the lists applied"
                " hold domain or URL entries, which would check nothing; the file's columns"
                f" are: {', '.join(repr(c) for c in present[:50]) or 'none'}"
                f"{', ...' if len(present) > 50 else ''}. Name the column that holds the URLs,"
                " or keep records without a URL knowingly"
            )
        kept.close()
        if removed is not None:
            removed.close()


def _filter_directory(
    root: Path,
    index: ListIndex,
    tally: Tally,
    kept_path: Path,
    removed_path: Path | None,
    progress: Callable[[int], None] | None,
) -> str:
    """Filter the files under ``root``; return a note on the symlinks skipped ("" if none)."""
    from provenance.manifest import WalkStats, walk_files

    exclude = {str(p.resolve()) for p in (kept_path, removed_path) if p is not None}
    stats = WalkStats()
    files = walk_files(root, exclude=exclude, stats=stats)
    for ref in files:
        if "\n" in ref.id or "\r" in ref.id:
            raise UnsafePathError(
                f"{ref.path}: a file name with a line break cannot be listed one per line"
            )
    need = index.has_content_entries or index.has_text_entries
    with contextlib.ExitStack() as stack:
        kept = stack.enter_context(atomic_writer(kept_path))
        removed = stack.enter_context(atomic_writer(removed_path)) if removed_path else None
        for batch in _batches(iter(files), 256):
            raw_texts: list[bytes | None] = []
            contents: list[bytes | None] = []
            for ref in batch:
                if need:
                    content, text = _read_file(Path(ref.path), index.has_text_entries, ref.id)
                else:
                    content, text = None, None
                contents.append(content if index.has_content_entries else None)
                raw_texts.append(text)
            texts = _text_digests(raw_texts) if index.has_text_entries else [None] * len(batch)
            results = index.match_records([None] * len(batch), contents, texts)
            for ref, result in zip(batch, results, strict=True):
                line = ref.id.encode("utf-8") + b"\n"
                if tally.add(ref.id, result):
                    kept.write(line)
                elif removed is not None:
                    removed.write(line)
            if progress:
                progress(len(batch))
    if not stats.symlinks:
        return ""
    # Never silently: a symlinked file is neither kept nor removed, it is not looked at.
    outside = f", {stats.symlinks_outside:,} pointing outside it" if stats.symlinks_outside else ""
    return f"skipped {stats.symlinks:,} symlink(s) in {root}{outside} (never followed)"


def parse_list_selector(text: str) -> tuple[str, int | None]:
    """Parse a list selector, ``NAME`` or ``NAME@VERSION``.

    Raises:
        InputError: an empty name or a version that is not a positive integer.
    """
    name, at_sign, version = text.partition("@")
    if not name:
        raise InputError(f"list selector {text!r}: expected NAME or NAME@VERSION")
    if not at_sign:
        return name, None
    if not version.isdigit() or int(version) < 1 or len(version) > 15:
        raise InputError(f"list selector {text!r}: VERSION must be a positive integer")
    return name, int(version)


@contextlib.contextmanager
def list_cache(value: str | None, *, store: TrustStore, at: dt.datetime) -> Iterator[Path]:
    """Yield the list cache to load lists from: ``value`` as a directory (default: the user's
    cache), or, for an ``http(s)://`` URL, a temporary cache into which that repository is
    fetched and verified against ``store`` (removed when the block ends).

    Raises:
        As :func:`provenance.lists.client.fetch` for a URL.
    """
    from provenance.lists.client import is_repository_url, temporary_cache

    if value is not None and is_repository_url(value):
        with temporary_cache(value, store=store, at=at) as cache:
            yield cache
        return
    if value is None:
        from provenance.lists.cache import default_cache_dir

        yield default_cache_dir()
        return
    yield Path(value)


def select_lists(
    cache_dir: Path,
    selectors: Sequence[str],
    *,
    at: dt.datetime,
    store: TrustStore,
) -> list[CachedList]:
    """Load the lists to apply: the newest cached version of each, or those ``selectors`` name.

    Every list loaded must be vouched for by ``store`` exactly as ``lists fetch`` requires: a
    threshold of the keys it pins for that list signed both the repository's root and its
    targets metadata. A list that fails is an error naming it, never skipped: the cache is not
    trusted, and a repository swapped into it must not decide what is filtered.

    Raises:
        InputError: a selector is malformed or names a list twice.
        NotCachedError: a list (or version) asked for is not cached.
        SignatureError: a list is not signed by the keys ``store`` pins for it.
        ExpiredError, DigestMismatchError, FormatError: as
            :func:`provenance.lists.cache.load_cached_lists`.
    """
    from provenance.lists.cache import load_cached_lists, load_cached_version

    if not selectors:
        return load_cached_lists(cache_dir, at=at, store=store)
    parsed = [parse_list_selector(s) for s in selectors]
    names = [name for name, _ in parsed]
    if len(set(names)) != len(names):
        raise InputError("the selectors name a list twice; apply one version of each list")
    result = []
    for name, version in parsed:
        if version is None:
            result.extend(load_cached_lists(cache_dir, at=at, names=[name], store=store))
        else:
            result.append(load_cached_version(cache_dir, name, version, at=at, store=store))
    return sorted(result, key=lambda c: c.list.name)


def filter_file(
    input_path: Path,
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
    progress: Callable[[int], None] | None = None,
) -> FilterReport:
    """Apply the lists of a cache (or of a repository URL) to ``input_path``.

    The lists are loaded from ``lists`` (see :func:`list_cache`) as :func:`select_lists` does,
    each vouched for by ``store``, then applied as :func:`apply_lists` does.

    Returns:
        The filter report.

    Raises:
        As :func:`list_cache`, :func:`select_lists` and :func:`apply_lists`.
    """
    with list_cache(lists, store=store, at=at) as cache:
        cached = select_lists(cache, selectors, at=at, store=store)
        return apply_lists(
            input_path,
            cached,
            kept_path=kept_path,
            removed_path=removed_path,
            report_path=report_path,
            at=at,
            progress=progress,
            columns=columns,
            keep_missing_url=keep_missing_url,
        )
