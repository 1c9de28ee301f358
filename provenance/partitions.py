"""Partitioned manifests: ``OUT/index.json`` and ``OUT/part-NNNNN.jsonl``.

Part ``k`` of ``P`` holds the entries whose sha256's first 32 bits ``p`` satisfy
``p * P >> 32 == k``, in ``(sha256, id)`` order, so the parts concatenated in order are exactly
the single-file manifest of the same entries, and its RFC 9162 root is the root of that
concatenation. The index (``schemas/manifest-index.v1.json``) lists each part's file name,
SHA-256, entry count, file size, sum of entry sizes, first and last sha256, and the roots of
the aligned perfect subtrees that cover the part's leaves within the whole tree (at most two
per level): the whole root is computed from those alone, each part's can be computed by a task
that sees only that part, and a proof for one entry needs only its own part.

A partitioned manifest's digest (what a card commits to as its subject) is the SHA-256 of
``index.json``; reading one checks every part against the index and recomputes the root.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance import merkle
from provenance.errors import DigestMismatchError, FormatError, InputError, LocalIOError
from provenance.manifest import (
    ManifestBlock,
    ManifestEntry,
    ManifestSummary,
    check_id,
    entry_lines,
    iter_manifest,
)

INDEX_NAME = "index.json"
MAX_PARTITIONS = 65536
MAX_INDEX_BYTES = 64 << 20
_PART_NAME = re.compile(r"part-[0-9]{5}\.jsonl")
_BLOCK = 1 << 14  # entries per write


def part_name(k: int) -> str:
    """The file name of part ``k``."""
    return f"part-{k:05d}.jsonl"


def partition_of(sha256: str, partitions: int) -> int:
    """The part (of ``partitions``) that holds an entry with this sha256 (hex)."""
    return (int(sha256[:8], 16) * partitions) >> 32


def is_partitioned(path: Path) -> bool:
    """Whether ``path`` names a partitioned manifest: a directory, or its ``index.json``."""
    return path.name == INDEX_NAME or path.is_dir()


def index_path(path: Path) -> Path:
    """The ``index.json`` of the partitioned manifest at ``path`` (the directory or the file)."""
    return path if path.name == INDEX_NAME else path / INDEX_NAME


def check_partitions(partitions: int) -> None:
    """Raises InputError unless ``1 <= partitions <= MAX_PARTITIONS``."""
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise InputError(f"partitions {partitions}: expected 1 to {MAX_PARTITIONS}")


# ----------------------------------------------------------------------------------------------
# Merkle subtrees of a range of leaves


class OffsetTree:
    """The aligned perfect subtrees over leaves that start at position ``offset`` of a tree.

    Leaves are appended in order; :meth:`blocks` returns the maximal aligned blocks covering
    them (their sizes rise, then fall), as (height, root). Appending each block's root in
    order to a :class:`provenance.merkle.TreeBuilder` holding the ``offset`` leaves before
    gives the same tree as appending the leaves themselves.
    """

    def __init__(self, offset: int = 0) -> None:
        self._stack: list[tuple[int, int, bytes]] = []  # (start, height, root)
        self.offset = offset
        self.end = offset

    def extend(self, leaves: list[bytes]) -> None:
        """Append leaf hashes (a perfect subtree's worth at a time where aligned)."""
        start, count = 0, len(leaves)
        while start < count:
            span = 1 << ((count - start).bit_length() - 1)
            if self.end:
                span = min(span, self.end & -self.end)
            digest = leaves[start] if span == 1 else merkle.perfect_root(
                leaves[start : start + span]
            )
            self._push(span.bit_length() - 1, digest)
            start += span

    def _push(self, height: int, digest: bytes) -> None:
        start = self.end
        self.end += 1 << height
        stack = self._stack
        while stack and stack[-1][1] == height and not stack[-1][0] % (2 << height):
            start, _, left = stack.pop()
            digest = merkle.node_hash(left, digest)
            height += 1
        stack.append((start, height, digest))

    def blocks(self) -> list[tuple[int, bytes]]:
        """The aligned blocks so far, left to right, as (height, root)."""
        return [(height, digest) for _, height, digest in self._stack]


def block_heights(offset: int, count: int) -> list[int]:
    """The heights of the maximal aligned blocks covering leaves ``offset .. offset+count-1``."""
    heights, position, end = [], offset, offset + count
    while position < end:
        height = (end - position).bit_length() - 1
        if position:
            height = min(height, (position & -position).bit_length() - 1)
        heights.append(height)
        position += 1 << height
    return heights


def leaf_hashes(lines: bytes) -> list[bytes]:
    """The RFC 9162 leaf hashes of newline-terminated ``lines``."""
    parts = lines.split(b"\n")
    parts.pop()
    sha256 = hashlib.sha256
    return [sha256(b"\x00" + line).digest() for line in parts]


# ----------------------------------------------------------------------------------------------
# The index


@dataclass(frozen=True, slots=True)
class PartInfo:
    """One part as the index describes it."""

    file: str
    sha256: str
    entries: int
    bytes: int
    data_bytes: int
    first: str | None
    last: str | None
    subtrees: tuple[str, ...]
    text_entries: int = 0
    """Entries with a ``textSha256`` (a lookup of a normalized copy needs every part only then)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartInfo:
        """Build from the JSON form (already validated against its schema)."""
        return cls(
            file=data["file"],
            sha256=data["sha256"],
            entries=data["entries"],
            bytes=data["bytes"],
            data_bytes=data["dataBytes"],
            first=data["first"],
            last=data["last"],
            subtrees=tuple(data["subtrees"]),
            text_entries=data["textEntries"],
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "file": self.file,
            "sha256": self.sha256,
            "entries": self.entries,
            "bytes": self.bytes,
            "dataBytes": self.data_bytes,
            "first": self.first,
            "last": self.last,
            "subtrees": list(self.subtrees),
            "textEntries": self.text_entries,
        }


@dataclass(frozen=True, slots=True)
class ManifestIndex:
    """A partitioned manifest's ``index.json``."""

    partitions: int
    entries: int
    data_bytes: int
    merkle_root: str
    parts: tuple[PartInfo, ...]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ManifestIndex:
        """Build from the JSON form (already validated against its schema)."""
        return cls(
            partitions=data["partitions"],
            entries=data["entries"],
            data_bytes=data["dataBytes"],
            merkle_root=data["merkleRoot"],
            parts=tuple(PartInfo.from_dict(p) for p in data["parts"]),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "version": 1,
            "partitions": self.partitions,
            "entries": self.entries,
            "dataBytes": self.data_bytes,
            "merkleRoot": self.merkle_root,
            "parts": [p.to_dict() for p in self.parts],
        }

    def offsets(self) -> list[int]:
        """The position of each part's first leaf in the whole tree."""
        return list(itertools.accumulate((p.entries for p in self.parts), initial=0))[:-1]


def root_of_parts(parts: Iterable[PartInfo]) -> str:
    """The RFC 9162 root of the concatenated parts, from their subtree roots alone.

    Raises:
        FormatError: a part lists subtrees that do not fit its position and entry count.
    """
    tree = merkle.TreeBuilder()
    for part in parts:
        heights = block_heights(tree.size, part.entries)
        if len(heights) != len(part.subtrees):
            raise FormatError(
                f"{part.file}: {len(part.subtrees)} subtree roots listed, {len(heights)} expected"
                f" for {part.entries} entries at position {tree.size}"
            )
        for height, digest in zip(heights, part.subtrees, strict=True):
            tree.append_subtree(height, bytes.fromhex(digest))
    return tree.root().hex()


def check_index(index: ManifestIndex, *, what: str) -> None:
    """Check what the index says of itself: part names, counts, ranges, order, root.

    Raises:
        FormatError: naming the first inconsistency.
    """
    if len(index.parts) != index.partitions:
        raise FormatError(f"{what}: {index.partitions} partitions but {len(index.parts)} parts")
    previous: str | None = None
    for k, part in enumerate(index.parts):
        if part.file != part_name(k):
            raise FormatError(f"{what}: part {k} is {part.file!r}, expected {part_name(k)!r}")
        if (part.entries == 0) != (part.first is None) or (part.first is None) != (
            part.last is None
        ):
            raise FormatError(f"{what}: {part.file}: first/last do not fit {part.entries} entries")
        if part.first is not None and part.last is not None:
            for digest in (part.first, part.last):
                if partition_of(digest, index.partitions) != k:
                    raise FormatError(f"{what}: {part.file}: {digest} belongs to another part")
            if part.first > part.last or (previous is not None and part.first < previous):
                raise FormatError(f"{what}: {part.file}: parts are not in sha256 order")
            previous = part.last
    if sum(p.entries for p in index.parts) != index.entries:
        raise FormatError(f"{what}: the parts' entries do not add up to {index.entries}")
    if sum(p.data_bytes for p in index.parts) != index.data_bytes:
        raise FormatError(f"{what}: the parts' dataBytes do not add up to {index.data_bytes}")
    if root_of_parts(index.parts) != index.merkle_root:
        raise FormatError(f"{what}: merkleRoot is not the root of the parts' subtrees")


def read_index(path: Path) -> tuple[ManifestIndex, str]:
    """Read and check the index of the partitioned manifest at ``path``.

    Returns:
        The index and the SHA-256 of its bytes (the manifest's digest).

    Raises:
        InputError: missing or unreadable.
        FormatError, SchemaError: malformed, or inconsistent (see :func:`check_index`).
    """
    from provenance import _json, schema
    from provenance._files import read_bytes

    file = index_path(path)
    data = read_bytes(file, limit=MAX_INDEX_BYTES)
    document = _json.loads_object(data, what=str(file))
    schema.validate(document, schema.MANIFEST_INDEX, what=str(file))
    index = ManifestIndex.from_dict(document)
    check_index(index, what=str(file))
    return index, hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------------------------
# Writing


def write_part(
    entries: Iterable[ManifestEntry],
    path: Path,
    *,
    offset: int,
    k: int,
    partitions: int,
    previous: tuple[str, str] | None = None,
) -> PartInfo:
    """Write part ``k`` (of ``partitions``) from ``entries`` in manifest order, at leaf
    position ``offset`` of the whole tree, to ``path`` (atomically).

    ``previous`` is the key of the entry before this part, if known. Checks the order (a
    repeated (sha256, id) is a repeated id), that each entry belongs to part ``k``, and the id
    rules. Ids repeated under different digests are the caller's to check.

    Raises:
        FormatError: out of order, a repeated id, an entry of another part, or a bad id.
        LocalIOError: the file cannot be written (nothing is left behind).
    """
    from provenance._files import atomic_writer

    file_hash = hashlib.sha256()
    tree = OffsetTree(offset)
    count = size = data_bytes = text_entries = 0
    first: str | None = None
    last_key = previous
    iterator = iter(entries)
    with atomic_writer(path) as handle:
        while block := list(itertools.islice(iterator, _BLOCK)):
            for entry in block:
                key = (entry.sha256, entry.id)
                if last_key is not None and key <= last_key:
                    if key == last_key:
                        raise FormatError(f"id {entry.id!r} appears twice")
                    raise FormatError("entries are not ordered by (sha256, id)")
                last_key = key
            for entry in (block[0], block[-1]):
                if partition_of(entry.sha256, partitions) != k:
                    raise FormatError(f"{entry.sha256} does not belong to {part_name(k)}")
            for entry in block:
                check_id(entry.id, what=str(path))
            data = entry_lines(block)
            handle.write(data)
            file_hash.update(data)
            tree.extend(leaf_hashes(data))
            if first is None:
                first = block[0].sha256
            count += len(block)
            size += len(data)
            data_bytes += sum(e.size or 0 for e in block)
            text_entries += sum(e.textSha256 is not None for e in block)
    return PartInfo(
        file=path.name,
        sha256=file_hash.hexdigest(),
        entries=count,
        bytes=size,
        data_bytes=data_bytes,
        first=first,
        last=last_key[0] if count and last_key is not None else None,
        subtrees=tuple(d.hex() for _, d in tree.blocks()),
        text_entries=text_entries,
    )


def make_index(parts: list[PartInfo]) -> ManifestIndex:
    """The index of ``parts`` (in order), with the whole root computed from their subtrees."""
    return ManifestIndex(
        partitions=len(parts),
        entries=sum(p.entries for p in parts),
        data_bytes=sum(p.data_bytes for p in parts),
        merkle_root=root_of_parts(parts),
        parts=tuple(parts),
    )


def index_bytes(index: ManifestIndex) -> bytes:
    """The bytes of ``index.json``: canonical JSON and a newline."""
    from provenance import _json

    return _json.canonical(index.to_dict()) + b"\n"


def summary_of(index: ManifestIndex, data: bytes) -> ManifestSummary:
    """The summary a card commits to for an index written as ``data``."""
    return ManifestSummary(
        hashlib.sha256(data).hexdigest(), index.entries, index.data_bytes, index.merkle_root
    )


def check_output_dir(out: Path) -> None:
    """Refuse an output directory that holds anything but a partitioned manifest (it is
    replaced whole).

    Raises:
        InputError: ``out`` is a file, or a directory with other files in it.
    """
    if not os.path.lexists(out):
        return
    if not out.is_dir() or out.is_symlink():
        raise InputError(f"{out}: exists and is not a directory")
    others = [
        name
        for name in os.listdir(out)
        if name != INDEX_NAME and not _PART_NAME.fullmatch(name)
    ]
    if others:
        raise InputError(
            f"{out}: holds files that are not part of a partitioned manifest ({others[0]}, ...);"
            " choose an empty or new directory"
        )


def staging_dir(out: Path) -> Path:
    """A new directory beside ``out`` to write into before :func:`publish` moves it there.

    Raises:
        LocalIOError: it cannot be created.
    """
    path = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:12]}")
    try:
        path.mkdir(parents=False)
    except OSError as exc:
        raise LocalIOError(f"{path}: cannot create: {exc.strerror}") from None
    return path


def publish(staging: Path, out: Path) -> None:
    """Move the finished ``staging`` directory to ``out``, replacing a manifest there.

    Raises:
        LocalIOError: the move failed (``staging`` is removed; an old ``out`` is kept).
    """
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:12]}")
    try:
        if os.path.lexists(out):
            os.replace(out, old)
        os.replace(staging, out)
    except OSError as exc:
        if os.path.lexists(old) and not os.path.lexists(out):
            os.replace(old, out)
        shutil.rmtree(staging, ignore_errors=True)
        raise LocalIOError(f"{out}: cannot move into place: {exc.strerror}") from None
    shutil.rmtree(old, ignore_errors=True)


def write_partitioned(
    entries: Iterable[ManifestEntry], out: Path, *, partitions: int
) -> ManifestSummary:
    """Write ``entries`` (in manifest order) as a partitioned manifest in ``out``.

    Raises:
        InputError: ``out`` holds other files, or ``partitions`` is out of range.
        FormatError: as :func:`write_part`, and an id repeated under two digests.
        LocalIOError: writing failed (nothing is left behind).
    """
    check_partitions(partitions)
    check_output_dir(out)
    staging = staging_dir(out)
    try:
        seen: set[str] = set()

        def unique(stream: Iterable[ManifestEntry]) -> Iterator[ManifestEntry]:
            for entry in stream:
                if entry.id in seen:
                    raise FormatError(f"id {entry.id!r} appears twice")
                seen.add(entry.id)
                yield entry

        stream = _Peekable(unique(entries))
        parts: list[PartInfo] = []
        offset = 0
        previous: tuple[str, str] | None = None
        for k in range(partitions):
            part = write_part(
                stream.take_while(functools.partial(_in_part, k=k, partitions=partitions)),
                staging / part_name(k),
                offset=offset,
                k=k,
                partitions=partitions,
                previous=previous,
            )
            if stream.last is not None:
                previous = (stream.last.sha256, stream.last.id)
            parts.append(part)
            offset += part.entries
        if stream.peek() is not None:
            raise FormatError("entries are not ordered by (sha256, id)")
        index = make_index(parts)
        data = index_bytes(index)
        from provenance._files import atomic_write

        atomic_write(staging / INDEX_NAME, data)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    publish(staging, out)
    return summary_of(index, data)


def _in_part(entry: ManifestEntry, *, k: int, partitions: int) -> bool:
    return partition_of(entry.sha256, partitions) == k


class _Peekable:
    """An entry stream that can be split into consecutive runs."""

    def __init__(self, entries: Iterable[ManifestEntry]) -> None:
        self._iterator = iter(entries)
        self._next: ManifestEntry | None = None
        self._done = False
        self.last: ManifestEntry | None = None

    def peek(self) -> ManifestEntry | None:
        if self._next is None and not self._done:
            self._next = next(self._iterator, None)
            self._done = self._next is None
        return self._next

    def take_while(self, keep: Callable[[ManifestEntry], bool]) -> Iterator[ManifestEntry]:
        while (entry := self.peek()) is not None and keep(entry):
            self._next = None
            self.last = entry
            yield entry


# ----------------------------------------------------------------------------------------------
# Reading


def read_part(
    directory: Path, part: PartInfo, *, offset: int, k: int, partitions: int, what: str
) -> Iterator[tuple[list[ManifestEntry], bytes]]:
    """Stream part ``k`` in blocks of entries with their lines, checking it against its index
    entry once read whole.

    Raises:
        InputError, FormatError, LocalIOError: as :func:`provenance.manifest.iter_manifest`, or
            an entry of another part.
        DigestMismatchError: the part is not the one the index describes.
    """
    path = directory / part.file
    digests: list[str] = []
    tree = OffsetTree(offset)
    count = size = data_bytes = text_entries = 0
    first: str | None = None
    last: str | None = None
    stream = iter_manifest(path, on_digest=digests.append)
    while block := list(itertools.islice(stream, _BLOCK)):
        for entry in (block[0], block[-1]):
            if partition_of(entry.sha256, partitions) != k:
                raise FormatError(f"{path}: {entry.sha256} does not belong to part {k}")
        data = entry_lines(block)
        tree.extend(leaf_hashes(data))
        first = first or block[0].sha256
        last = block[-1].sha256
        count += len(block)
        size += len(data)
        data_bytes += sum(e.size or 0 for e in block)
        text_entries += sum(e.textSha256 is not None for e in block)
        yield block, data
    found = PartInfo(
        file=part.file,
        sha256=digests[0],
        entries=count,
        bytes=size,
        data_bytes=data_bytes,
        first=first,
        last=last,
        subtrees=tuple(d.hex() for _, d in tree.blocks()),
        text_entries=text_entries,
    )
    if found != part:
        raise DigestMismatchError(f"{what}: {part.file} is not the part the index describes")


def read_blocks(
    path: Path,
    committed: ManifestSummary | None,
    on_summary: Callable[[ManifestSummary], None],
) -> Iterator[ManifestBlock]:
    """Read a partitioned manifest as :class:`provenance.manifest.ManifestReader` reads a file:
    blocks of checked entries with their lines, offsets in the parts' concatenation, then
    ``on_summary`` with the summary (the index's SHA-256 as the digest). Every part is checked
    as a manifest file is and against the index, and ids are checked unique across parts.

    Raises:
        InputError, FormatError, SchemaError, LocalIOError: a missing, malformed or invalid
            index or part.
        DigestMismatchError: the index is not ``committed``'s (before any part is read), or a
            part is not the one the index describes.
    """
    index, digest = read_index(path)
    what = str(index_path(path))
    if committed is not None and digest != committed.digest:
        raise DigestMismatchError(
            f"{what}: sha256 {digest} is not the manifest the card commits to"
            f" ({committed.digest})"
        )
    directory = index_path(path).parent
    seen: set[str] = set()
    position = first = 0
    for k, (part, offset) in enumerate(zip(index.parts, index.offsets(), strict=True)):
        for entries, data in read_part(
            directory, part, offset=offset, k=k, partitions=index.partitions, what=what
        ):
            ids = {e.id for e in entries}
            if not seen.isdisjoint(ids):
                repeated = next(e.id for e in entries if e.id in seen)
                raise FormatError(f"{what}: id {repeated!r} appears twice")
            seen |= ids
            yield ManifestBlock(entries, data, position, first)
            position += len(data)
            first += len(entries)
    on_summary(ManifestSummary(digest, index.entries, index.data_bytes, index.merkle_root))


# ----------------------------------------------------------------------------------------------
# Reading lines again, by their offset in the concatenation


class ManifestLines:
    """Reads byte ranges of a manifest by their offset in the manifest's bytes (for a
    partitioned manifest, the concatenation of its parts), as ``os.pread`` reads a file.

    Readers check what they read against the leaf hashes or digests they kept from the one
    verified read, so this only finds the bytes; a range never spans two parts (each part
    ends with a whole line).
    """

    def __init__(self, path: Path) -> None:
        from provenance import _files

        self._path = path
        self._fds: dict[int, int] = {}
        if is_partitioned(path):
            index, _ = read_index(path)
            self._directory: Path | None = index_path(path).parent
            self._names = [p.file for p in index.parts]
            self._starts = list(itertools.accumulate((p.bytes for p in index.parts), initial=0))
        else:
            self._directory = None
            with _files.open_input(path, kind="manifest file") as handle:
                self._fds[0] = os.dup(handle.fileno())
            self._names, self._starts = [path.name], [0, 1 << 62]

    def __enter__(self) -> ManifestLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the files opened."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}

    def pread(self, length: int, offset: int) -> bytes:
        """Read ``length`` bytes at ``offset`` (fewer at the end of a part).

        Raises:
            InputError: a part is missing or not a regular file.
            OSError: reading failed.
        """
        import bisect

        from provenance import _files

        k = max(0, bisect.bisect_right(self._starts, offset) - 1)
        if k not in self._fds:
            assert self._directory is not None
            with _files.open_input(self._directory / self._names[k], kind="manifest file") as f:
                self._fds[k] = os.dup(f.fileno())
        return os.pread(self._fds[k], length, offset - self._starts[k])


def open_lines(path: Path) -> ManifestLines:
    """A :class:`ManifestLines` for the manifest at ``path`` (a file or partitioned).

    Raises:
        InputError, FormatError, SchemaError: a missing file, or a bad index.
        LocalIOError: it cannot be read.
    """
    return ManifestLines(path)
