"""Writing and reading the parts of a partitioned manifest (atomically, checked against the
index), and re-reading lines by their offset in the parts' concatenation.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import hashlib
import itertools
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from provenance.errors import DigestMismatchError, FormatError, InputError, LocalIOError
from provenance.manifest import (
    ManifestBlock,
    ManifestEntry,
    ManifestSummary,
    check_id,
    entry_lines,
)
from provenance.manifest.entry import (
    _ID,
    _SIZE,
    _TEXT_SHA256,
    _ids_fine,
    _ids_suspect,
    _in_order,
)
from provenance.manifest.reader import iter_manifest_lines
from provenance.partitions.index import (
    INDEX_NAME,
    PART_FILE_NAME,
    ManifestIndex,
    OffsetTree,
    PartInfo,
    SidecarPart,
    check_partitions,
    index_path,
    is_partitioned,
    leaf_hashes,
    part_name,
    partition_of,
    read_index,
    root_of_parts,
    sidecar_name,
)

_BLOCK = 1 << 14  # entries per write

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
            if _in_order(block, last_key):  # one check for the block, else entry by entry
                last_key = (block[-1].sha256, block[-1].id)
            else:
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
            data = entry_lines(block)
            listed = list(map(_ID, block))
            if _ids_suspect(data, listed) and not _ids_fine(listed):
                for entry in block:
                    check_id(entry.id, what=str(path))
            handle.write(data)
            file_hash.update(data)
            tree.extend(leaf_hashes(data))
            if first is None:
                first = block[0].sha256
            count += len(block)
            size += len(data)
            data_bytes += sum(filter(None, map(_SIZE, block)))
            text_entries += len(block) - list(map(_TEXT_SHA256, block)).count(None)
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
        if name != INDEX_NAME and not PART_FILE_NAME.fullmatch(name)
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


PartSidecarWriter = Callable[[list[ManifestEntry], PartInfo, Path], SidecarPart]
"""Writes a part's fingerprint sidecar: given the part's entries, what the index says of the
part, and the sidecar's path; returns what the index is to say of the sidecar."""


def write_partitioned(
    entries: Iterable[ManifestEntry],
    out: Path,
    *,
    partitions: int,
    sidecars: PartSidecarWriter | None = None,
) -> ManifestSummary:
    """Write ``entries`` (in manifest order) as a partitioned manifest in ``out``, and with
    ``sidecars`` each part's fingerprint sidecar (a part's entries are then held while it is
    written: memory is bounded by the part).

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
            taken: Iterable[ManifestEntry] = stream.take_while(
                functools.partial(_in_part, k=k, partitions=partitions)
            )
            if sidecars is not None:
                taken = list(taken)
            part = write_part(
                taken,
                staging / part_name(k),
                offset=offset,
                k=k,
                partitions=partitions,
                previous=previous,
            )
            if sidecars is not None:
                assert isinstance(taken, list)
                listed = sidecars(taken, part, staging / sidecar_name(k))
                part = dataclasses.replace(part, fingerprints=listed)
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
    directory: Path,
    part: PartInfo,
    *,
    offset: int,
    k: int,
    partitions: int,
    what: str,
    on_found: Callable[[PartInfo], None] | None = None,
) -> Iterator[tuple[list[ManifestEntry], bytes]]:
    """Stream part ``k`` in blocks of entries with their lines, checking it against its index
    entry once read whole (``on_found`` is then called with what was read: equal to ``part``).

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
    # The part's blocks as read, with their bytes (checked canonical: no need to encode the
    # entries again for the leaf hashes).
    for block, data in iter_manifest_lines(path, on_digest=digests.append):
        for entry in (block[0], block[-1]):
            if partition_of(entry.sha256, partitions) != k:
                raise FormatError(f"{path}: {entry.sha256} does not belong to part {k}")
        tree.extend(leaf_hashes(data))
        first = first or block[0].sha256
        last = block[-1].sha256
        count += len(block)
        size += len(data)
        data_bytes += sum(filter(None, map(_SIZE, block)))
        text_entries += len(block) - list(map(_TEXT_SHA256, block)).count(None)
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
        fingerprints=part.fingerprints,  # checked by whoever reads the sidecar
    )
    if found != part:
        raise DigestMismatchError(f"{what}: {part.file} is not the part the index describes")
    if on_found is not None:
        on_found(found)


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
            f"{what}: sha256 {digest} is not the manifest the card commits to ({committed.digest})"
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
