"""The match index: every entry of several lists, compiled once, and the matching rules.

Pure: no I/O, no clock. Hosts, URLs and listed values are first brought to the form matching
compares (:mod:`provenance.lists.urls`); then:

- ``domain``: the host and every subdomain, on a label boundary (``not01cinema.com`` is not
  under ``01cinema.com``). An IP literal matches that address exactly.
- ``url-prefix``: same host (no subdomains), same port after default-port removal, the
  scheme given (``http``/``https``) or either of them when the entry has no scheme, and a path
  that equals the entry's or continues it at a segment boundary (``/piracy`` covers
  ``/piracy/x`` but not ``/piracy-report``; an entry ending in ``/`` covers everything under it).
  The query is ignored unless the entry has one; then the URL must have that query, possibly
  followed by ``&...``. Fragments are always ignored.
- ``url``: as ``url-prefix`` but the path must be equal, and a query in the entry must be equal.
- ``sha256``: the SHA-256 of the content. ``text-sha256``: the ``norm-text-v1`` digest.

:meth:`ListIndex.match_url` is these rules for one URL, written to be read: it is the
specification. :meth:`ListIndex.match_urls` gives the same answers for many URLs at once through
the private accelerator :mod:`provenance.lists._accel`, and the tests hold the two equal.
Entries are added to the tables one at a time, in list order, except that a list whose
``domain`` entries are all plain hosts is added in one step (the tests hold that equal too).
"""

from __future__ import annotations

import bisect
import copy
import itertools
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np
import numpy.typing as npt

from provenance._hex import first_invalid_sha256_hex, sha256_hex
from provenance._kernels import hex_digest_rows
from provenance.errors import FormatError
from provenance.lists._accel import UrlAccelerator, add_plain_domains
from provenance.lists._refs import NO_REFS, Refs, Slot, add_ref, refs_of
from provenance.lists.digests import Digest, DigestIndex, digest_rows
from provenance.lists.model import DIGEST_ENTRY_TYPES
from provenance.lists.urls import UrlRule, compile_url_entry, parse_host, parse_url

__all__ = ["NO_MATCH", "EntryLike", "Hit", "ListIndex", "ListLike", "RecordMatch"]


class EntryLike(Protocol):
    """What matching needs of a list entry (``provenance.lists.model.ListEntry`` has it)."""

    @property
    def type(self) -> str: ...  # noqa: D102

    @property
    def value(self) -> str: ...  # noqa: D102

    @property
    def category(self) -> str: ...  # noqa: D102


class ListLike(Protocol):
    """What matching needs of a list (``provenance.lists.model.ExclusionList`` has it)."""

    @property
    def name(self) -> str: ...  # noqa: D102

    @property
    def version(self) -> int: ...  # noqa: D102

    @property
    def entries(self) -> Sequence[Any]: ...  # noqa: D102


@dataclass(frozen=True, slots=True)
class Hit:
    """One matching entry: ``lists[list_number].entries[entry_number]``."""

    list_number: int
    entry_number: int


@dataclass(frozen=True, slots=True)
class RecordMatch:
    """What matched one record. ``unevaluable`` says why URL entries could not be checked."""

    hits: tuple[Hit, ...]
    unevaluable: str | None = None


NO_MATCH = RecordMatch(())
"""What :meth:`ListIndex.match_records` gives every record nothing matches (one object)."""

Digests = Sequence[Digest | None] | npt.NDArray[np.uint8]
"""Digests of records: each 32 bytes, 64 lower-case hex digits or None (one kind per
sequence), or every one of them as a row of an ``(n, 32)`` uint8 array."""

_DigestParts = tuple[list[npt.NDArray[np.uint8]], list[npt.NDArray[np.int64] | range]]
"""Decoded digest rows and, for each block of rows, the entry numbers they report."""
_TYPE_OF = operator.attrgetter("type")
_VALUE_OF = operator.attrgetter("value")


class ListIndex:
    """All entries of several lists, indexed for matching records.

    ``lists`` are kept as given; a :class:`Hit` points into them. Entries are compiled once:
    hosts normalized, URLs parsed, digests packed. Entry numbers (``refs``) count the entries
    of all lists in order; :meth:`hit` turns one into a :class:`Hit`.
    """

    def __init__(self, lists: Sequence[ListLike]) -> None:
        """Index every entry of ``lists``.

        Raises:
            FormatError: an entry has an unknown type or an invalid value (the list and entry
                are named); a list that cannot be applied as signed is not applied at all.
        """
        self.lists = tuple(lists)
        self._offsets: list[int] = []
        # Host tables hold ints (see provenance.lists._refs): nothing for the cyclic garbage
        # collector to scan however many hosts are listed, so it need not be paused.
        domains: dict[str, Slot] = {}
        ips: dict[str, Slot] = {}
        url_rules: dict[str, list[UrlRule]] = {}
        digests: dict[str, _DigestParts] = {kind: ([], []) for kind in DIGEST_ENTRY_TYPES}
        total = 0
        for the_list in self.lists:
            self._offsets.append(total)
            # A list loaded from the cache's binary index hands over its digest rows as they
            # are (provenance.lists.packed); the tables end up as _index_list leaves them.
            index_into = getattr(the_list, "index_into", None)
            if index_into is not None:
                index_into(total, domains, ips, url_rules, digests)
            else:
                _index_list(the_list, total, domains, ips, url_rules, digests)
            total += len(the_list.entries)
        self.entry_count = total
        self._domains = domains
        self._ips = ips
        self._url_rules = url_rules
        self._accelerator = UrlAccelerator(domains, url_rules)
        # The fewest and most labels of a listed domain (counted in the accelerator's pass
        # over the table): a suffix with fewer or more cannot be listed.
        self._min_labels, self._max_labels = self._accelerator.labels
        self._content = _digest_index(*digests["sha256"])
        self._text = _digest_index(*digests["text-sha256"])

    @property
    def has_url_entries(self) -> bool:
        """Whether any entry needs a record's URL (domain, url-prefix or url)."""
        return bool(self._domains or self._ips or self._url_rules)

    @property
    def has_content_entries(self) -> bool:
        """Whether any ``sha256`` entry is indexed."""
        return self._content is not None

    @property
    def has_text_entries(self) -> bool:
        """Whether any ``text-sha256`` entry is indexed."""
        return self._text is not None

    def listed_digests(
        self, *, text: bool = False
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]] | None:
        """The listed ``sha256`` (or, with ``text``, ``text-sha256``) digests as rows of 32
        bytes, and the internal entry number of each row (see :meth:`hit`); None if none.

        For joins done elsewhere (:mod:`provenance.lists.joins`).
        """
        index = self._text if text else self._content
        if index is None:
            return None
        rows = index._rows  # noqa: SLF001 - the index's own arrays, not copied
        refs = index._refs  # noqa: SLF001
        if refs is None:
            refs = np.arange(rows.shape[0], dtype=np.int64)
        return rows, refs.astype(np.int64, copy=False)

    def urls_only(self) -> ListIndex:
        """A copy that matches URLs (:meth:`match_urls`) and nothing else: no digests and no
        lists, so that it is small to send to the workers of URL matching tasks."""
        part = copy.copy(self)
        part.lists = ()
        part._content = part._text = None
        return part

    def hit(self, ref: int) -> Hit:
        """Turn an internal entry number into a :class:`Hit`."""
        # Lists with no entries share their offset with the next list; bisect_right skips them.
        list_number = bisect.bisect_right(self._offsets, ref) - 1
        return Hit(list_number, ref - self._offsets[list_number])

    def entry(self, hit: Hit) -> Any:
        """The list entry a hit points to."""
        return self.lists[hit.list_number].entries[hit.entry_number]

    def match_url(self, url: str) -> Refs:
        """Return the internal numbers of the entries ``url`` matches (see :meth:`hit`).

        The specification of URL matching (see the module docstring): the URL is parsed as a
        browser parses it, its host looked up with every parent domain, then the ``url`` and
        ``url-prefix`` rules of its host are applied. Domain entries come first, the host's own
        before its parents'; with URL rules, all in entry order.

        Raises:
            InvalidURLError: the URL cannot be evaluated (unparseable, not a web scheme, or an
                invalid host). Callers must report this, not treat the URL as clean.
        """
        parsed = parse_url(url)
        if parsed.is_ip:
            slot = self._ips.get(parsed.host)
            refs = NO_REFS if slot is None else refs_of(slot)
        elif parsed.host:
            refs = self._domain_refs(parsed.host)
        else:
            refs = NO_REFS
        rules = self._url_rules.get(parsed.host)
        if rules:
            extra = tuple(rule.ref for rule in rules if rule.matches(parsed))
            if extra:
                refs = tuple(sorted(set(refs + extra)))
        return refs

    def _domain_refs(self, host: str) -> Refs:
        """The entries of ``host`` and of every domain it is under, the longest first."""
        domains = self._domains
        slot = domains.get(host)
        refs = NO_REFS if slot is None else refs_of(slot)
        # The suffixes on a label boundary, from the longest. Those with fewer labels than the
        # shortest listed domain, or more than the longest, cannot be listed: only the ones in
        # between are looked up (so a host of a million labels costs no more than a short one).
        dots = host.count(".")
        first = dots + 1 - self._max_labels
        last = dots + 1 - self._min_labels
        position = -1
        label = 0
        while label < last:
            position = host.find(".", position + 1)
            label += 1
            if label >= first:
                suffix = host[position + 1 :]
                slot = domains.get(suffix)
                if slot is not None:
                    refs += refs_of(slot)
        return refs

    def match_urls(self, urls: Sequence[str | None]) -> tuple[list[Refs], dict[int, str]]:
        """Match many URLs; the same answers as :meth:`match_url`, several times faster.

        Returns:
            ``(refs, unevaluable)``: per URL the internal entry numbers it matches (``None``
            matches nothing), and for each URL that cannot be evaluated its position and why.
        """
        return self._accelerator.match_urls(urls, self.match_url)

    def match_digests(self, digests: Sequence[Digest | None], *, text: bool = False) -> list[Refs]:
        """Return, per digest, the internal numbers of the ``sha256`` entries it equals.

        A digest is 32 bytes or 64 lower-case hex digits (one kind per call); ``None`` matches
        nothing. With ``text=True``, look among ``text-sha256`` entries instead.

        Raises:
            FormatError: a hex digest is not 64 lower-case hex digits.
        """
        results: list[Refs] = [NO_REFS] * len(digests)
        for number, refs in self._digest_hits(digests, text=text).items():
            results[number] = refs
        return results

    def _digest_hits(self, digests: Digests, *, text: bool) -> dict[int, Refs]:
        """The entries equal to each digest that equals any, by the digest's position."""
        index = self._text if text else self._content
        if index is None or not len(digests):
            return {}
        present: Sequence[int] = range(len(digests))
        if isinstance(digests, np.ndarray):
            rows = digests
        else:
            values = digests
            if None in digests:
                present = [number for number, d in enumerate(digests) if d is not None]
                if not present:
                    return {}
                values = [digests[n] for n in present]
            rows = digest_rows(cast("Sequence[Digest]", values))
        query_numbers, refs = index.lookup(rows)
        grouped: dict[int, Refs] = {}
        for query_number, ref in zip(query_numbers.tolist(), refs.tolist(), strict=True):
            number = present[query_number]
            grouped[number] = (*grouped.get(number, ()), ref)
        return grouped

    def match_records(
        self, urls: Sequence[str | None], contents: Digests, texts: Digests
    ) -> list[RecordMatch]:
        """Match a batch of records given by URL, content digest and normalized-text digest.

        Digests are 32 bytes or 64 lower-case hex digits (one kind per sequence), or all of
        them as one ``(n, 32)`` uint8 array; ``None`` means the record has no such value. A
        URL that cannot be evaluated while URL entries are indexed gives a :class:`RecordMatch`
        with ``unevaluable`` set (digest matches are still reported). A record nothing
        matches gets :data:`NO_MATCH` itself.
        """
        results = [NO_MATCH] * len(urls)
        for number, match in self.matched_records(urls, contents, texts).items():
            results[number] = match
        return results

    def matched_records(
        self, urls: Sequence[str | None], contents: Digests, texts: Digests
    ) -> dict[int, RecordMatch]:
        """:meth:`match_records` for the records something matched or that could not be
        evaluated alone: their :class:`RecordMatch` by position, in order (most records of a
        batch match nothing, and need no pass of their own)."""
        count = len(urls)
        content = self._digest_hits(contents, text=False)
        normalized = self._digest_hits(texts, text=True)
        url_refs: list[Refs] | None = None
        problems: dict[int, str] = {}
        url_hits: Iterable[int] = ()
        if self.has_url_entries:
            url_refs, problems = self.match_urls(urls)
            url_hits = itertools.compress(range(count), url_refs)  # the non-empty ones
        results: dict[int, RecordMatch] = {}
        for number in sorted({*url_hits, *content, *normalized, *problems}):
            refs = content.get(number, NO_REFS) + normalized.get(number, NO_REFS)
            if url_refs is not None:
                refs += url_refs[number]
            if len(refs) == 1:  # most matched records: one entry
                hits: tuple[Hit, ...] = (self.hit(refs[0]),)
            else:
                hits = tuple(self.hit(ref) for ref in sorted(set(refs)))
            results[number] = RecordMatch(hits, problems.get(number))
        return results


def _index_list(
    the_list: ListLike,
    total: int,
    domains: dict[str, Slot],
    ips: dict[str, Slot],
    url_rules: dict[str, list[UrlRule]],
    digests: dict[str, _DigestParts],
) -> None:
    """Add the entries of one list (numbered from ``total``) to the index's tables.

    Digest entries are checked and decoded in bulk, the others one at a time in list order
    (all plain ``domain`` entries at once, when :func:`~provenance.lists._accel.add_plain_domains`
    applies); errors are raised in the order a single pass would meet them (hosts and URLs
    first, then ``sha256``, then ``text-sha256`` values).

    Raises:
        FormatError: the list and the first bad entry are named.
    """
    entries = the_list.entries
    count = len(entries)
    types = list(map(_TYPE_OF, entries))
    where = f"list {the_list.name} v{the_list.version}"
    # Where each digest kind is (big hash lists hold nothing else: no masks are built then).
    masks: dict[str, list[bool] | None] = {}
    for kind in digests:
        present = types.count(kind)
        masks[kind] = (
            None if present in (0, count) else list(map(operator.eq, types, itertools.repeat(kind)))
        )
    others: Iterable[int]
    if any(types.count(kind) == count for kind in digests):
        others = ()
    elif all(mask is None for mask in masks.values()):
        others = range(count)
    else:
        is_digest = np.zeros(count, dtype=bool)
        for mask in masks.values():
            if mask is not None:
                is_digest |= np.asarray(mask, dtype=bool)
        others = np.flatnonzero(~is_digest).tolist()
    others = add_plain_domains(entries, types, others, total, domains)
    for number in others:
        kind = types[number]
        ref = total + number
        try:
            if kind == "domain":
                host, is_ip = parse_host(entries[number].value)
                table = ips if is_ip else domains
                table[host] = add_ref(table.get(host), ref)
            elif kind in ("url-prefix", "url"):
                host, rules = compile_url_entry(entries[number].value, exact=kind == "url", ref=ref)
                url_rules.setdefault(host, []).extend(rules)
            else:
                raise FormatError(f"unknown entry type {kind!r}")
        except FormatError as exc:
            raise FormatError(f"{where}: entry {number + 1}: {exc}") from None
    for kind, (rows, row_refs) in digests.items():
        mask = masks[kind]
        if mask is None:
            if not count or types[0] != kind:
                continue  # none of this kind
            positions: npt.NDArray[np.int64] | range = range(count)
            values = list(map(_VALUE_OF, entries))
        else:
            positions = np.flatnonzero(np.asarray(mask, dtype=bool)).astype(np.int64)
            values = list(itertools.compress(map(_VALUE_OF, entries), mask))
        try:
            rows.append(hex_digest_rows(values))
        except FormatError:
            bad = first_invalid_sha256_hex(values)
            if bad is None:  # pragma: no cover - the tests hold both checks equal
                raise
            sha256_hex(values[bad], what=f"{where}: entry {int(positions[bad]) + 1}")  # raises
            raise  # pragma: no cover
        row_refs.append(
            range(total, total + count) if isinstance(positions, range) else positions + total
        )


def _digest_index(
    rows: list[npt.NDArray[np.uint8]], refs: list[npt.NDArray[np.int64] | range]
) -> DigestIndex | None:
    """Index the decoded digests of every list (``refs[i]`` numbers the rows of ``rows[i]``)."""
    if not rows:
        return None
    if len(rows) == 1 and isinstance(refs[0], range) and refs[0] == range(len(rows[0])):
        return DigestIndex(rows[0])  # each row reports its own number: no array of numbers
    numbers = [
        np.arange(r.start, r.stop, dtype=np.int64) if isinstance(r, range) else r for r in refs
    ]
    return DigestIndex(np.concatenate(rows), np.concatenate(numbers))
