"""Exact lookup of SHA-256 digests among millions (``sha256`` and ``text-sha256`` entries).

Pure numpy, no I/O. Content digests are matched with a sorted array of 64-bit keys (a 64-bit
prefix of the digest with the row number packed into its low bits), confirmed on all 32 bytes:
about 40 bytes per listed hash instead of the ~150 of a Python set of strings. Hex digests
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
    """Exact lookup of 32-byte digests among many, in about 40 bytes per digest.

    The digests are kept as one ``(n, 32)`` uint8 array. A sorted uint64 array holds, per row,
    the digest's first 8 bytes (big-endian) with the low ``bits`` bits replaced by the row
    number; a query's candidates are the keys sharing its prefix, confirmed against all 32 bytes.
    """

    def __init__(self, digests: npt.NDArray[np.uint8], refs: npt.NDArray[np.int64] | None = None):
        """Index ``digests`` (shape ``(n, 32)``); ``refs[i]`` is what row ``i`` reports."""
        if digests.ndim != 2 or digests.shape[1] != 32:
            raise ValueError("digests must have shape (n, 32)")
        count = digests.shape[0]
        self._rows = np.ascontiguousarray(digests, dtype=np.uint8)
        self._refs = refs
        self._bits = max(1, (count - 1).bit_length()) if count else 1
        keys = self._prefixes(self._rows)
        keys >>= np.uint64(self._bits)
        keys <<= np.uint64(self._bits)
        # Row numbers into the low bits, a chunk at a time (no n-sized temporary).
        chunk = 1 << 20
        for start in range(0, count, chunk):
            stop = min(count, start + chunk)
            keys[start:stop] |= np.arange(start, stop, dtype=np.uint64)
        # Published lists are in order of value (provenance.lists.model.ListEntry.sort_key), so
        # the rows of one list usually come sorted: one pass to see it instead of a sort.
        if count > 1 and not bool(np.all(keys[1:] >= keys[:-1])):
            keys.sort()
        self._keys = keys
        self._low = np.uint64((1 << self._bits) - 1)

    @staticmethod
    def _prefixes(rows: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
        # Big-endian: rows in byte order give keys in order (see __init__). One copy of the
        # first 8 bytes of each row (a strided view of the rows as uint64), swapped on the way.
        return rows.view(">u8")[:, 0].astype(np.uint64)

    def __len__(self) -> int:
        """The number of digests indexed."""
        return int(self._rows.shape[0])

    @property
    def nbytes(self) -> int:
        """Memory held by the index."""
        refs = 0 if self._refs is None else self._refs.nbytes
        return int(self._rows.nbytes + self._keys.nbytes + refs)

    def lookup(self, queries: npt.NDArray[np.uint8]) -> tuple[_Ints, _Ints]:
        """Find every indexed row equal to each query row (shape ``(m, 32)``).

        Returns:
            ``(query_numbers, refs)``: parallel arrays, one pair per match, ordered by query.
        """
        empty = np.zeros(0, dtype=np.int64)
        if len(self) == 0 or queries.shape[0] == 0:
            return empty, empty
        queries = np.ascontiguousarray(queries, dtype=np.uint8)
        prefixes = self._prefixes(queries)
        prefixes >>= np.uint64(self._bits)
        prefixes <<= np.uint64(self._bits)
        order = np.argsort(prefixes)
        sorted_prefixes = prefixes[order]
        keys = self._keys
        low = np.searchsorted(keys, sorted_prefixes, side="left")
        # Almost every query misses: find the ones whose prefix is present with one search,
        # then the end of their candidate range with a second search over those alone.
        found = (keys[np.minimum(low, keys.size - 1)] & ~self._low) == sorted_prefixes
        found &= low < keys.size
        hit = np.nonzero(found)[0]
        if hit.size == 0:
            return empty, empty
        high = np.searchsorted(keys, sorted_prefixes[hit] | self._low, side="right")
        # Expand every candidate range [low, high) into single positions.
        repeat = high - low[hit]
        query_positions = np.repeat(hit, repeat)
        starts = np.repeat(low[hit], repeat)
        offsets = np.arange(query_positions.size) - np.repeat(np.cumsum(repeat) - repeat, repeat)
        rows = (self._keys[starts + offsets] & self._low).astype(np.int64)
        query_numbers = order[query_positions].astype(np.int64)
        equal = np.all(self._rows[rows] == queries[query_numbers], axis=1)
        query_numbers, rows = query_numbers[equal], rows[equal]
        sort = np.lexsort((rows, query_numbers))
        query_numbers, rows = query_numbers[sort], rows[sort]
        refs = rows if self._refs is None else self._refs[rows].astype(np.int64)
        return query_numbers, refs

    def count_matches(self, queries: npt.NDArray[np.uint8]) -> int:
        """The number of query rows equal to at least one indexed row."""
        query_numbers, _ = self.lookup(queries)
        return int(np.unique(query_numbers).size)


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
