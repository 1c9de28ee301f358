"""Hold a verified card's exclusion claims against its manifest (``verify --lists``).

For each list the card says it applied (``predicate.exclusions``), exactly that version is
loaded, its signers are held against the trust store and its digest against the one the card
cites. Then every manifest entry is matched (``url`` against domain and URL entries, ``sha256``
against ``sha256`` entries, ``textSha256`` against ``text-sha256`` entries):

- an entry on the version the card claims to have applied is a **violation** (the claim is
  false);
- an entry only on a later version of that list is **newly listed**: listed after the card was
  made, something to remove in the next release (a violation only under ``--strict``);
- a list the trust store marks as required that the card did not apply is a violation (checked
  by :mod:`provenance.verify` on every verification, lists or not).

Monotonic (docs/security.md P1): a cited list that cannot be loaded, is not signed by
keys trusted for it, or whose digest differs, fails its check, and so does a manifest URL that
cannot be evaluated; nothing that cannot be checked is reported as clean.

Old cards are checked offline. A published version never changes and the card cites its digest,
so a cached version whose signatures still verify answers "was this version applied?" after the
repository's timestamp has expired: expiry only means that versions published since then may be
missing from the cache. So a cached list whose metadata has expired is still checked; the check
says how long ago the metadata expired, and fails under ``strict`` (fetch the lists for a
current answer). Fetching new versions still needs fresh metadata.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import datetime as dt
import itertools
import operator
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from provenance.card.model import Exclusion
from provenance.errors import ProvenanceError
from provenance.manifest import ManifestEntry
from provenance.trust import TrustStore

if TYPE_CHECKING:
    # Imported when used: the findings are read by every 'verify', the lists only by --lists.
    from provenance.lists.cache import CachedList
    from provenance.lists.match import ListIndex, RecordMatch


BATCH_SIZE = 65536
"""Manifest entries matched per call: digest lookups in a 10 M-entry index cost about 140 us
per call whatever the batch, so small batches would dominate (4096: 0.56 s per million
entries; 65536: 0.24 s), while a batch of entries is still only tens of megabytes."""
MAX_REPORTED = 10_000
"""Violations and newly listed entries reported individually (all are counted)."""
READ_AHEAD_BYTES = 32 << 20
"""The manifest is read and checked on one thread while another loads and indexes the lists
(reading and hashing a list's index release the GIL) and then matches the batches read. Each
batch waits in the compact form matching needs (:class:`_Keys`: 32-byte digests, the ids, the
URLs if any), up to about this many bytes of them, so that memory does not grow with the
manifest: 40 bytes per entry from a manifest reader (the digests, and a pointer to each id,
whose string the reader keeps anyway to refuse a repeated id), 800,000 entries; otherwise the
ids' strings count too, some 100 bytes per entry with short ids. Once the manifest is read, the
reading thread looks up waiting batches too."""


class ListSource(Protocol):
    """Where list versions come from (the cache, or a repository fetched into one)."""

    def load_version(self, name: str, version: int) -> CachedList:
        """Return exactly ``version`` of list ``name``, verified.

        Raises:
            ProvenanceError: it cannot be loaded or does not verify.
        """

    def load_newest(self, name: str) -> CachedList:
        """Return the newest available version of list ``name``, verified.

        Raises:
            ProvenanceError: it cannot be loaded or does not verify.
        """


Matcher = Callable[["ListAudit", "Sequence[CachedList]", "Sequence[CachedList]"], int]
"""Matches a manifest for :func:`audit_lists` (see its ``match``)."""


@dataclass(frozen=True, slots=True)
class CacheSource:
    """Lists from a local cache (see :mod:`provenance.lists.cache`), re-verified at ``at``.

    Expired repository metadata is accepted here (see the module docstring): each
    :class:`CachedList` carries its ``expires``, which :func:`audit_lists` reports.
    """

    cache_dir: Path
    at: dt.datetime

    def load_version(self, name: str, version: int) -> CachedList:
        """See :meth:`ListSource.load_version`."""
        from provenance.lists.cache import load_cached_version

        return load_cached_version(self.cache_dir, name, version, at=self.at, allow_expired=True)

    def newest_version(self, name: str) -> int:
        """The newest cached version of list ``name`` (its metadata verified, the list not
        loaded); 0 if none is cached.

        Raises:
            ProvenanceError: the cache does not verify.
        """
        from provenance.lists.cache import cached_versions

        return max(cached_versions(self.cache_dir, name, at=self.at), default=0)

    def load_newest(self, name: str) -> CachedList:
        """See :meth:`ListSource.load_newest`."""
        from provenance.lists.cache import load_cached_lists

        return load_cached_lists(self.cache_dir, at=self.at, names=[name], allow_expired=True)[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class ListedEntry:
    """The list entry that matched: its type, value and category."""

    type: str
    value: str
    category: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ListedEntry:
        """Return the entry of a finding's ``entry`` object."""
        return cls(type=data["type"], value=data["value"], category=data["category"])

    def to_dict(self) -> dict[str, str]:
        """Return the ``entry`` object."""
        return {"type": self.type, "value": self.value, "category": self.category}


@dataclass(frozen=True, slots=True, kw_only=True)
class ListFinding:
    """A violation or a newly listed entry found by holding a card against the lists.

    Either a manifest entry (``id``) on version ``version`` of list ``list``, matched by
    ``entry``; or, with ``id``, ``version`` and ``entry`` None, a list the card should have
    applied and did not, and ``reason`` says why it should have. The JSON form (``verify
    --json``) always has ``id``, ``list``, ``version`` and ``entry``, and ``reason`` when set;
    ``ListFinding.from_dict(x.to_dict()) == x``.
    """

    id: str | None
    list: str
    version: int | None
    entry: ListedEntry | None
    reason: str | None = None

    @classmethod
    def required_not_applied(cls, name: str) -> ListFinding:
        """The violation of a card that did not apply list ``name``, which the trust store
        requires."""
        return cls(
            id=None,
            list=name,
            version=None,
            entry=None,
            reason="the trust store requires this list; the card did not apply it",
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ListFinding:
        """Return the finding of its JSON form."""
        entry = data["entry"]
        return cls(
            id=data["id"],
            list=data["list"],
            version=data["version"],
            entry=None if entry is None else ListedEntry.from_dict(entry),
            reason=data.get("reason"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        document: dict[str, Any] = {
            "id": self.id,
            "list": self.list,
            "version": self.version,
            "entry": None if self.entry is None else self.entry.to_dict(),
        }
        if self.reason is not None:
            document["reason"] = self.reason
        return document


@dataclass(slots=True)
class ListAudit:
    """What the list checks found: named checks, violations and newly listed entries."""

    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    violations: list[ListFinding] = field(default_factory=list)
    newly_listed: list[ListFinding] = field(default_factory=list)
    violation_count: int = 0
    """Manifest entries on a claimed version, plus required lists not applied."""
    newly_listed_count: int = 0
    """Manifest entries only on a later version."""
    unevaluable: int = 0
    unevaluable_example: str = ""

    def add(self, name: str, ok: bool, detail: str) -> None:
        """Record a check."""
        self.checks.append((name, ok, detail))


def _signer_names(keyids: Sequence[str], trust: TrustStore) -> str:
    return ", ".join(f"{trust.name_of(k)} ({k[:16]})" for k in keyids)


@contextlib.contextmanager
def open_list_source(value: str, trust: TrustStore, *, at: dt.datetime) -> Iterator[CacheSource]:
    """Yield where list versions are loaded from: the cache directory ``value``, or, for a
    repository URL, a temporary cache it is fetched into (verified against ``trust``).

    Raises:
        As :func:`provenance.lists.client.fetch` for a URL.
    """
    from provenance.lists.client import is_repository_url, temporary_cache

    if is_repository_url(value):
        with temporary_cache(value, store=trust, at=at) as cache:
            yield CacheSource(cache, at)
        return
    yield CacheSource(Path(value), at)


def _load_claimed(
    claim: Exclusion, source: ListSource, trust: TrustStore, at: dt.datetime
) -> tuple[CachedList | None, str]:
    """Load and check one cited list version; return it (or None) and the check's detail."""
    from provenance.lists.cache import trusted_signers

    name, version = claim.name, claim.version
    try:
        cached = source.load_version(name, version)
        signers = trusted_signers(cached, trust, at=at)
    except ProvenanceError as exc:
        return None, f"cannot be verified: {exc}"
    if cached.digest != claim.digest:
        return None, (
            f"the card cites digest {claim.digest}, but the signed v{version} is {cached.digest}"
        )
    return cached, f"signed by {_signer_names(signers, trust)}; digest matches the card"


def _newer(
    name: str, claimed: CachedList, source: ListSource, trust: TrustStore, at: dt.datetime
) -> tuple[CachedList | None, str | None]:
    """Return the newest version of ``name`` if it is later than the claimed one."""
    from provenance.lists.cache import trusted_signers

    newest_version = getattr(source, "newest_version", None)
    if newest_version is not None:
        # The claimed version is the newest one: it was just loaded and checked, and a list of
        # millions of entries is not loaded twice. Any doubt: the full check below.
        with contextlib.suppress(ProvenanceError):
            if newest_version(name) == claimed.list.version:
                return None, None
    try:
        newest = source.load_newest(name)
        trusted_signers(newest, trust, at=at)
    except ProvenanceError as exc:
        return None, f"the current version cannot be verified: {exc}"
    if newest.list.version < claimed.list.version:
        return None, (
            f"the newest version available is v{newest.list.version}, older than the v"
            f"{claimed.list.version} the card cites (fetch the lists again)"
        )
    if newest.list.version == claimed.list.version:
        return None, None
    return newest, None


def _staleness(cached: CachedList, at: dt.datetime, *, strict: bool) -> str:
    """Say how old the cached metadata vouching for ``cached`` is, and what that means."""
    from provenance.trust import format_time

    age = at - cached.expires
    days = age.days
    ago = f"{days} day(s) ago" if days >= 1 else f"{int(age.total_seconds() // 3600)} hour(s) ago"
    advice = "a strict check needs fresh metadata: fetch the lists" if strict else "fetch to check"
    return (
        f"checked offline: the cached repository metadata expired {format_time(cached.expires)}"
        f" ({ago}), so versions published since then are not known ({advice})"
    )


@dataclass(frozen=True, slots=True)
class EntryBlocks:
    """A manifest's entries a block at a time, in manifest order, as a block reader yields them
    (:meth:`provenance.manifest.ManifestReader.blocks`,
    :func:`provenance.manifest.reader.iter_manifest_blocks`): matched without a Python step
    per entry. Read once."""

    blocks: Iterable[Sequence[ManifestEntry]]


Entries = Iterable[ManifestEntry] | EntryBlocks
"""A manifest's entries (streamed once), one at a time or a block at a time."""


def _batches(entries: Entries) -> Iterator[_Keys]:
    """The keys of ``entries`` in batches of BATCH_SIZE entries (blocks: of at least half as
    many, the blocks' keys joined), the last one what is left."""
    if isinstance(entries, list):
        for first in range(0, len(entries), BATCH_SIZE):
            yield _Keys.of(entries[first : first + BATCH_SIZE])
        return
    if isinstance(entries, EntryBlocks):
        # Each block's keys are taken as it comes (from what a reader's check computed, when
        # it hands that on), and joined until the batch is big enough.
        waiting: list[_Keys] = []
        count = 0
        for block in entries.blocks:
            if block:
                waiting.append(_Keys.of(block))
                count += len(block)
            if count >= BATCH_SIZE // 2:
                yield _Keys.joined(waiting)
                waiting, count = [], 0
        if waiting:
            yield _Keys.joined(waiting)
        return
    batch: list[ManifestEntry] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) >= BATCH_SIZE:
            yield _Keys.of(batch)
            batch = []
    if batch:
        yield _Keys.of(batch)


def audit_lists(
    exclusions: Sequence[Exclusion],
    trust: TrustStore,
    entries: Entries,
    source: ListSource,
    *,
    at: dt.datetime,
    strict: bool = False,
    match: Matcher | None = None,
) -> ListAudit:
    """Check a card's exclusion claims and its manifest entries against the lists.

    Args:
        exclusions: the verified card predicate's ``exclusions``.
        trust: the trust store (list signers and required lists).
        entries: the manifest's entries (already checked against the card; streamed once),
            one at a time or a block at a time (:class:`EntryBlocks`), on this thread. Unless
            they are a list, the first batch is read first; then the lists load on another
            thread, which matches the batches read here as they come (up to
            :data:`READ_AHEAD_BYTES` of them wait).
        source: where list versions are loaded from.
        at: "now", for key validity and freshness.
        strict: newly listed entries fail the "newly listed" check.
        match: matches the manifest instead of ``entries`` (which it then leaves unread): given
            the audit and the claimed and newer list versions, it records every finding in
            manifest order (:func:`record_match`) and returns the entries checked. For joins
            run elsewhere (:mod:`provenance.partitions.parallel`).

    Returns:
        A :class:`ListAudit`; failures are failed checks and violations, not exceptions.
    """
    audit = ListAudit()
    if match is not None:
        claimed, newer = _load_lists(audit, exclusions, trust, source, at=at, strict=strict)
        checked = match(audit, claimed, newer)
    elif isinstance(entries, list):  # in memory: nothing to read while the lists load
        claimed, newer = _load_lists(audit, exclusions, trust, source, at=at, strict=strict)
        batches = ((keys, None) for keys in _batches(entries))
        checked = _match_manifest(audit, batches, _indexed(claimed, newer))
    else:
        lists, checked = _read_beside(
            audit, _batches(entries), exclusions, trust, source, at, strict
        )
        claimed, newer = list(lists.claimed), list(lists.newer)
    applied = ", ".join(f"{c.list.name} v{c.list.version}" for c in claimed) or "none"
    entry_violations = audit.violation_count
    audit.add(
        "exclusions",
        entry_violations == 0,
        f"none of {checked} manifest entries is on the lists applied ({applied})"
        if entry_violations == 0
        else f"{entry_violations} manifest entries are on lists the card claims to have applied",
    )
    if audit.unevaluable:
        audit.add(
            "manifest URLs",
            False,
            f"{audit.unevaluable} entries cannot be evaluated against the lists, so the card"
            f" cannot be verified clean (first: {audit.unevaluable_example})",
        )
    if newer:
        audit.add(
            "newly listed",
            not (strict and audit.newly_listed_count),
            f"{audit.newly_listed_count} manifest entries are on later versions"
            f" ({', '.join(f'{c.list.name} v{c.list.version}' for c in newer)}) only"
            + (": remove them in the next release" if audit.newly_listed_count else ""),
        )
    return audit


def _read_beside(
    audit: ListAudit,
    batches: Iterator[_Keys],
    exclusions: Sequence[Exclusion],
    trust: TrustStore,
    source: ListSource,
    at: dt.datetime,
    strict: bool,
) -> tuple[MatchedLists, int]:
    """Read the manifest's batches on this thread, while another loads and indexes the lists
    and then matches the batches, in order, as they come (a pipeline over two cores: most of
    the matching is numpy, which releases the GIL). Up to :data:`READ_AHEAD_BYTES` of batches
    wait for it. Return the lists matched and the number of entries.

    Raises:
        What reading the batches raises, or loading and indexing the lists.
    """
    # The first batch is read before the other thread starts: a reader that forks (the
    # Merkle pass of a manifest read in another process) has forked by then.
    flow = _Flow(READ_AHEAD_BYTES)
    for first in itertools.islice(batches, 1):
        flow.put(first)

    def load_and_match() -> tuple[MatchedLists, int]:
        try:
            lists = _load_and_index(audit, exclusions, trust, source, at=at, strict=strict)
            flow.loaded(lists)
            return lists, _match_manifest(audit, flow.taken(), lists)
        finally:
            flow.stop()  # the reader no longer waits for room, nor helps

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        work = pool.submit(load_and_match)
        finished = False
        try:
            while flow.wait_for_room():  # False once the other thread has stopped
                keys = next(batches, None)
                if keys is None:
                    break
                flow.put(keys)
            finished = True
        finally:
            flow.close(abandon=not finished)
        # The manifest is read: this thread looks up batches still waiting, from the last,
        # while the other matches from the first (numpy, mostly without the GIL).
        flow.help()
        return work.result()


class _Flow:
    """Batches handed from the reading thread to the matching one, in order, holding at most
    about ``limit`` bytes (:attr:`_Keys.nbytes`) at once. Once the reading thread has put the
    last batch, it may look up waiting batches too (:meth:`help`); the matching thread uses
    what it found."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._items: collections.deque[_Waiting] = collections.deque()
        self._held = 0
        self._closed = False
        self._stopped = False
        self._lists: MatchedLists | None = None
        self._changed = threading.Condition()

    def put(self, keys: _Keys) -> None:
        """Hand over ``keys`` (room is not waited for: see :meth:`wait_for_room`)."""
        with self._changed:
            self._items.append(_Waiting(keys))
            self._held += keys.nbytes
            self._changed.notify_all()

    def wait_for_room(self) -> bool:
        """Wait until less than ``limit`` bytes are held; False if the taker has stopped."""
        with self._changed:
            self._changed.wait_for(lambda: self._stopped or self._held < self._limit)
            return not self._stopped

    def close(self, *, abandon: bool = False) -> None:
        """No more batches come; with ``abandon``, those not yet taken are dropped."""
        with self._changed:
            self._closed = True
            if abandon:
                self._items.clear()
            self._changed.notify_all()

    def loaded(self, lists: MatchedLists) -> None:
        """The lists are ready: batches can be looked up (by :meth:`help` too)."""
        with self._changed:
            self._lists = lists
            self._changed.notify_all()

    def stop(self) -> None:
        """The taker takes no more: the reader stops waiting for room, and helping."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    def help(self) -> None:
        """Look up waiting batches, the last first, until none is left to look up or the
        taker stops; a lookup that raises is left to the taker (which looks it up again)."""
        with self._changed:
            self._changed.wait_for(lambda: self._stopped or self._lists is not None)
        while True:
            with self._changed:
                lists = self._lists
                waiting = next((w for w in reversed(self._items) if w.state == _NEW), None)
                if self._stopped or lists is None or waiting is None:
                    return
                waiting.state = _LOOKING
            looked: _Looked | None = None
            try:
                looked = _look_up(waiting.keys, lists)
            except Exception:  # noqa: S110 - the taker looks it up again, and raises that
                pass
            finally:  # also on an interrupt: the taker must not wait for this batch forever
                with self._changed:
                    waiting.looked = looked
                    waiting.state = _NEW if looked is None else _DONE
                    self._changed.notify_all()
            if looked is None:
                return

    def taken(self) -> Iterator[tuple[_Keys, _Looked | None]]:
        """The batches, in order, as they come, until the reader closes the flow; each with
        what :meth:`help` found for it, or None."""
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._items or self._closed)
                if not self._items:
                    return
                waiting = self._items.popleft()
                self._held -= waiting.keys.nbytes
                self._changed.notify_all()
                # A batch being looked up by the helper is waited for, not looked up twice.
                self._changed.wait_for(waiting.not_looked_up_elsewhere)
            yield waiting.keys, waiting.looked


_NEW, _LOOKING, _DONE = range(3)


class _Waiting:
    """A batch in a :class:`_Flow`, and what the helper found for it."""

    __slots__ = ("keys", "looked", "state")

    def __init__(self, keys: _Keys) -> None:
        self.keys = keys
        self.state = _NEW
        self.looked: _Looked | None = None

    def not_looked_up_elsewhere(self) -> bool:
        return self.state != _LOOKING


def _load_lists(
    audit: ListAudit,
    exclusions: Sequence[Exclusion],
    trust: TrustStore,
    source: ListSource,
    *,
    at: dt.datetime,
    strict: bool,
) -> tuple[list[CachedList], list[CachedList]]:
    """Load and check every cited version and any newer one, recording a check for each;
    return the claimed versions that passed and the newer versions to match too."""
    names = [claim.name for claim in exclusions]
    claimed: list[CachedList] = []
    newer: list[CachedList] = []
    for claim in exclusions:
        label = f"list {claim.name} v{claim.version}"
        if names.count(claim.name) > 1:
            audit.add(label, False, "the card cites this list more than once")
            continue
        cached, detail = _load_claimed(claim, source, trust, at)
        if cached is None:
            audit.add(label, False, detail)
            continue
        later, problem = _newer(claim.name, cached, source, trust, at)
        if problem is not None:
            audit.add(label, False, f"{detail}; {problem}")
            continue
        newest = later or cached
        if later is not None:
            detail += f"; v{later.list.version} is the newest version cached"
        ok = True
        if newest.expires <= at:
            ok = not strict
            detail += "; " + _staleness(newest, at, strict=strict)
        audit.add(label, ok, detail)
        claimed.append(cached)
        if later is not None:
            newer.append(later)
    # Lists the trust store requires are checked against the card by provenance.verify on
    # every verification, with or without the lists.
    return claimed, newer


def _indexed(claimed: Sequence[CachedList], newer: Sequence[CachedList]) -> MatchedLists:
    """The lists to match and their indexes.

    Raises:
        FormatError: a list cannot be indexed (see :class:`~provenance.lists.match.ListIndex`).
    """
    from provenance.lists.match import ListIndex

    claimed_index = ListIndex([c.list for c in claimed])
    newer_index = ListIndex([c.list for c in newer]) if newer else None
    return MatchedLists(claimed, newer, claimed_index, newer_index)


def _load_and_index(
    audit: ListAudit,
    exclusions: Sequence[Exclusion],
    trust: TrustStore,
    source: ListSource,
    *,
    at: dt.datetime,
    strict: bool,
) -> MatchedLists:
    """:func:`_load_lists`, then :func:`_indexed` (both on the loading thread)."""
    return _indexed(*_load_lists(audit, exclusions, trust, source, at=at, strict=strict))


def _match_manifest(
    audit: ListAudit, batches: Iterable[tuple[_Keys, _Looked | None]], lists: MatchedLists
) -> int:
    """Match every entry; fill the audit's violations and newly listed. Return the count.

    ``batches``: each batch with what it matches if that is known already (else None).
    """
    from provenance.lists.match import NO_MATCH

    checked = 0
    newer = lists.newer_index is not None
    for batch, looked in batches:
        checked += batch.count
        results, later, interesting = looked or _look_up(batch, lists)
        ids = batch.ids
        for number in interesting:
            now = results.get(number, NO_MATCH)
            then = later.get(number, NO_MATCH) if newer else None
            record_match(audit, ids[number], now, then, lists)
    return checked


_Looked: TypeAlias = "tuple[dict[int, RecordMatch], dict[int, RecordMatch], list[int]]"


def _look_up(batch: _Keys, lists: MatchedLists) -> _Looked:
    """What a batch's entries that matched anything match on the claimed versions and on the
    newer ones (by position), and those positions, in order. Changes nothing."""
    count = batch.count
    urls = batch.urls if batch.urls is not None else [None] * count
    texts = batch.texts if batch.texts is not None else [None] * count
    # Almost every entry matches nothing: only the others are looked at, in order, instead
    # of a Python loop over the whole manifest.
    results = lists.claimed_index.matched_records(urls, batch.contents, texts)
    newer_index = lists.newer_index
    if newer_index is None:
        return results, {}, list(results)
    later = newer_index.matched_records(urls, batch.contents, texts)
    return results, later, sorted({*results, *later})


_URL = operator.attrgetter("url")
_SHA256 = operator.attrgetter("sha256")
_TEXT_SHA256 = operator.attrgetter("textSha256")
_ID = operator.attrgetter("id")


@dataclass(frozen=True, slots=True)
class _Keys:
    """A batch of manifest entries as matching needs it, in a fraction of the entries' memory
    (what is held while the lists load): the content digests as one ``(n, 32)`` array, the
    ids, and the URLs and text digests only when some entry has one."""

    count: int
    ids: list[str]
    contents: Any
    """The content digests, decoded: an ``(n, 32)`` uint8 array."""
    urls: list[str | None] | None
    texts: list[str | None] | None
    nbytes: int
    """About the memory held: the arrays, and the strings as if nothing else held them."""

    @classmethod
    def of(cls, entries: Sequence[ManifestEntry]) -> _Keys:
        """The keys of ``entries``.

        Raises:
            FormatError: a digest is not 64 lower-case hex digits (the entries were not
                checked).
        """
        import numpy as np

        from provenance._kernels import hex_digest_rows
        from provenance.manifest.reader import CheckedEntries

        count = len(entries)
        if isinstance(entries, CheckedEntries) and len(entries.ids) == count:
            # What the block check computed from the same entries: their digests decoded as it
            # checked them, their ids, and whether any has a text digest. The ids are held by
            # the check (ids already seen) until the read ends: here they cost a pointer each.
            ids = entries.ids
            contents = np.frombuffer(entries.digests, dtype=np.uint8).reshape(count, 32)
            has_texts = entries.has_texts
            id_bytes = 8 * count
        else:
            ids = list(map(_ID, entries))
            contents = hex_digest_rows(list(map(_SHA256, entries)), what="manifest sha256")
            has_texts = any(map(_TEXT_SHA256, entries))
            id_bytes = _strings_bytes(ids)
        # Most manifests have no URLs or no text digests: one C-speed pass says so.
        urls: list[str | None] | None = (
            list(map(_URL, entries)) if any(map(_URL, entries)) else None
        )
        texts: list[str | None] | None = (
            [t or None for t in map(_TEXT_SHA256, entries)] if has_texts else None
        )
        nbytes = int(contents.nbytes) + id_bytes
        for values in (urls, texts):
            if values is not None:
                nbytes += _strings_bytes(list(filter(None, values)))
        return cls(count, ids, contents, urls, texts, nbytes)

    @classmethod
    def joined(cls, parts: Sequence[_Keys]) -> _Keys:
        """The keys of the entries of ``parts``, in order, as one batch."""
        if len(parts) == 1:
            return parts[0]
        import numpy as np

        count = sum(p.count for p in parts)
        contents = np.concatenate([p.contents for p in parts])
        return cls(
            count,
            list(itertools.chain.from_iterable(p.ids for p in parts)),
            contents,
            _joined_values([(p.urls, p.count) for p in parts]),
            _joined_values([(p.texts, p.count) for p in parts]),
            sum(p.nbytes for p in parts),
        )


def _joined_values(
    parts: Sequence[tuple[list[str | None] | None, int]],
) -> list[str | None] | None:
    """Optional values of several batches as one list (None if no batch has any)."""
    if all(values is None for values, _ in parts):
        return None
    return list(itertools.chain.from_iterable(values or [None] * count for values, count in parts))


def _strings_bytes(values: list[str]) -> int:
    """About the memory of ``values``: a pointer, an object header and the characters each."""
    return sum(map(len, values)) + 57 * len(values)


@dataclass(frozen=True, slots=True)
class MatchedLists:
    """The list versions matched against and their indexes (what a finding names): hits on
    ``claimed_index`` are violations, hits on ``newer_index`` newly listed."""

    claimed: Sequence[CachedList]
    newer: Sequence[CachedList]
    claimed_index: ListIndex
    newer_index: ListIndex | None


def record_match(
    audit: ListAudit,
    entry_id: str,
    now: RecordMatch,
    then: RecordMatch | None,
    lists: MatchedLists,
) -> None:
    """Record what matched one manifest entry: ``now`` on the claimed versions (violations),
    ``then`` on the newer ones (newly listed, unless the same list's claimed version matched).
    Entries are recorded in manifest order."""
    on_claimed = set()
    for hit in now.hits:
        the_list = lists.claimed[hit.list_number].list
        on_claimed.add(the_list.name)
        _record(audit.violations, entry_id, the_list, lists.claimed_index.entry(hit))
    audit.violation_count += bool(now.hits)
    reason = now.unevaluable
    if then is not None and lists.newer_index is not None:
        fresh = [h for h in then.hits if lists.newer[h.list_number].list.name not in on_claimed]
        for hit in fresh:
            the_list = lists.newer[hit.list_number].list
            _record(audit.newly_listed, entry_id, the_list, lists.newer_index.entry(hit))
        audit.newly_listed_count += bool(fresh)
        reason = reason or then.unevaluable
    if reason is not None:
        if not audit.unevaluable:
            audit.unevaluable_example = f"{entry_id}: {reason}"
        audit.unevaluable += 1


def _record(target: list[ListFinding], entry_id: str, the_list: Any, entry: Any) -> None:
    if len(target) < MAX_REPORTED:
        target.append(
            ListFinding(
                id=entry_id,
                list=the_list.name,
                version=the_list.version,
                entry=ListedEntry(type=entry.type, value=entry.value, category=entry.category),
            )
        )
