"""A binary index of a cached list version, so that loading a list of millions of digests does
not parse its JSON.

Next to ``lists/NAME/vN.json`` the cache keeps ``lists/NAME/vN.index``: the same list, packed.
Every ``sha256`` and ``text-sha256`` entry without a note is one byte of kind (its type and
category) and its 32 digest bytes; every other entry is kept as its canonical JSON text::

    MAGIC, u64 header length, header (JSON), padding to 8
    kinds: u8 per entry (a code below, or 255 for an entry kept as JSON), padding to 8
    rows:  32 bytes per packed entry, in list order
    ends:  u64 per JSON-kept entry (where its text ends in the blob)
    blob:  the JSON texts of the other entries, back to back

**An index is believed only for a signed hash, or after reproducing the signed list.** The cache
is not trusted (docs/security.md L20): an index could be stale (another version) or edited (a
listed digest removed, so that a record on the list would pass).

- A list published with its packed form (``lists publish`` signs these exact bytes as the target
  ``lists/NAME/vN.index``, L25): :func:`load_signed_index` reads the index once, hashes it
  against the signed target entry, and parses only those bytes (the arrays are views of them).
  A fetch checks once that the signed packed form is exactly the packed form of the verified
  list (:func:`encode_index` is a pure function of the list's bytes), so loading need not
  re-encode anything, nor read the list file.
- A list published without one: :func:`load_index` still reads the list file once, hashing it
  against the signed target entry, and compares its bytes with the list re-encoded from the
  index (exactly as publishing encodes a list, RFC 8785), a block at a time, on two cores.

Any other index is refused, and :mod:`provenance.lists.cache` loads the file (full parse, full
checks) and rebuilds it. What the index saves is parsing millions of JSON objects and one Python
object per entry: entries are made on demand (:class:`PackedEntries`), and
:class:`~provenance.lists.match.ListIndex` takes the digest rows as they are
(:meth:`PackedList.index_into`).
"""

from __future__ import annotations

import binascii
import bisect
import concurrent.futures
import functools
import hashlib
import itertools
import operator
import os
import re
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, overload

import msgspec
import numpy as np
import numpy.typing as npt

from provenance._files import atomic_writer
from provenance._hex import sha256_hex
from provenance.errors import FormatError, ProvenanceError
from provenance.lists import model
from provenance.lists.digests import digest_rows
from provenance.lists.model import CATEGORIES, Category, EntryType, ExclusionList, ListEntry

MAGIC = b"provenance list index 1\n"
OTHER = 255
"""The kind of an entry kept as JSON text."""
_DIGEST_TYPES: tuple[EntryType, ...] = ("sha256", "text-sha256")
# Code = 4 * type + category: the packed kinds, fixed (no table in the file to get wrong).
_KINDS: tuple[tuple[EntryType, Category], ...] = tuple(
    (kind, category) for kind in _DIGEST_TYPES for category in CATEGORIES
)
_CODE = {kind: code for code, kind in enumerate(_KINDS)}
_BLOCK = 1 << 16
"""Entries re-encoded per block: about 7 MB of JSON, hashed while the next block is built."""
_INDEX_SUFFIX = ".index"
_INDEX_NAME = re.compile(r"\Av[1-9][0-9]{0,15}\.index\Z")


class _Header(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    version: int
    issued: str
    publisher: str
    previous: str | None
    digest: str
    """The SHA-256 of the list file the index was made from (a stale index is seen at once)."""
    length: int
    entries: int
    packed: int
    others: int
    blob: int


_header_decoder = msgspec.json.Decoder(_Header)


def index_path(list_path: Path) -> Path:
    """Return where the index of the cached list file ``list_path`` (``vN.json``) is kept."""
    return list_path.with_suffix(_INDEX_SUFFIX)


def is_index_name(name: str) -> bool:
    """Whether a file name in a cached list's directory is an index (``vN.index``)."""
    return _INDEX_NAME.match(name) is not None


# ----------------------------------------------------------------------------------------------
# Encoding: the exact bytes publishing writes


def _entry_bytes(kind: EntryType, category: Category) -> tuple[bytes, bytes]:
    """The canonical JSON of a packed entry around its 64 hex digits, as the model encodes it."""
    placeholder = "0" * 64
    entry = ListEntry(type=kind, value=placeholder, category=category)
    before, after = model._encoder.encode(entry).split(placeholder.encode("ascii"))
    return before, after


# Per code: one row of the re-encoded list is ',' + before + 64 hex digits + after.
_AROUND = [_entry_bytes(kind, category) for kind, category in _KINDS]


def _head_and_tail(header: _Header) -> tuple[bytes, bytes]:
    """The canonical bytes of the list before its first entry and after its last."""
    doc = model._ListDoc(
        name=header.name,
        version=header.version,
        issued=header.issued,
        publisher=header.publisher,
        previous=header.previous,
        entries=[],
    )
    # Keys are sorted and "entries" is the first: its empty array is the first "[]".
    head, tail = model._encoder.encode(doc).split(b"[]", 1)
    return head + b"[", b"]" + tail


@functools.cache
def _template(code: int) -> npt.NDArray[np.uint8]:
    """``_BLOCK`` rows of ``,{"category":...,"value":"<64 zeros>"}`` for kind ``code``."""
    before, after = _AROUND[code]
    row = np.frombuffer(b"," + before + b"0" * 64 + after, dtype=np.uint8)
    return np.tile(row, (_BLOCK, 1))


def _packed_rows(code: int, digests: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Rows of ``,{"category":...,"value":"<hex>"}`` for at most ``_BLOCK`` digests of one kind."""
    out = _template(code)[: digests.shape[0]].copy()  # one copy of the fixed bytes
    start = 1 + len(_AROUND[code][0])
    # binascii in C: ten times faster than a numpy table lookup per byte.
    hexed = binascii.hexlify(np.ascontiguousarray(digests).tobytes())
    out[:, start : start + 64] = np.frombuffer(hexed, dtype=np.uint8).reshape(-1, 64)
    return out


@dataclass(frozen=True, slots=True)
class _Packed:
    """The arrays of an index (see the module docstring)."""

    kinds: npt.NDArray[np.uint8]
    rows: npt.NDArray[np.uint8]
    others: tuple[ListEntry, ...]
    """The entries kept as JSON, parsed and checked, in list order."""
    other_texts: tuple[bytes, ...]
    other_positions: tuple[int, ...]

    def blocks(self, head: bytes, tail: bytes) -> Iterator[bytes | memoryview]:
        """Yield the canonical list file bytes, a block at a time."""
        yield head
        kinds = self.kinds
        count = kinds.size
        row = 0  # packed entries before the current position
        other = 0
        for first in range(0, count, _BLOCK):
            last = min(count, first + _BLOCK)
            block = kinds[first:last]
            # Runs of one kind: a packed run is one array; a run of JSON entries, their texts.
            starts = np.concatenate(([0], np.flatnonzero(block[1:] != block[:-1]) + 1))
            ends = np.append(starts[1:], block.size)
            for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
                code = int(block[start])
                size = end - start
                joined: bytes | memoryview
                if code == OTHER:
                    texts = self.other_texts[other : other + size]
                    other += size
                    joined = b"," + b",".join(texts)
                else:
                    joined = _packed_rows(code, self.rows[row : row + size]).reshape(-1).data
                    row += size
                yield joined[1:] if first + start == 0 else joined
        yield tail


def _same_bytes(
    blocks: Iterator[bytes | memoryview], unverified_list: BinaryIO, *, limit: int
) -> tuple[bool, str, int]:
    """Compare the re-encoded blocks with the list file, hashing the file as it is read.

    Each block of the file is hashed on a second thread while the next is re-encoded and
    compared (hashlib and numpy release the GIL), so memory stays at a few blocks.

    Returns:
        ``(equal, sha256 of the file, its length)``; the file is read to its end (at most
        ``limit`` + 1 bytes) even after a difference, so that the digest is the whole file's.
    """
    hasher = hashlib.sha256()
    length = 0
    equal = True
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending: concurrent.futures.Future[None] | None = None
        for block in blocks:
            data = unverified_list.read(len(block))
            length += len(data)
            equal = equal and data == bytes(block)  # a memcpy and a memcmp
            if pending is not None:
                pending.result()
            pending = pool.submit(hasher.update, data)
        if pending is not None:
            pending.result()
        while data := unverified_list.read(max(0, min(_REST, limit + 1 - length))):
            equal = False
            length += len(data)
            hasher.update(data)
    return equal, hasher.hexdigest(), length


_REST = 1 << 22


# ----------------------------------------------------------------------------------------------
# Entries made on demand


class PackedEntries(Sequence[ListEntry]):
    """The entries of a packed list, each made when asked for (a ``Sequence[ListEntry]``)."""

    __slots__ = ("_packed",)

    def __init__(self, packed: _Packed) -> None:
        self._packed = packed

    def __len__(self) -> int:
        return int(self._packed.kinds.size)

    @overload
    def __getitem__(self, index: int) -> ListEntry: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[ListEntry, ...]: ...

    def __getitem__(self, index: int | slice) -> ListEntry | tuple[ListEntry, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        count = len(self)
        if index < 0:
            index += count
        if not 0 <= index < count:
            raise IndexError("list entry index out of range")
        packed = self._packed
        code = int(packed.kinds[index])
        before = bisect.bisect_left(packed.other_positions, index)
        if code == OTHER:
            return packed.others[before]
        kind, category = _KINDS[code]
        return ListEntry(
            type=kind,
            value=packed.rows[index - before].tobytes().hex(),
            category=category,
        )

    def __iter__(self) -> Iterator[ListEntry]:
        packed = self._packed
        others = iter(packed.others)
        hexes = (row.tobytes().hex() for row in packed.rows)
        for code in packed.kinds.tolist():
            if code == OTHER:
                yield next(others)
            else:
                kind, category = _KINDS[code]
                yield ListEntry(type=kind, value=next(hexes), category=category)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True, kw_only=True)
class PackedList(ExclusionList):
    """A list version loaded from its index: an :class:`ExclusionList` whose entries are made
    on demand, and whose digests :class:`~provenance.lists.match.ListIndex` takes as arrays."""

    packed: _Packed = field(compare=False, repr=False)

    def to_bytes(self) -> bytes:
        """Return the list file's bytes, re-encoded from the index (which reproduced them on
        load, or is the signed packed form of exactly those bytes)."""
        return b"".join(self.packed.blocks(*_head_and_tail(_header_of(self))))

    def counts(self) -> dict[str, int]:
        """Return the number of entries per category (categories without entries omitted)."""
        per_code = np.bincount(self.packed.kinds, minlength=256)
        result: dict[str, int] = {}
        for code, (_, category) in enumerate(_KINDS):
            if per_code[code]:
                result[category] = result.get(category, 0) + int(per_code[code])
        for entry in self.packed.others:
            result[entry.category] = result.get(entry.category, 0) + 1
        return dict(sorted(result.items()))

    def index_into(
        self,
        total: int,
        domains: dict[str, tuple[int, ...]],
        ips: dict[str, tuple[int, ...]],
        url_rules: dict[str, list[Any]],
        digests: dict[str, tuple[list[Any], list[Any]]],
    ) -> None:
        """Add this list's entries (numbered from ``total``) to a ListIndex's tables, exactly as
        indexing its entries one by one would (:func:`provenance.lists.index._index_list`), with
        the digest rows taken as they are.

        Raises:
            FormatError: as indexing the entries one by one raises.
        """

        packed = self.packed
        kinds = packed.kinds
        count = kinds.size
        if count and not packed.others:
            # Most lists hold digests of one type only: two passes over the kinds say so,
            # without the masks below (several temporaries of a byte per entry).
            low_kind, high_kind = int(kinds.min()), int(kinds.max())
            for type_number, kind in enumerate(_DIGEST_TYPES):
                if 4 * type_number <= low_kind and high_kind < 4 * type_number + 4:
                    rows, refs = digests[kind]
                    rows.append(packed.rows)
                    refs.append(range(total, total + count))
                    return  # nothing else to index: no other entries
        is_packed = kinds != OTHER
        packed_kinds = kinds[is_packed]
        positions_of_packed: npt.NDArray[np.int64] | None = None
        for type_number, kind in enumerate(_DIGEST_TYPES):
            low, high = 4 * type_number, 4 * type_number + 4
            of_kind = (packed_kinds >= low) & (packed_kinds < high)
            have = int(np.count_nonzero(of_kind))
            rows, refs = digests[kind]
            if count and have == count:  # the whole list: its rows as they are, in order
                rows.append(packed.rows)
                refs.append(range(total, total + count))
                continue
            if not have and not any(e.type == kind for e in packed.others):
                continue
            if positions_of_packed is None:
                positions_of_packed = np.flatnonzero(is_packed).astype(np.int64)
            kind_rows = packed.rows[of_kind]
            kind_positions = positions_of_packed[of_kind]
            noted = [
                (position, entry.value)
                for position, entry in zip(packed.other_positions, packed.others, strict=True)
                if entry.type == kind
            ]
            if noted:  # digest entries with a note: merged in, in list order
                extra = digest_rows([value for _, value in noted])
                kind_rows = np.concatenate([kind_rows, extra])
                kind_positions = np.concatenate(
                    [kind_positions, np.array([p for p, _ in noted], dtype=np.int64)]
                )
                order = np.argsort(kind_positions, kind="stable")
                kind_rows, kind_positions = kind_rows[order], kind_positions[order]
            rows.append(kind_rows)
            refs.append(kind_positions + total)
        self._index_others(total, domains, ips, url_rules)

    def _index_others(
        self,
        total: int,
        domains: dict[str, Any],
        ips: dict[str, Any],
        url_rules: dict[str, list[Any]],
    ) -> None:
        """Index the entries kept as JSON that are not digests (hosts and URLs): each run of
        them in list order, numbered as in the whole list, by the index's own code."""
        from provenance.lists import index as lists_index

        packed = self.packed
        runs: list[tuple[int, list[ListEntry]]] = []
        for position, entry in zip(packed.other_positions, packed.others, strict=True):
            if entry.type in _DIGEST_TYPES:
                continue
            if runs and runs[-1][0] + len(runs[-1][1]) == position:
                runs[-1][1].append(entry)
            else:
                runs.append((position, [entry]))
        try:
            for first, entries in runs:
                run = _Sub(self.name, self.version, entries)
                lists_index._index_list(run, total + first, domains, ips, url_rules, _no_digests())
        except FormatError:
            # Raise what indexing the whole list raises: the same entry, by its own number.
            lists_index._index_list(self, total, {}, {}, {}, _no_digests())
            raise


def _no_digests() -> dict[str, tuple[list[Any], list[Any]]]:
    return {kind: ([], []) for kind in _DIGEST_TYPES}


@dataclass(frozen=True, slots=True)
class _Sub:
    name: str
    version: int
    entries: list[ListEntry]


def _header_of(the_list: ExclusionList, **sizes: Any) -> _Header:
    """The header of ``the_list``'s index; ``sizes`` are the other fields (all 0 if absent)."""
    fields = {"digest": "", **dict.fromkeys(("length", "entries", "packed", "others", "blob"), 0)}
    return _Header(
        name=the_list.name,
        version=the_list.version,
        issued=model._format_time(the_list.issued),
        publisher=the_list.publisher,
        previous=the_list.previous,
        **{**fields, **sizes},
    )


# ----------------------------------------------------------------------------------------------
# Writing and loading


def encode_index(the_list: ExclusionList, *, digest: str, length: int) -> list[bytes]:
    """Return the index of ``the_list``, whose file has SHA-256 ``digest`` and ``length``
    bytes, as chunks of bytes: the same bytes for the same list wherever it is encoded (what
    ``lists publish`` signs as the list's packed form, and what a fetch checks it against)."""
    entries = the_list.entries
    code_of = _CODE.get
    kinds = np.fromiter(
        (OTHER if e.note is not None else code_of((e.type, e.category), OTHER) for e in entries),
        dtype=np.uint8,
        count=len(entries),
    )
    is_packed = (kinds != OTHER).tolist()
    values = list(itertools.compress(map(operator.attrgetter("value"), entries), is_packed))
    rows = digest_rows(values) if values else np.zeros((0, 32), dtype=np.uint8)
    others = [e for e, packed in zip(entries, is_packed, strict=True) if not packed]
    texts = [_canonical(e) for e in others]
    ends = np.cumsum(np.array([len(t) for t in texts], dtype=np.uint64), dtype=np.uint64)
    header = _header_of(
        the_list,
        digest=digest,
        length=length,
        entries=len(entries),
        packed=len(values),
        others=len(others),
        blob=int(ends[-1]) if len(texts) else 0,
    )
    encoded = msgspec.json.encode(header)
    return [
        MAGIC + struct.pack("<Q", len(encoded)) + encoded,
        b"\0" * _pad(len(MAGIC) + 8 + len(encoded)),
        kinds.tobytes(),
        b"\0" * _pad(kinds.size),
        np.ascontiguousarray(rows).tobytes(),
        ends.astype("<u8").tobytes(),
        b"".join(texts),
    ]


def chunks_digest(chunks: Sequence[bytes]) -> tuple[str, int]:
    """Return the SHA-256 hex and the length of the bytes ``chunks`` make together."""
    hasher = hashlib.sha256()
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.hexdigest(), sum(map(len, chunks))


def write_chunks(path: Path, chunks: Sequence[bytes]) -> None:
    """Write ``chunks`` (see :func:`encode_index`) to ``path`` atomically.

    Raises:
        LocalIOError: the file cannot be written.
    """
    with atomic_writer(path) as out:
        for chunk in chunks:
            out.write(chunk)


def write_index(path: Path, the_list: ExclusionList, *, digest: str, length: int) -> None:
    """Write the index of ``the_list``, whose file (verified) has SHA-256 ``digest`` and
    ``length`` bytes, to ``path`` atomically.

    Raises:
        LocalIOError: the file cannot be written.
    """
    write_chunks(path, encode_index(the_list, digest=digest, length=length))


def _pad(size: int) -> int:
    return -size % 8


class _RefusedError(Exception):
    """The index cannot be used (the reason is the message)."""


def load_index(
    path: Path,
    unverified_list: BinaryIO,
    *,
    digest: str,
    length: int,
    name: str,
    version: int,
) -> tuple[PackedList | None, str]:
    """Load the index at ``path`` of list ``name`` version ``version``, checked against the
    list file ``unverified_list`` (open, at its start), whose signed target entry gives its
    SHA-256 ``digest`` and ``length``.

    The list file is read once: hashed, and compared with the list re-encoded from the index.
    (For a list published with its packed form, :func:`load_signed_index` needs neither.)

    Returns:
        ``(packed list, "")`` when the file has the signed digest and length and the index
        re-encodes to exactly its bytes; ``(None, why)`` otherwise (no index; a stale, damaged
        or edited index; or a list file that differs from the signed one): the caller then
        loads and checks the list file itself, which says what is wrong with it.
    """
    try:
        unverified_index = _read_file(path, limit=_MAX_INDEX_BYTES)
        header, packed_list = _parse(unverified_index, digest=digest, length=length)
    except FileNotFoundError:
        return None, "no index"
    except OSError as exc:
        return None, f"cannot read the index: {exc.strerror}"
    except (_RefusedError, ProvenanceError, ValueError, msgspec.DecodeError) as exc:
        return None, str(exc)
    if (header.name, header.version) != (name, version):
        return None, f"the index is of {header.name!r} v{header.version}"
    # The check that makes the index usable: it re-encodes to the verified list file's bytes.
    blocks = packed_list.packed.blocks(*_head_and_tail(header))
    try:
        equal, computed, computed_length = _same_bytes(blocks, unverified_list, limit=length)
    except OSError as exc:
        return None, f"cannot read the list file: {exc.strerror}"
    if (computed, computed_length) != (digest, length):
        return None, "the list file does not match the signed metadata"
    if not equal:
        return None, "the index does not reproduce the list file (edited or damaged)"
    return packed_list, ""


_MAX_INDEX_BYTES = 2 * 1024**3


def load_signed_index(
    path: Path,
    *,
    packed_digest: str,
    packed_length: int,
    digest: str,
    length: int,
    name: str,
    version: int,
) -> tuple[PackedList | None, str]:
    """Load the index at ``path`` of list ``name`` version ``version``, a list published with
    its packed form: the signed targets metadata gives the SHA-256 ``packed_digest`` and
    ``packed_length`` of the packed form, and ``digest`` and ``length`` of the list file.

    The index is read once into memory, hashed, and only then parsed (zero-copy views of the
    bytes that hashed as signed). The list file is not read here: the caller checks it.

    Returns:
        ``(packed list, "")`` when the index is exactly the signed packed form and names the
        list file of ``digest`` and ``length``; ``(None, why)`` otherwise (no index, or a
        stale, damaged or edited one): the caller then loads the list file and rebuilds it.
    """
    try:
        unverified_index, computed = _read_and_hash(path, limit=packed_length)
    except FileNotFoundError:
        return None, "no index"
    except OSError as exc:
        return None, f"cannot read the index: {exc.strerror}"
    if len(unverified_index) != packed_length or computed != packed_digest:
        return None, "the index is not the signed packed form (stale, damaged or edited)"
    verified_index = unverified_index
    try:
        header, packed_list = _parse(verified_index, digest=digest, length=length)
    except (_RefusedError, ProvenanceError, ValueError, msgspec.DecodeError) as exc:
        return None, f"the signed packed form is not usable: {exc}"
    if (header.name, header.version) != (name, version):
        return None, f"the signed packed form is of {header.name!r} v{header.version}"
    return packed_list, ""


def _read_file(path: Path, *, limit: int) -> bytes:
    """The bytes of the file at ``path``: all of them, or ``limit`` + 1 if it is longer.

    Raises:
        OSError: it cannot be read.
    """
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        return bytes(handle.read(min(size, limit) + 1))


def _read_and_hash(path: Path, *, limit: int) -> tuple[bytes, str]:
    """The bytes of the file at ``path`` (all of them, or ``limit`` + 1 if it is longer), read
    once, and their SHA-256 hex.

    One read and one hash, both releasing the GIL: a load running on a thread beside a manifest
    being checked (which holds the GIL for milliseconds at a time) waits for it only twice.

    Raises:
        OSError: the file cannot be read.
    """
    unverified = _read_file(path, limit=limit)
    return unverified, hashlib.sha256(unverified).hexdigest()


def _parse(data: bytes, *, digest: str, length: int) -> tuple[_Header, PackedList]:
    """Parse an index whose header must name the list file of ``digest`` and ``length``; the
    arrays are views of ``data`` (no copy)."""
    size = len(data)
    if data[: len(MAGIC)] != MAGIC or size < len(MAGIC) + 8:
        raise _RefusedError("not a list index of this format")
    (header_size,) = struct.unpack_from("<Q", data, len(MAGIC))
    if header_size > 1 << 20:
        raise _RefusedError("the index header is too large")
    start = len(MAGIC) + 8 + header_size
    if start > size:
        raise _RefusedError("the index is truncated")
    header = _header_decoder.decode(data[len(MAGIC) + 8 : start])
    # Cheap refusals first: made from another file, or sizes that do not add up.
    if (header.digest, header.length) != (digest, length):
        raise _RefusedError("the index was made from another list file (stale)")
    if header.packed + header.others != header.entries:
        raise _RefusedError("the index's entry counts do not add up")
    expected = (
        start + _pad(start) + header.entries + _pad(header.entries)
        + 32 * header.packed + 8 * header.others + header.blob
    )  # fmt: skip
    if size != expected:
        raise _RefusedError(f"the index is {size} bytes, its header says {expected}")
    at = start + _pad(start)
    kinds = np.frombuffer(data, dtype=np.uint8, count=header.entries, offset=at)
    at += header.entries + _pad(header.entries)
    rows = np.frombuffer(data, dtype=np.uint8, count=32 * header.packed, offset=at)
    rows = rows.reshape(header.packed, 32)
    at += 32 * header.packed
    ends = np.frombuffer(data, dtype="<u8", count=header.others, offset=at)
    at += 8 * header.others
    blob = data[at:]
    is_other = kinds == OTHER
    if int(np.count_nonzero(is_other)) != header.others or (
        int(np.count_nonzero(kinds >= len(_KINDS))) != header.others
    ):
        raise _RefusedError("the index holds unknown entry kinds")
    if header.others and (
        np.any(np.diff(ends.astype(np.int64)) < 0) or int(ends[-1]) != header.blob
    ):
        raise _RefusedError("the index's JSON entries do not add up")
    bounds = itertools.pairwise([0, *ends.tolist()])
    others = tuple(_other_entry(blob[a:b]) for a, b in bounds)
    # What is compared with the file is each entry's own canonical encoding: what is indexed.
    texts = tuple(_canonical(entry) for entry in others)
    positions = tuple(np.flatnonzero(is_other).tolist())
    packed = _Packed(kinds, rows, others, texts, positions)
    the_list = PackedList(
        name=header.name,
        version=header.version,
        issued=model._parse_time(header.issued, what="list index"),
        publisher=header.publisher,
        previous=None if header.previous is None else sha256_hex(header.previous, what="index"),
        entries=PackedEntries(packed),
        packed=packed,
    )
    return header, the_list


def _other_entry(text: bytes) -> ListEntry:
    try:
        entry = msgspec.json.decode(text, type=ListEntry)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _RefusedError(f"an entry kept as JSON is not valid: {exc}") from None
    problem = model.value_problem(entry.type, entry.value)
    if problem is not None:
        raise _RefusedError(f"an entry kept as JSON is not valid: {problem}")
    return entry


def _canonical(entry: ListEntry) -> bytes:
    return model._encoder.encode(entry)


__all__ = ["PackedEntries", "PackedList", "chunks_digest", "encode_index", "index_path"]
__all__ += ["is_index_name", "load_index", "load_signed_index", "write_chunks", "write_index"]
