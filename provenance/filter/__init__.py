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

The parts: :mod:`~provenance.filter.report` (the tally and the report),
:mod:`~provenance.filter.selection` (which cached lists apply), and private modules for records
files, directories and the content digests the lists need.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

from provenance import _json
from provenance.errors import InputError
from provenance.filter._digests import MAX_NORMALIZED_FILE_BYTES
from provenance.filter._directory import filter_directory
from provenance.filter._records import BATCH_SIZE, filter_records
from provenance.filter.report import MAX_EXAMPLES, URL_TYPES, Tally, build_report, records_notes
from provenance.filter.selection import list_cache, parse_list_selector, select_lists
from provenance.filter_report import FilterReport
from provenance.lists.cache import CachedList
from provenance.lists.match import ListIndex
from provenance.records import DEFAULT_COLUMNS, Columns
from provenance.trust import TrustStore

__all__ = [
    "BATCH_SIZE",
    "MAX_EXAMPLES",
    "MAX_NORMALIZED_FILE_BYTES",
    "URL_TYPES",
    "Tally",
    "apply_lists",
    "build_report",
    "filter_file",
    "list_cache",
    "parse_list_selector",
    "select_lists",
]


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
        skipped = filter_directory(input_path, index, tally, kept_path, removed_path, progress)
        if index.has_url_entries:
            notes.append(
                "files in a directory have no URL: the lists' domain and URL entries apply only"
                " to records files; sha256 and text-sha256 entries were applied"
            )
        if skipped:
            notes.append(skipped)
    else:
        filter_records(input_path, index, tally, kept_path, removed_path, progress, columns=columns)
        notes.extend(records_notes(index, tally, columns, keep_missing_url))
    report = build_report(tally, cached, at=at, notes=notes)
    if report_path is not None:
        from provenance._files import atomic_write

        atomic_write(report_path, _json.pretty(report.to_dict()))
    return report


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
