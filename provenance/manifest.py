"""Manifests: one canonical JSON line per file or record, ordered by ``(sha256, id)``.

Each line is the RFC 8785 canonical form of its entry, so the line bytes themselves are the
Merkle leaf data (leaf = SHA-256(0x00 || line)). Reading a manifest checks, per line, that the
entry is valid (a msgspec typed decode that the tests prove agrees with
``schemas/manifest-entry.v1.json``), that the line is exactly its canonical form, and that the
order is strictly increasing; the file digest and Merkle root are computed in the same pass.

Building hashes files on all cores (processes over chunks of small files, large files streamed
through a reused buffer), never follows symlinks out of the data root, refuses special files,
and detects files that change while they are hashed.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import re
import stat
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import msgspec

from provenance import merkle
from provenance._files import atomic_writer
from provenance.errors import (
    FormatError,
    InputError,
    LocalIOError,
    ProvenanceError,
    UnsafePathError,
)

MAX_ID_LENGTH = 4096
MAX_LINE_BYTES = 64 * 1024
_HEX64 = "^[0-9a-f]{64}$"

Sha256Hex = Annotated[str, msgspec.Meta(pattern=_HEX64)]
EntryId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
Size = Annotated[int, msgspec.Meta(ge=0, le=2**53 - 1)]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]


class ManifestEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One file or record. ``id`` is a relative POSIX path or a record id."""

    id: EntryId
    sha256: Sha256Hex
    size: Size | None = None
    source: ShortText | None = None
    url: ShortText | None = None
    license: ShortText | None = None
    rightsHolder: ShortText | None = None  # noqa: N815 - the JSON field name
    textSha256: Sha256Hex | None = None  # noqa: N815 - the JSON field name

    def sort_key(self) -> tuple[str, str]:
        """The manifest order."""
        return (self.sha256, self.id)


_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder(ManifestEntry)


def entry_bytes(entry: ManifestEntry) -> bytes:
    """Return the canonical (RFC 8785) bytes of ``entry``: its manifest line without newline."""
    return _encoder.encode(entry)


def decode_entry(line: bytes, *, what: str) -> ManifestEntry:
    """Decode and check one manifest line (without its newline).

    Raises:
        FormatError: invalid entry, or the line is not the entry's canonical form (which also
            catches duplicate keys and non-canonical escapes).
    """
    try:
        entry = _decoder.decode(line)
    except msgspec.ValidationError as exc:
        raise FormatError(f"{what}: invalid manifest entry: {exc}") from None
    except msgspec.DecodeError as exc:
        raise FormatError(f"{what}: malformed JSON: {exc}") from None
    if _encoder.encode(entry) != line:
        raise FormatError(f"{what}: entry is not in canonical form (RFC 8785, no duplicate keys)")
    return entry


@dataclass(frozen=True, slots=True)
class ManifestSummary:
    """What a card commits to: the file digest, the entry count, total bytes and Merkle root."""

    digest: str
    entries: int
    total_bytes: int
    root: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """A loaded manifest: entries in order plus the summary computed while reading them."""

    entries: list[ManifestEntry]
    summary: ManifestSummary


def _iter_lines(handle: BinaryIO, what: str) -> Iterator[tuple[int, bytes]]:
    for number, raw in enumerate(handle, start=1):
        if len(raw) > MAX_LINE_BYTES:
            raise FormatError(f"{what}:{number}: line longer than {MAX_LINE_BYTES} bytes")
        if not raw.endswith(b"\n"):
            raise FormatError(f"{what}:{number}: last line has no newline (truncated file?)")
        yield number, raw[:-1]


def iter_manifest(
    path: Path, *, on_summary: Callable[[ManifestSummary], None] | None = None
) -> Iterator[ManifestEntry]:
    """Stream the entries of the manifest at ``path``, checking each line and the order.

    ``on_summary`` is called with the summary once the whole file has been read and checked.

    Raises:
        InputError: the file is missing or unreadable.
        FormatError: a line is invalid, not canonical, or out of order, or an id repeats.
    """
    what = str(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed in finally across yields
    except FileNotFoundError:
        raise InputError(f"{what}: no such manifest file") from None
    except IsADirectoryError:
        raise InputError(f"{what}: is a directory, expected a manifest file") from None
    except PermissionError:
        raise InputError(f"{what}: permission denied") from None
    except OSError as exc:
        raise LocalIOError(f"{what}: cannot open: {exc.strerror}") from None
    try:
        file_hash = hashlib.sha256()
        tree = merkle.TreeBuilder()
        total = 0
        previous: tuple[str, str] | None = None
        seen_ids: set[str] = set()
        leaf_hash = merkle.leaf_hash
        try:
            for number, line in _iter_lines(handle, what):
                file_hash.update(line)
                file_hash.update(b"\n")
                entry = decode_entry(line, what=f"{what}:{number}")
                key = (entry.sha256, entry.id)
                if previous is not None and key <= previous:
                    raise FormatError(f"{what}:{number}: entries are not ordered by (sha256, id)")
                if entry.id in seen_ids:
                    raise FormatError(f"{what}:{number}: id {entry.id!r} appears twice")
                seen_ids.add(entry.id)
                previous = key
                tree.add(leaf_hash(line))
                total += entry.size or 0
                yield entry
        except OSError as exc:
            raise LocalIOError(f"{what}: cannot read: {exc.strerror}") from None
        if on_summary is not None:
            on_summary(
                ManifestSummary(file_hash.hexdigest(), tree.size, total, tree.root().hex())
            )
    finally:
        handle.close()


def read_manifest(path: Path) -> Manifest:
    """Load and check the whole manifest at ``path``.

    Raises:
        InputError, FormatError, LocalIOError: as :func:`iter_manifest`.
    """
    summaries: list[ManifestSummary] = []
    entries = list(iter_manifest(path, on_summary=summaries.append))
    return Manifest(entries, summaries[0])


def write_manifest(entries: Iterable[ManifestEntry], output: Path) -> ManifestSummary:
    """Write ``entries`` (already in manifest order) atomically to ``output``.

    Returns:
        The summary of what was written.

    Raises:
        FormatError: the entries are out of order or an id repeats.
        LocalIOError: the file cannot be written (nothing is left behind).
    """
    file_hash = hashlib.sha256()
    tree = merkle.TreeBuilder()
    total = 0
    previous: tuple[str, str] | None = None
    seen_ids: set[str] = set()
    with atomic_writer(output) as handle:
        for entry in entries:
            key = entry.sort_key()
            if previous is not None and key <= previous:
                if key == previous or entry.id in seen_ids:
                    raise FormatError(f"id {entry.id!r} appears twice")
                raise FormatError("entries are not ordered by (sha256, id)")
            if entry.id in seen_ids:
                raise FormatError(f"id {entry.id!r} appears twice")
            seen_ids.add(entry.id)
            previous = key
            line = _encoder.encode(entry)
            tree.add(merkle.leaf_hash(line))
            line += b"\n"
            file_hash.update(line)
            handle.write(line)
            total += entry.size or 0
    return ManifestSummary(file_hash.hexdigest(), tree.size, total, tree.root().hex())


def merge_manifests(paths: Iterable[Path], output: Path) -> ManifestSummary:
    """Merge manifests built separately (e.g. shards) into one, as a single build would give.

    Raises:
        FormatError: an input is invalid, or an id appears in two inputs.
        InputError, LocalIOError: a file cannot be read or written.
    """
    streams = [iter_manifest(p) for p in paths]
    return write_manifest(heapq.merge(*streams, key=ManifestEntry.sort_key), output)


# ----------------------------------------------------------------------------------------------
# Hashing files


_BUFFER_SIZE = 1 << 20
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_buffer: bytearray | None = None


@dataclass(frozen=True, slots=True)
class FileDigest:
    """The outcome of hashing one file: a digest, or an error message."""

    sha256: str
    size: int
    error: str | None = None


def hash_file(path: str) -> FileDigest:
    """Hash one regular file without following a final symlink and without blocking on FIFOs.

    Returns a :class:`FileDigest` whose ``error`` is set (and digest empty) when the file is not
    a regular file, cannot be read, or changed while it was read.
    """
    global _buffer
    if _buffer is None:
        _buffer = bytearray(_BUFFER_SIZE)
    view = memoryview(_buffer)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        return FileDigest("", 0, _describe_os_error(exc))
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            return FileDigest("", 0, "not a regular file (FIFO, socket or device)")
        digest = hashlib.sha256()
        read = 0
        while True:
            count = os.readv(fd, [view])
            if count == 0:
                break
            digest.update(view[:count])
            read += count
        after = os.fstat(fd)
    except OSError as exc:
        return FileDigest("", 0, _describe_os_error(exc))
    finally:
        os.close(fd)
    if (
        read != before.st_size
        or after.st_size != before.st_size
        or after.st_mtime_ns != before.st_mtime_ns
    ):
        return FileDigest("", 0, "file changed while it was being hashed")
    return FileDigest(digest.hexdigest(), read)


def _describe_os_error(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == getattr(os, "ELOOP", -1):
        return "is a symlink"
    return exc.strerror or str(exc)


def _hash_chunk(paths: list[str]) -> list[FileDigest]:
    return [hash_file(p) for p in paths]


@dataclass(frozen=True, slots=True)
class _FileRef:
    id: str
    path: str
    size: int


def _chunks(files: list[_FileRef], workers: int) -> list[list[int]]:
    """Group file indexes into tasks: many small files per task, one task per large file."""
    max_files, max_bytes = 512, 32 * _BUFFER_SIZE
    tasks: list[list[int]] = []
    current: list[int] = []
    current_bytes = 0
    for index, ref in enumerate(files):
        if ref.size >= max_bytes:
            tasks.append([index])
            continue
        current.append(index)
        current_bytes += ref.size
        if len(current) >= max_files or current_bytes >= max_bytes:
            tasks.append(current)
            current, current_bytes = [], 0
    if current:
        tasks.append(current)
    # Large tasks first, so that one big file does not start last and run alone.
    tasks.sort(key=lambda t: -sum(files[i].size for i in t))
    return tasks


def hash_files(
    files: list[_FileRef], *, workers: int, progress: Callable[[int], None] | None = None
) -> list[FileDigest]:
    """Hash ``files`` on ``workers`` processes, returning digests in the same order."""
    results: list[FileDigest | None] = [None] * len(files)
    tasks = _chunks(files, workers)
    total_bytes = sum(f.size for f in files)
    if workers <= 1 or len(tasks) <= 1 or total_bytes < 8 * _BUFFER_SIZE and len(files) < 2000:
        for task in tasks:
            for index, digest in zip(task, _hash_chunk([files[i].path for i in task]), strict=True):
                results[index] = digest
            if progress:
                progress(sum(files[i].size for i in task))
    else:
        import multiprocessing

        context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            pending: dict[Future[list[FileDigest]], list[int]] = {}
            queue = iter(tasks)
            for task in queue:
                pending[pool.submit(_hash_chunk, [files[i].path for i in task])] = task
                if len(pending) >= workers * 4:
                    break
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    task = pending.pop(future)
                    for index, digest in zip(task, future.result(), strict=True):
                        results[index] = digest
                    if progress:
                        progress(sum(files[i].size for i in task))
                    following = next(queue, None)
                    if following is not None:
                        pending[pool.submit(_hash_chunk, [files[i].path for i in following])] = (
                            following
                        )
    return [r for r in results if r is not None]


# ----------------------------------------------------------------------------------------------
# Walking a directory


def _relative_id(parts: tuple[str, ...], what: str) -> str:
    for part in parts:
        try:
            part.encode("utf-8")
        except UnicodeEncodeError:
            raw = os.fsencode(part)
            raise UnsafePathError(
                f"{what}: file name {raw!r} is not valid UTF-8; rename it to include it"
            ) from None
    return "/".join(parts)


def walk_files(root: Path, *, exclude: set[str] | None = None) -> list[_FileRef]:
    """List every regular file under ``root`` as (id, path, size), sorted by id.

    Symlinks are never followed: one that resolves inside ``root`` is skipped (its target is
    listed under its own path), one that points out of ``root`` is an error.

    Raises:
        InputError: ``root`` is not a directory.
        UnsafePathError: a symlink out of the root, a special file, or a non-UTF-8 name.
        LocalIOError: a directory cannot be listed.
    """
    if not root.is_dir():
        raise InputError(f"{root}: not a directory")
    real_root = os.path.realpath(root)
    files: list[_FileRef] = []
    excluded = exclude or set()
    stack: list[tuple[str, tuple[str, ...]]] = [(str(root), ())]
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as iterator:
                entries = list(iterator)
        except OSError as exc:
            raise LocalIOError(
                f"{directory}: cannot list directory: {_describe_os_error(exc)}"
            ) from None
        for item in entries:
            parts = (*prefix, item.name)
            try:
                if item.is_symlink():
                    target = os.path.realpath(item.path)
                    if os.path.commonpath([real_root, target]) != real_root:
                        raise UnsafePathError(
                            f"{item.path}: symlink points out of the data root (to {target})"
                        )
                    continue
                if item.is_dir(follow_symlinks=False):
                    stack.append((item.path, parts))
                    continue
                info = item.stat(follow_symlinks=False)
            except OSError as exc:
                raise LocalIOError(f"{item.path}: {_describe_os_error(exc)}") from None
            if not stat.S_ISREG(info.st_mode):
                raise UnsafePathError(f"{item.path}: not a regular file (FIFO, socket or device)")
            if os.path.realpath(item.path) in excluded:
                continue
            files.append(_FileRef(_relative_id(parts, item.path), item.path, info.st_size))
    files.sort(key=lambda f: f.id)
    return files


def _in_shard(entry_id: str, shard: tuple[int, int] | None) -> bool:
    if shard is None:
        return True
    index, count = shard
    return zlib.crc32(entry_id.encode("utf-8")) % count == index


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``K/N`` (0 <= K < N).

    Raises:
        InputError: not of that form.
    """
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise InputError(f"--shard {text!r}: expected K/N with 0 <= K < N, e.g. 0/4")
    return int(match[1]), int(match[2])


def build_from_directory(
    root: Path,
    *,
    workers: int,
    shard: tuple[int, int] | None = None,
    exclude: set[str] | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> list[ManifestEntry]:
    """Hash every regular file under ``root`` and return the entries in manifest order.

    Raises:
        InputError, UnsafePathError: see :func:`walk_files`.
        LocalIOError: a file cannot be read or changed while it was hashed (the path is named).
    """
    files = [f for f in walk_files(root, exclude=exclude) if _in_shard(f.id, shard)]
    if on_total:
        on_total(sum(f.size for f in files))
    digests = hash_files(files, workers=workers, progress=progress)
    entries = []
    for ref, digest in zip(files, digests, strict=True):
        if digest.error is not None:
            error_type: type[ProvenanceError] = (
                LocalIOError if "changed" in digest.error else UnsafePathError
            )
            if digest.error == "permission denied":
                error_type = InputError
            raise error_type(f"{ref.path}: {digest.error}")
        entries.append(ManifestEntry(id=ref.id, sha256=digest.sha256, size=digest.size))
    entries.sort(key=ManifestEntry.sort_key)
    return entries


def entry_from_mapping(data: dict[str, Any], *, what: str) -> ManifestEntry:
    """Build an entry from a mapping of manifest fields, checking it like a decoded line.

    Raises:
        FormatError: a field is missing or invalid.
    """
    try:
        return msgspec.convert(
            {k: v for k, v in data.items() if v is not None}, ManifestEntry, strict=True
        )
    except msgspec.ValidationError as exc:
        raise FormatError(f"{what}: {exc}") from None


def build_from_records(
    path: Path,
    *,
    shard: tuple[int, int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[ManifestEntry]:
    """Hash every record of a records file and return the entries in manifest order.

    A record's digest is the SHA-256 of its content: the UTF-8 bytes of ``text``, the file at
    ``path`` (relative to the records file's directory, never outside it), or the given
    ``sha256``.

    Raises:
        InputError, FormatError, UnsafePathError, LocalIOError: a bad row or file, named.
    """
    from provenance.records import iter_records, safe_join, text_digest

    base = path.parent
    entries: list[ManifestEntry] = []
    for record in iter_records(path):
        if not _in_shard(record.id, shard):
            continue
        where = f"{path}: record {record.id!r}"
        size: int | None
        if record.text is not None:
            try:
                digest, size = text_digest(record.text)
            except FormatError as exc:
                raise FormatError(f"{where}: {exc}") from None
        elif record.path is not None:
            result = hash_file(safe_join(base, record.path, what=where))
            if result.error is not None:
                raise (LocalIOError if "changed" in result.error else InputError)(
                    f"{where}: {record.path}: {result.error}"
                )
            digest, size = result.sha256, result.size
        else:
            assert record.sha256 is not None
            digest, size = record.sha256, record.size
        entries.append(
            entry_from_mapping(
                {
                    "id": record.id,
                    "sha256": digest,
                    "size": size,
                    "source": record.source,
                    "url": record.url,
                    "license": record.license,
                    "rightsHolder": record.rights_holder,
                },
                what=where,
            )
        )
        if progress:
            progress(size or 0)
    entries.sort(key=ManifestEntry.sort_key)
    return entries
