"""The tally of a ``filter`` run and its report (schema ``filter-report.v1``).

The tally counts, one record (or one batch) at a time, what each list matched and what happened
to each record; the report names every list applied exactly as a card's ``exclusions`` records it
(name, version, digest, signers, matched per category, removed, applied) plus the record counts.
Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import itertools
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from provenance import schema
from provenance.card.model import Exclusion
from provenance.filter_report import FilterReport, RecordCounts, UnevaluableExample
from provenance.lists.cache import CachedList
from provenance.lists.match import NO_MATCH, ListIndex, RecordMatch
from provenance.lists.model import URL_ENTRY_TYPES
from provenance.records import Columns
from provenance.trust import format_time

MAX_EXAMPLES = 100
"""How many unevaluable records (and records without a URL) the report names (all are counted)."""
URL_TYPES = frozenset(URL_ENTRY_TYPES)


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


def records_notes(
    index: ListIndex, tally: Tally, columns: Columns, keep_missing_url: bool
) -> list[str]:
    """The report's notes on the URLs of records files: none had one (the lists' URL entries
    applied to nothing), or some had none and were kept."""
    if index.has_url_entries and tally.input and not tally.with_url:
        return [
            f"no record has a URL in column {columns.url!r}: the lists' domain and URL"
            f" entries were not applied to any of the {tally.input} record(s) kept or"
            " removed by content"
        ]
    if tally.missing_url and keep_missing_url:
        return [
            f"{tally.missing_url} record(s) without a URL in column {columns.url!r} were"
            " kept: the lists' domain and URL entries could not check them"
        ]
    return []


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
