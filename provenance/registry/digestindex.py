"""An in-memory copy of the registry's ``digest`` table, for batched lookups.

:class:`DigestIndex` (pure: built from rows handed to it, no I/O) holds every registered digest
in the table's order (digest, kind, card, entry) as arrays: the 32-byte digests, their first 8
bytes as sorted integers to search, and each row's kind, card and entry id (the id already
encoded as a JSON string). :meth:`DigestIndex.answer` gives the JSON of a lookup's results,
pre-encoded, with a binary search per digest: several times faster than a query with the
digests in an ``IN`` list and the grouping of its rows in Python.

:class:`provenance.registry.storage.Storage` keeps one, built from the database and rebuilt
whenever a card is registered (by this process or another); until a rebuild is done, lookups
take the plain query. A test holds the two equal.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from provenance.registry import db

_ENCODE = msgspec.json.Encoder().encode
_KIND_TEXT = {kind: f'","kind":"{name}","matches":['.encode() for kind, name in db.KINDS.items()}
_NEXT = b',{"digest":"'
_CLOSE = b"]}" + _NEXT
_CLOSE_MATCH = b"}" + _CLOSE
_EMPTY_TAILS = {kind: text + _CLOSE for kind, text in _KIND_TEXT.items()}


class DigestIndex:
    """Every ``digest`` row, in the table's order (see the module docstring).

    Use :meth:`build`. ``cards`` is the highest card number the rows were read with (the
    database's state the index reflects).
    """

    def __init__(
        self,
        digests: bytes,
        kinds: bytes,
        cards: npt.NDArray[np.int32],
        ids: bytes,
        offsets: npt.NDArray[np.int64],
        matches: Mapping[int, bytes],
        *,
        last_card: int,
    ) -> None:
        self._digests = digests
        self._kinds = kinds
        self._cards = cards
        self._kinds_array = np.frombuffer(kinds, dtype=np.uint8)
        self._ids = ids
        self._offsets = offsets  # numpy: 8 bytes a row (a list of ints takes about 40)
        self._matches = dict(matches)
        # Per kind and card, what comes before a match's entry id in an answer.
        self._heads = {
            kind: {card: text + match for card, match in self._matches.items()}
            for kind, text in _KIND_TEXT.items()
        }
        count = len(kinds)
        words = np.frombuffer(digests, dtype=">u8").reshape(count, 4) if count else None
        self._prefixes = (
            np.zeros(0, dtype=np.uint64) if words is None else words[:, 0].astype(np.uint64)
        )
        if count and not bool(np.all(self._prefixes[1:] >= self._prefixes[:-1])):
            raise ValueError("the rows are not in the digest table's order")
        self._rows32 = (
            np.frombuffer(digests, dtype=np.uint8).reshape(count, 32)
            if count
            else np.zeros((0, 32), dtype=np.uint8)
        )
        # Where the rows of each row's digest end (the rows of one digest are adjacent).
        if count:
            starts = np.flatnonzero(np.any(self._rows32[1:] != self._rows32[:-1], axis=1)) + 1
            bounds = np.append(starts, count)
            self._ends = np.repeat(bounds, np.diff(np.insert(bounds, 0, 0)))
        else:
            self._ends = np.zeros(0, dtype=np.int64)
        self.last_card = last_card
        self.rows = count

    @classmethod
    def build(
        cls,
        rows: Iterable[Sequence[Any]],
        cards: Mapping[int, dict[str, Any]],
        *,
        last_card: int,
    ) -> DigestIndex:
        """Index ``(digest, kind, card_no, entry_no, entry_id)`` rows given in the table's order
        (digest, kind, card_no, entry_no); ``cards`` gives each card's match object without its
        ``entry``.

        Raises:
            ValueError: the rows are not in that order, or name a card not in ``cards``.
        """
        digests = bytearray()
        kinds = bytearray()
        numbers: list[int] = []
        ids = bytearray()
        offsets = [0]
        encode = _ENCODE
        for digest, kind, card_no, _entry_no, entry_id in rows:
            digests += digest
            kinds.append(kind)
            numbers.append(card_no)
            ids += encode(entry_id)
            offsets.append(len(ids))
        missing = set(numbers) - cards.keys()
        if missing:
            raise ValueError(f"rows name cards {sorted(missing)[:5]} that were not given")
        # A match is its card's object with "entry" last: '{"card":...,"publisher":[...],'
        # then '"entry":<id>}'.
        matches = {
            number: _ENCODE({k: v for k, v in card.items() if k != "entry"})[:-1] + b',"entry":'
            for number, card in cards.items()
        }
        return cls(
            bytes(digests),
            bytes(kinds),
            np.array(numbers, dtype=np.int32),
            bytes(ids),
            np.array(offsets, dtype=np.int64),
            matches,
            last_card=last_card,
        )

    def answer(self, wanted: Sequence[tuple[str, int]], keys: npt.NDArray[np.uint8]) -> bytes:
        """The JSON array of results for ``(digest hex, kind)`` pairs, in order: what
        :meth:`provenance.registry.storage.Storage.lookup` answers, encoded.

        ``keys`` are the digests as an ``(n, 32)`` uint8 array (decoded from ``wanted``).
        """
        if not wanted:
            return b"[]"
        prefixes = np.ascontiguousarray(keys[:, :8]).view(">u8").ravel().astype(np.uint64)
        # Sorted keys search faster (each search starts near the last one).
        order = np.argsort(prefixes)
        lows = np.empty(len(wanted), dtype=np.int64)
        lows[order] = np.searchsorted(self._prefixes, prefixes[order], "left")
        count = self.rows
        # The answer is '[{"digest":"' + d + tail + ... + d + tail + ']', each tail saying the
        # kind, the matches and '},{"digest":"' (one list of parts, joined once): a digest
        # nothing matches costs its hex digits and a shared tail.
        wanted_kinds = [k for _, k in wanted]
        tails = list(map(_EMPTY_TAILS.__getitem__, wanted_kinds))
        if count:
            self._fill_tails(wanted_kinds, keys, prefixes, lows, tails)
        hexes = "\n".join([d for d, _ in wanted]).encode().split(b"\n")
        joined = b"".join(itertools.chain.from_iterable(zip(hexes, tails, strict=True)))
        return b'[{"digest":"' + joined[: -len(_NEXT)] + b"]"

    def _fill_tails(
        self,
        wanted_kinds: list[int],
        keys: npt.NDArray[np.uint8],
        prefixes: npt.NDArray[np.uint64],
        lows: npt.NDArray[np.int64],
        tails: list[bytes],
    ) -> None:
        """Put the matches of the keys that have some into their ``tails``."""
        count = self.rows
        # The digest at each key's place, compared in bulk: equal means the key's rows start
        # there (and end at _ends). A key that shares only its first 8 bytes with the digest
        # there may still be further on: those (rare) keys are searched row by row.
        places = np.minimum(lows, count - 1)
        exact = np.all(self._rows32[places] == keys, axis=1)
        near = ~exact & (self._prefixes[places] == prefixes)
        kinds, ids, offsets = self._kinds, self._ids, self._offsets
        hits = np.flatnonzero(exact)
        firsts, stops = lows[hits], self._ends[places[hits]]
        # The common case, taken in bulk: one row with this digest, of the kind asked for.
        single = (stops - firsts == 1) & (
            self._kinds_array[firsts] == np.array(wanted_kinds, dtype=np.uint8)[hits]
        )
        ones = firsts[single]
        heads = self._heads
        for number, card, start, stop in zip(
            hits[single].tolist(),
            self._cards[ones].tolist(),
            offsets[ones].tolist(),
            offsets[ones + 1].tolist(),
            strict=True,
        ):
            tails[number] = heads[wanted_kinds[number]][card] + ids[start:stop] + _CLOSE_MATCH
        several = (stops - firsts) > 1
        for number, first, stop in zip(
            hits[several].tolist(), firsts[several].tolist(), stops[several].tolist(), strict=True
        ):
            kind = wanted_kinds[number]
            found = b",".join(
                [self._match_of(row) for row in range(first, stop) if kinds[row] == kind]
            )
            if found:
                tails[number] = _KIND_TEXT[kind] + found + _CLOSE
        digests, packed = self._digests, keys.tobytes()
        for number in np.flatnonzero(near).tolist():
            kind = wanted_kinds[number]
            key = packed[number * 32 : number * 32 + 32]
            row = int(lows[number])
            while row < count and digests[row * 32 : row * 32 + 32] < key:
                row += 1
            rows: list[bytes] = []
            while row < count and digests[row * 32 : row * 32 + 32] == key:
                if kinds[row] == kind:
                    rows.append(self._match_of(row))
                row += 1
            if rows:
                tails[number] = _KIND_TEXT[kind] + b",".join(rows) + _CLOSE

    def _match_of(self, row: int) -> bytes:
        """The JSON of the match that row ``row`` is (its card's object, then its entry)."""
        start, stop = int(self._offsets[row]), int(self._offsets[row + 1])
        return self._matches[int(self._cards[row])] + self._ids[start:stop] + b"}"


__all__ = ["DigestIndex"]
