"""Which source claims each manifest entry, and the records, bytes and licenses that makes.

Sources claim manifest entries by path globs (.gitignore style: ``*`` stays in one path
segment, ``**`` spans any number; see :mod:`provenance.globs`) or by URL domains (the host and
its subdomains). Sources are tried in the order written and the first that claims an entry, by
either, takes it; a record's own ``source`` column wins over both. An entry's own ``license``
wins over its source's.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from provenance.card.model import SourceDescription
from provenance.errors import FormatError, InputError
from provenance.globs import GlobSet, all_plain
from provenance.licenses import normalize_license
from provenance.manifest import ManifestEntry

SourceLike = SourceDescription | Mapping[str, Any]
"""A source: typed, or a spec's ``sources`` item (read with :meth:`SourceDescription.from_dict`)."""


_BLOCK = 16384
"""Entries counted at once by :meth:`Tallier.add` (memory stays bounded on a streamed manifest)."""
_ID = operator.attrgetter("id")
_SIZE = operator.attrgetter("size")
_SOURCE = operator.attrgetter("source")
_LICENSE = operator.attrgetter("license")
_URL = operator.attrgetter("url")


def described(sources: Sequence[SourceLike]) -> list[SourceDescription]:
    """Return ``sources`` as typed descriptions (a card's :class:`~provenance.card.Source` is
    one; a spec's dict is read)."""
    return [
        s if isinstance(s, SourceDescription) else SourceDescription.from_dict(s) for s in sources
    ]


def _host_of(url: str) -> str | None:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.rstrip(".").lower() if host else None


class SourceAssigner:
    """Maps manifest entries to sources, as the sources claim them.

    The sources are tried in the order written; the first whose path globs match the entry's
    id or whose domains hold the host of its URL takes it. A record's own ``source`` wins.
    """

    def __init__(self, sources: Sequence[SourceLike]) -> None:
        """Compile the sources' path globs and domains.

        Raises:
            FormatError: a path glob is not valid.
        """
        self.sources = described(sources)
        self._by_id = {s.id: s for s in self.sources}
        self._globs: list[GlobSet] = []
        for index, source in enumerate(self.sources):
            try:
                self._globs.append(GlobSet(source.paths or ()))
            except FormatError as exc:
                raise FormatError(f"sources/{index} ({source.id}): paths: {exc}") from None
        # Each domain maps to the first source (by position) that lists it.
        self._domains: dict[str, int] = {}
        for index, source in enumerate(self.sources):
            for domain in source.domains or ():
                self._domains.setdefault(domain.rstrip(".").lower(), index)

    def assign(self, entry: ManifestEntry) -> str:
        """Return the id of the source claiming ``entry``.

        Raises:
            InputError: the entry names an unknown source, or no source claims it.
        """
        return self.source_of(entry).id

    def claimed_by_paths(self, ids: Sequence[str]) -> list[list[int]] | None:
        """For entries that name no source and have no URL a domain could claim: per source
        (in order), the positions of those it claims (as :meth:`source_of` says), from their
        ``ids``; a source at a time over the ids no source before it claimed
        (:meth:`GlobSet.matches_many`). None if some id is claimed by no source
        (:meth:`source_of` says which, and raises)."""
        claimed: list[list[int]] = [[] for _ in self.sources]
        pending: Sequence[int] = range(len(ids))
        plain = all_plain(ids)  # and so is any part of them
        for index, globs in enumerate(self._globs):
            if not pending:
                break
            if not globs:
                continue
            asked = ids if len(pending) == len(ids) else [ids[i] for i in pending]
            hits = globs.matches_many(asked, plain=plain)
            claimed[index] = list(itertools.compress(pending, hits))
            if len(claimed[index]) < len(pending):
                pending = list(itertools.compress(pending, map(operator.not_, hits)))
            else:
                pending = ()
        return None if pending else claimed

    @property
    def has_domains(self) -> bool:
        """Whether some source claims entries by URL domain."""
        return bool(self._domains)

    def source_of(self, entry: ManifestEntry) -> SourceDescription:
        """Return the source claiming ``entry``.

        Raises:
            InputError: the entry names an unknown source, or no source claims it.
        """
        if entry.source is not None:
            named = self._by_id.get(entry.source)
            if named is None:
                raise InputError(
                    f"entry {entry.id!r} names source {entry.source!r},"
                    " which the spec does not define"
                )
            return named
        by_domain = len(self.sources)
        if entry.url and self._domains:
            host = _host_of(entry.url)
            while host:
                by_domain = min(by_domain, self._domains.get(host, by_domain))
                _, _, host = host.partition(".")
        # Only sources written before the one the domain names can still take the entry.
        for index in range(by_domain):
            globs = self._globs[index]
            if globs and globs.matches(entry.id):
                return self.sources[index]
        if by_domain < len(self.sources):
            return self.sources[by_domain]
        raise InputError(
            f"entry {entry.id!r} is claimed by no source; add a path glob or domain that covers it"
        )


def entry_license(entry: ManifestEntry, source: SourceDescription) -> str:
    """Return the license of ``entry``: its own (normalized to SPDX), else its source's.

    Raises:
        FormatError: the entry's own license is not a valid SPDX expression.
    """
    if entry.license is None:
        return source.license
    try:
        return normalize_license(entry.license)
    except FormatError as exc:
        raise FormatError(f"entry {entry.id!r}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Tally:
    """Records and bytes per source id and per license expression."""

    by_source: dict[str, tuple[int, int]]
    by_license: dict[str, tuple[int, int]]


class Tallier:
    """Counts records and bytes per source and per license as entries are added (see
    :func:`tally`), so that one pass over a manifest can feed it and another check."""

    def __init__(self, sources: Sequence[SourceLike], *, defer_errors: bool = False) -> None:
        """Compile the sources (see :class:`SourceAssigner`). With ``defer_errors`` an entry
        that cannot be counted stops the count without raising; :meth:`result` raises it (a
        verifier first learns whether the manifest is the card's at all: for one that is not,
        that is the finding, not an entry the card's sources do not know)."""
        self._assigner = SourceAssigner(sources)
        self._by_source = {s.id: [0, 0] for s in self._assigner.sources}
        self._by_license: dict[str, list[int]] = {}
        self._defer = defer_errors
        self._error: InputError | FormatError | None = None

    def add(self, entries: Iterable[ManifestEntry]) -> None:
        """Count ``entries``.

        Raises:
            InputError: an entry is claimed by no source or names an unknown one.
            FormatError: an entry's license is not a valid SPDX expression.
        """
        # A block at a time: ``entries`` may be a whole manifest, streamed.
        iterator = iter(entries)
        while block := list(itertools.islice(iterator, _BLOCK)):
            if self._error is not None:
                continue  # the count has stopped; the entries still pass through
            try:
                if not self._add_by_paths(block):
                    self._add_one_by_one(block)
            except (InputError, FormatError) as exc:
                if not self._defer:
                    raise
                self._error = exc

    def _add_one_by_one(self, entries: list[ManifestEntry]) -> None:
        source_of, by_source, by_license = (
            self._assigner.source_of,
            self._by_source,
            self._by_license,
        )
        for entry in entries:
            source = source_of(entry)
            size = entry.size or 0
            by_source[source.id][0] += 1
            by_source[source.id][1] += size
            license_id = source.license if entry.license is None else entry_license(entry, source)
            counts = by_license.setdefault(license_id, [0, 0])
            counts[0] += 1
            counts[1] += size

    def _add_by_paths(self, entries: list[ManifestEntry]) -> bool:
        """Count ``entries`` a source at a time, if each is claimed by path and has no license
        of its own (most blocks of most manifests): what the entry-by-entry count would give,
        without a call per entry. False, having counted nothing, if that does not apply."""
        assigner = self._assigner
        if (
            any(map(_SOURCE, entries))
            or any(map(_LICENSE, entries))
            or (assigner.has_domains and any(map(_URL, entries)))
        ):
            return False
        claimed = assigner.claimed_by_paths(list(map(_ID, entries)))
        if claimed is None:
            return False  # the entry-by-entry count names the first unclaimed entry
        sizes = list(map(_SIZE, entries))
        has_sizes = any(sizes)
        for source, positions in zip(assigner.sources, claimed, strict=True):
            count = len(positions)
            if not count:
                continue
            size = sum(filter(None, map(sizes.__getitem__, positions))) if has_sizes else 0
            self._by_source[source.id][0] += count
            self._by_source[source.id][1] += size
            counts = self._by_license.setdefault(source.license, [0, 0])
            counts[0] += count
            counts[1] += size
        return True

    def result(self) -> Tally:
        """The counts of the entries added so far.

        Raises:
            InputError, FormatError: with ``defer_errors``, the error that stopped the count.
        """
        if self._error is not None:
            raise self._error
        return Tally(
            {k: (v[0], v[1]) for k, v in self._by_source.items()},
            {k: (v[0], v[1]) for k, v in sorted(self._by_license.items())},
        )


def tally(entries: Iterable[ManifestEntry], sources: Sequence[SourceLike]) -> Tally:
    """Count records and bytes per source and per license (an entry's own license wins).

    Raises:
        InputError: an entry is claimed by no source or names an unknown one.
        FormatError: an entry's license is not a valid SPDX expression.
    """
    tallier = Tallier(sources)
    tallier.add(entries)
    return tallier.result()
