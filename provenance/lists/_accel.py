"""The batch accelerator of the match index (private): many URLs at a time, and bulk tables.

:meth:`provenance.lists.index.ListIndex.match_url` is the specification: one URL, parsed by the
WHATWG parser, looked up suffix by suffix. This module answers exactly as it does, faster, and
the tests hold it to that (hypothesis, and every evasion spelling of ``tests/test_match.py``):

- :class:`UrlAccelerator` matches a batch of URLs. The host of every plain
  ``http(s)://host/...`` URL (:data:`provenance.lists.urls.PLAIN_URL`) is found by one regular
  expression applied in C; every suffix of every such host on a label boundary is hashed at
  once (numpy, :func:`provenance._kernels.range_hashes`), and only the suffixes whose hash is in
  a bitmap of the listed domains' hashes are looked up, so that almost no Python code runs per
  URL. Every other URL goes to the specification.
- :func:`add_plain_domains` fills the domain table of a list whose ``domain`` entries are all
  plain hosts in one step, leaving it exactly as adding them one at a time would.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from provenance._kernels import polynomial_prefix, range_hashes
from provenance.errors import InvalidURLError
from provenance.lists._refs import NO_REFS, Refs, Slot, refs_of
from provenance.lists.urls import PLAIN_HOST, PLAIN_URL

__all__ = ["UrlAccelerator", "add_plain_domains"]

_URLS_PER_STEP = 4096
_MAX_PLAIN_HOST = 255
"""Longer hosts go to the parser (no listed domain is longer than 253 characters), which also
bounds the hashing tables."""
_GROUP_1 = operator.itemgetter(1)
# Two odd multipliers: each spreads a hash's bits into its high ones, which pick a bit.
_HASH_MIXES = (np.uint64(0xD6E8FEB86659FD93), np.uint64(0xBF58476D1CE4E5B9))
_BIT = np.array([1 << bit for bit in range(8)], dtype=np.uint8)


def _take_slow(hosts: list[str | None] | list[str], test: Callable[[Any], bool]) -> list[int]:
    """Replace the hosts for which ``test`` is true by ``""``; return their positions."""
    positions = [number for number, host in enumerate(hosts) if test(host)]
    for number in positions:
        hosts[number] = ""
    return positions


def _is_none(host: str | None) -> bool:
    return host is None


def _needs_parser(host: str | None) -> bool:
    """Whether a host :data:`PLAIN_URL` found is still one for the parser (not plain, or long)."""
    return host is not None and ("xn--" in host or len(host) > _MAX_PLAIN_HOST)


def _byte_hashes(
    data: npt.NDArray[np.uint8], starts: npt.NDArray[np.intp], ends: npt.NDArray[np.intp]
) -> npt.NDArray[np.uint64]:
    """The polynomial hashes of the byte strings ``data[starts[i]:ends[i]]``, each byte ``c``
    counted as ``c + 1`` (so that no string but the empty one hashes to 0)."""
    values = data.astype(np.uint64)
    values += np.uint64(1)
    return range_hashes(polynomial_prefix(values), starts, ends)


class _SuffixFilter:
    """A Bloom filter of the listed domains: which host suffixes may be listed.

    Each domain sets two bits of a bitmap of about 32 bits per domain. A suffix with either of
    its bits clear is not listed; one with both set is looked up exactly (a false positive only
    costs a lookup). About 0.4 % of the other suffixes pass; with one bit per domain it was 3 %,
    and a common suffix (``com.br``) that happened to collide was looked up for every URL.
    """

    def __init__(self, domains: Iterable[str]) -> None:
        hosts = list(domains)
        self._bits = min(34, max(16, (32 * len(hosts)).bit_length()))
        self._shift = np.uint64(64 - self._bits)
        self._bitmap = np.zeros(1 << (self._bits - 3), dtype=np.uint8)
        fewest, most = 1, 0  # label counts of the hosts: (1, 0) when there are none
        for start in range(0, len(hosts), 1 << 16):
            data = np.frombuffer(
                ("\n".join(hosts[start : start + (1 << 16)]) + "\n").encode("utf-8"), np.uint8
            )
            ends = np.flatnonzero(data == 0x0A)
            starts = np.concatenate(([0], ends[:-1] + 1))
            hashes = _byte_hashes(data, starts, ends)
            for slots in self._slots(hashes):
                np.bitwise_or.at(self._bitmap, slots >> np.uint64(3), _BIT[slots & np.uint64(7)])
            dots = np.concatenate(([0], np.cumsum(data == 0x2E)))
            labels = dots[ends] - dots[starts] + 1
            fewest = int(labels.min()) if not start else min(fewest, int(labels.min()))
            most = max(most, int(labels.max()))
        self.labels = (fewest, most)
        """The fewest and most labels a listed domain has."""

    def _slots(self, hashes: npt.NDArray[np.uint64]) -> list[npt.NDArray[np.uint64]]:
        """The two bit numbers of each hash."""
        slots = []
        for mix in _HASH_MIXES:
            slot = hashes * mix
            slot >>= self._shift
            slots.append(slot)
        return slots

    def _marked(self, hashes: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
        """Non-zero where both bits of a hash are set."""
        first, second = self._slots(hashes)
        marked: npt.NDArray[np.uint8] = self._bitmap[first >> np.uint64(3)]
        marked &= _BIT[first & np.uint64(7)]
        found = np.flatnonzero(marked)
        # Most suffixes fail the first bit: the second is looked at for the others only.
        second = second[found]
        marked[found] = self._bitmap[second >> np.uint64(3)] & _BIT[second & np.uint64(7)]
        return marked

    def candidates(self, text: str) -> list[tuple[int, int]]:
        """Return ``(host number, offset)`` of every suffix that may be listed, in order.

        ``text`` is ASCII hosts, each followed by a newline (an empty host matches nothing).
        Only suffixes with as many labels as some listed domain are considered.
        """
        low, high = self.labels
        data = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        newline = data == 0x0A
        dot = data == 0x2E
        ends = np.flatnonzero(newline)
        # A label starts at the beginning and after every dot or newline, unless it is empty.
        label = np.empty(data.size, dtype=bool)
        label[0] = True
        np.logical_or(dot[:-1], newline[:-1], out=label[1:])
        label &= ~newline
        starts = np.flatnonzero(label)
        hosts = np.searchsorted(ends, starts)
        stops = ends[hosts]
        dots = np.empty(data.size + 1, dtype=np.int32)
        dots[0] = 0
        np.cumsum(dot, out=dots[1:])
        labels = dots[stops] - dots[starts] + 1
        keep = np.flatnonzero((labels >= low) & (labels <= high))
        starts, stops, hosts = starts[keep], stops[keep], hosts[keep]
        chosen = np.flatnonzero(self._marked(_byte_hashes(data, starts, stops)))
        if not chosen.size:
            return []
        hosts = hosts[chosen]
        first_byte = np.concatenate(([0], ends[:-1] + 1))
        offsets = starts[chosen] - first_byte[hosts]
        return list(zip(hosts.tolist(), offsets.tolist(), strict=True))


class UrlAccelerator:
    """Matches batches of URLs against one index's tables, as its ``match_url`` would."""

    def __init__(self, domains: Mapping[str, Slot], rules: Mapping[str, object]) -> None:
        """Accelerate lookups in ``domains`` (host -> entry numbers; not changed afterwards).

        ``rules`` is keyed by the hosts with ``url`` or ``url-prefix`` rules: their URLs always
        go to the specification.
        """
        self._domains = domains
        self._rules = rules
        self._suffixes = _SuffixFilter(domains)
        self.labels = self._suffixes.labels
        """The fewest and most labels a listed domain has (``(1, 0)`` when none is listed)."""

    def match_urls(
        self, urls: Sequence[str | None], match_url: Callable[[str], Refs]
    ) -> tuple[list[Refs], dict[int, str]]:
        """Match many URLs; the same answers as ``match_url`` (the specification) gives.

        Returns:
            ``(refs, unevaluable)``: per URL the entry numbers it matches (``None`` matches
            nothing), and for each URL that ``match_url`` refused its position and why.
        """
        count = len(urls)
        results: list[Refs] = [NO_REFS] * count
        problems: dict[int, str] = {}
        slow: list[int] = []
        for first in range(0, count, _URLS_PER_STEP):
            chunk = urls[first : first + _URLS_PER_STEP]
            slow += [first + n for n in self._match_plain_urls(chunk, first, results)]
        for number in slow:
            url = urls[number]
            if url is None:
                continue
            try:
                results[number] = match_url(url)
            except InvalidURLError as exc:
                problems[number] = str(exc)
        return results, problems

    def _match_plain_urls(
        self, urls: Sequence[str | None], first: int, results: list[Refs]
    ) -> list[int]:
        """Match the plain ``http(s)://host/`` URLs of ``urls`` into ``results[first:]``.

        Returns:
            The positions (in ``urls``, ascending) of the URLs that need the specification.
        """
        texts = cast("Sequence[str]", urls)
        if None in urls:
            texts = ["" if url is None else url for url in urls]  # "" takes the slow path
        # The host of a plain URL, found by a regular expression in C, else None.
        matches = cast("Iterable[re.Match[str]]", map(PLAIN_URL.match, texts))
        hosts: list[str | None] = list(map(_GROUP_1, matches))
        slow = _take_slow(hosts, _is_none) if None in hosts else []
        rules = self._rules
        if rules and not rules.keys().isdisjoint(hosts):
            slow += _take_slow(hosts, rules.__contains__)
        plain = cast("list[str]", hosts)  # "" where the URL is slow
        if self._domains:
            slow += self._match_plain_hosts(plain, first, results)
        else:
            # No domain entries: a plain host matches nothing, but one that needs the parser
            # may still be unevaluable.
            slow += _take_slow(plain, _needs_parser)
        return sorted(slow)

    def _match_plain_hosts(self, hosts: list[str], first: int, results: list[Refs]) -> list[int]:
        """Set ``results[first + i]`` to the domain entries plain host ``hosts[i]`` is under.

        Hosts that need the parser (``xn--`` labels, or longer than any listed domain can be)
        are replaced by ``""`` and their positions (in ``hosts``) returned. Every suffix of a
        host on a label boundary whose label count is within the listed domains' is hashed
        (vectorized, see :class:`_SuffixFilter`); only those whose hash is in the listed
        domains' filter are looked up, longest first, as the specification looks them up.
        """
        slow: list[int] = []
        text = "\n".join(hosts)
        if "xn--" in text or len(text) > _MAX_PLAIN_HOST * len(hosts):
            slow = _take_slow(hosts, _needs_parser)
            text = "\n".join(hosts)
        domains = self._domains
        for number, offset in self._suffixes.candidates(text + "\n"):
            host = hosts[number]
            slot = domains.get(host[offset:] if offset else host)
            if slot is not None:
                results[first + number] += refs_of(slot)
        return slow


# Lines of plain hosts (possessive: a trailing dot or an empty label fails the match at once).
_PLAIN_HOST_LINES = re.compile(rf"{PLAIN_HOST}(?:\n{PLAIN_HOST})*+")
_VALUE_OF = operator.attrgetter("value")


def add_plain_domains(
    entries: Sequence[Any],
    types: list[str],
    others: Iterable[int],
    total: int,
    domains: dict[str, Slot],
) -> Iterable[int]:
    """Add a list's ``domain`` entries to ``domains`` in bulk when every value is a plain host.

    ``types`` are the entries' types, ``others`` the positions of the entries still to index,
    ``total`` the number of the list's first entry. Applies when every ``domain`` value is a
    plain host (:func:`provenance.lists.urls.is_plain_host`) listed once in the list; the table
    ends up exactly as adding the entries one at a time would leave it.

    Returns:
        The positions among ``others`` still to be indexed one at a time (all of them when
        the bulk path does not apply).
    """
    if "domain" not in types:
        return others
    is_domain = list(map(operator.eq, types, itertools.repeat("domain")))
    hosts = list(itertools.compress(map(_VALUE_OF, entries), is_domain))
    text = "\n".join(hosts)
    if "xn--" in text or not _PLAIN_HOST_LINES.fullmatch(text):
        return others
    refs = itertools.compress(range(total, total + len(types)), is_domain)
    added: dict[str, Slot] = dict(zip(hosts, refs, strict=True))
    if len(added) < len(hosts):
        return others  # a host listed twice: one at a time, so that its refs stay in order
    # Hosts already listed by earlier lists keep their (smaller) entry numbers first.
    smaller, larger = (added, domains) if len(added) < len(domains) else (domains, added)
    merged = {
        host: refs_of(domains[host]) + refs_of(added[host]) for host in smaller if host in larger
    }
    domains.update(added)
    domains.update(merged)
    if isinstance(others, range):
        return list(itertools.compress(others, map(operator.not_, is_domain)))
    return [number for number in others if not is_domain[number]]
