"""Exact lookup of SHA-256 digests among millions (``sha256`` and ``text-sha256`` entries).

Pure numpy, no I/O. Content digests are matched by their 64-bit prefixes, confirmed on all 32
bytes: rows already in order (a published list's) are searched in place, about 33 bytes per
listed hash; others through a sorted array of 64-bit keys (the prefix with the row number packed
into its low bits), about 40; a Python set of strings takes ~150. Hex digests
(list entries, manifest fields) are checked and decoded in bulk by
:func:`provenance._kernels.hex_digest_rows`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import numpy.typing as npt

from provenance._kernels import hex_digest_rows

__all__ = ["Digest", "DigestIndex", "digest_rows", "digests_array"]

_Ints = npt.NDArray[np.int64]
Digest = bytes | str
"""A SHA-256 as 32 bytes, or as 64 lower-case hex digits."""


class DigestIndex:
    """Exact lookup of 32-byte digests among many, in about 40 bytes per digest (33 when the
    digests come in order).

    The digests are kept as one ``(n, 32)`` uint8 array, and their 8-byte big-endian prefixes
    are searched. Rows in order of prefix (the rows of a published list, whose entries are in
    order of value) are searched in place, through every ``STRIDE``-th prefix: about one byte
    per digest more. Rows in any other order get a sorted uint64 array holding, per row, the
    prefix with the low ``bits`` bits replaced by the row number. Either way a query's
    candidates are the rows sharing its prefix, confirmed against all 32 bytes.
    """

    STRIDE = 8
    SPAN_PER_QUERY = 32
    """Queries in order (a manifest's) are searched among the run of rows they span, taken out
    at once, when it holds at most this many rows per query: taking out a row's prefix costs
    far less than a query's window of ``STRIDE`` rows gathered one by one."""

    def __init__(self, digests: npt.NDArray[np.uint8], refs: npt.NDArray[np.int64] | None = None):
        """Index ``digests`` (shape ``(n, 32)``); ``refs[i]`` is what row ``i`` reports."""
        if digests.ndim != 2 or digests.shape[1] != 32:
            raise ValueError("digests must have shape (n, 32)")
        count = digests.shape[0]
        self._rows = np.ascontiguousarray(digests, dtype=np.uint8)
        self._refs = refs
        self._bits = max(1, (count - 1).bit_length()) if count else 1
        self._low = np.uint64((1 << self._bits) - 1)
        self._keys: npt.NDArray[np.uint64] | None = None
        self._sample: npt.NDArray[np.uint64] | None = None
        if _in_prefix_order(self._rows):
            self._sample = self._prefixes(self._rows[:: self.STRIDE])
            return
        keys = self._prefixes(self._rows)
        keys >>= np.uint64(self._bits)
        keys <<= np.uint64(self._bits)
        # Row numbers into the low bits, a chunk at a time (no n-sized temporary).
        for start in range(0, count, _CHUNK):
            stop = min(count, start + _CHUNK)
            keys[start:stop] |= np.arange(start, stop, dtype=np.uint64)
        keys.sort()
        self._keys = keys

    @staticmethod
    def _prefixes(rows: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
        # Big-endian, so that rows in byte order have prefixes in order. One copy of the first
        # 8 bytes of each row (a strided view of the rows as uint64), swapped on the way.
        return rows.view(">u8")[:, 0].astype(np.uint64)

    def __len__(self) -> int:
        """The number of digests indexed."""
        return int(self._rows.shape[0])

    @property
    def nbytes(self) -> int:
        """Memory held by the index."""
        refs = 0 if self._refs is None else self._refs.nbytes
        keys = self._keys if self._keys is not None else self._sample
        return int(self._rows.nbytes + (0 if keys is None else keys.nbytes) + refs)

    def lookup(self, queries: npt.NDArray[np.uint8]) -> tuple[_Ints, _Ints]:
        """Find every indexed row equal to each query row (shape ``(m, 32)``).

        Returns:
            ``(query_numbers, refs)``: parallel arrays, one pair per match, ordered by query.
        """
        empty = np.zeros(0, dtype=np.int64)
        if len(self) == 0 or queries.shape[0] == 0:
            return empty, empty
        queries = np.ascontiguousarray(queries, dtype=np.uint8)
        if self._sample is not None:
            query_numbers, rows = self._candidates_in_place(queries)
        else:
            query_numbers, rows = self._candidates_by_key(queries)
        if rows.size == 0:
            return empty, empty
        equal = np.all(self._rows[rows] == queries[query_numbers], axis=1)
        query_numbers, rows = query_numbers[equal], rows[equal]
        sort = np.lexsort((rows, query_numbers))
        query_numbers, rows = query_numbers[sort], rows[sort]
        refs = rows if self._refs is None else self._refs[rows].astype(np.int64)
        return query_numbers, refs

    def _candidates_by_key(self, queries: npt.NDArray[np.uint8]) -> tuple[_Ints, _Ints]:
        """``(query number, row)`` for every row sharing a query's prefix (sorted keys)."""
        keys = self._keys
        assert keys is not None
        prefixes = self._prefixes(queries)
        prefixes >>= np.uint64(self._bits)
        prefixes <<= np.uint64(self._bits)
        order = np.argsort(prefixes)
        sorted_prefixes = prefixes[order]
        low = np.searchsorted(keys, sorted_prefixes, side="left")
        # Almost every query misses: find the ones whose prefix is present with one search,
        # then the end of their candidate range with a second search over those alone.
        found = (keys[np.minimum(low, keys.size - 1)] & ~self._low) == sorted_prefixes
        found &= low < keys.size
        hit = np.nonzero(found)[0]
        high = np.searchsorted(keys, sorted_prefixes[hit] | self._low, side="right")
        query_positions, positions = _expand(hit, low[hit], high)
        rows = (keys[positions] & self._low).astype(np.int64)
        return order[query_positions].astype(np.int64), rows

    def _candidates_in_place(self, queries: npt.NDArray[np.uint8]) -> tuple[_Ints, _Ints]:
        """``(query number, row)`` for every row sharing a query's prefix (rows in order)."""
        prefixes = self._prefixes(queries)
        if bool(np.all(prefixes[1:] >= prefixes[:-1])):
            span = self._span_of(prefixes)
            if span is not None:
                return self._candidates_in_span(prefixes, *span)
        order = np.argsort(prefixes)
        sorted_prefixes = prefixes[order]
        low = self._first_row(sorted_prefixes, above=False)
        count = len(self)
        found = self._row_prefixes(np.minimum(low, count - 1)) == sorted_prefixes
        found &= low < count
        hit = np.nonzero(found)[0]
        high = self._first_row(sorted_prefixes[hit], above=True)
        query_positions, rows = _expand(hit, low[hit], high)
        return order[query_positions].astype(np.int64), rows

    def _span_of(self, sorted_prefixes: npt.NDArray[np.uint64]) -> tuple[int, int] | None:
        """The rows ``[first, stop)`` that can share a prefix with these queries (in order), if
        they are few enough (``SPAN_PER_QUERY`` per query) to be searched as one run; else None."""
        first = int(self._first_row(sorted_prefixes[:1], above=False)[0])
        stop = int(self._first_row(sorted_prefixes[-1:], above=True)[0])
        if stop - first > self.SPAN_PER_QUERY * sorted_prefixes.size:
            return None
        return first, stop

    def _candidates_in_span(
        self, sorted_prefixes: npt.NDArray[np.uint64], first: int, stop: int
    ) -> tuple[_Ints, _Ints]:
        """:meth:`_candidates_in_place` for queries in order whose candidates are all among
        rows ``[first, stop)``: one search of those rows' prefixes, taken out in one pass, in
        place of a window of ``STRIDE`` rows gathered per query."""
        empty = np.zeros(0, dtype=np.int64)
        if stop <= first:
            return empty, empty
        span = self._prefixes(self._rows[first:stop])
        low = np.searchsorted(span, sorted_prefixes, side="left")
        found = span[np.minimum(low, span.size - 1)] == sorted_prefixes
        found &= low < span.size
        hit = np.nonzero(found)[0]
        high = np.searchsorted(span, sorted_prefixes[hit], side="right")
        query_positions, rows = _expand(hit, low[hit], high)
        return query_positions.astype(np.int64), rows + first

    def _row_prefixes(self, rows: _Ints) -> npt.NDArray[np.uint64]:
        return self._rows.view(">u8")[:, 0][rows].astype(np.uint64)

    def _first_row(self, prefixes: npt.NDArray[np.uint64], *, above: bool) -> _Ints:
        """Per prefix, the first row whose prefix is greater than or equal to it (with
        ``above``: greater). The sample narrows it to one stride of rows, searched at once."""
        sample = self._sample
        assert sample is not None
        stride, count = self.STRIDE, len(self)
        # The sample entries before the answer: the row starting the last of them is before it
        # too, and the row starting the next one is not, so the answer is in that stride.
        before = np.searchsorted(sample, prefixes, side="right" if above else "left")
        base = np.maximum(before - 1, 0) * stride
        window = base[:, None] + np.arange(stride, dtype=np.int64)
        inside = window < count
        values = self._row_prefixes(np.minimum(window, count - 1))
        earlier = values <= prefixes[:, None] if above else values < prefixes[:, None]
        first: _Ints = base + np.sum(earlier & inside, axis=1, dtype=np.int64)
        return first

    def count_matches(self, queries: npt.NDArray[np.uint8]) -> int:
        """The number of query rows equal to at least one indexed row."""
        query_numbers, _ = self.lookup(queries)
        return int(np.unique(query_numbers).size)


def _in_prefix_order(rows: npt.NDArray[np.uint8]) -> bool:
    """Whether the 8-byte big-endian prefixes of ``rows`` never decrease (checked a chunk at a
    time: no n-sized temporary)."""
    count = rows.shape[0]
    for start in range(0, max(0, count - 1), _CHUNK):
        part = DigestIndex._prefixes(rows[start : start + _CHUNK + 1])
        if not bool(np.all(part[1:] >= part[:-1])):
            return False
    return True


def _expand(hit: _Ints, low: _Ints, high: _Ints) -> tuple[_Ints, _Ints]:
    """Every position in ``[low[i], high[i])``, with ``hit[i]`` beside each of them."""
    repeat = high - low
    positions = np.repeat(hit, repeat)
    starts = np.repeat(low, repeat)
    offsets = np.arange(positions.size) - np.repeat(np.cumsum(repeat) - repeat, repeat)
    return positions, (starts + offsets).astype(np.int64)


_CHUNK = 1 << 20


def digests_array(digests: Sequence[bytes]) -> npt.NDArray[np.uint8]:
    """Pack 32-byte digests into an ``(n, 32)`` uint8 array.

    Raises:
        ValueError: a digest is not 32 bytes long (lengths that merely add up are refused too).
    """
    joined = b"".join(digests)
    # A total of 32 per digest with none longer than 32: then each is exactly 32 bytes.
    if len(joined) != 32 * len(digests) or (digests and max(map(len, digests)) != 32):
        raise ValueError("digests must be 32 bytes each")
    return np.frombuffer(joined, dtype=np.uint8).reshape(-1, 32)


def digest_rows(digests: Sequence[Digest]) -> npt.NDArray[np.uint8]:
    """Pack digests of one kind (32 bytes each, or 64 lower-case hex digits each) into rows.

    Raises:
        FormatError: a hex digest is not 64 lower-case hex digits.
        ValueError: a digest given as bytes is not 32 bytes long.
        TypeError: bytes and strings are mixed.
    """
    # One kind per call: joining raises TypeError on a mix.
    if digests and isinstance(digests[0], str):
        return hex_digest_rows(cast("Sequence[str]", digests))
    return digests_array(cast("Sequence[bytes]", digests))
