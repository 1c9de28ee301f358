"""Building manifests: the entries of a directory's files or of a records file, in order.

A directory is walked (:mod:`.walk`) while its files are hashed (:mod:`.hashing`): hashing
starts with the first files found. A records file gives each record's content, a file beside it,
or its digest. Either way the entries come back in manifest order, ready to be written
(:func:`.writer.write_manifest`).
"""

from __future__ import annotations

import os
import re
import sys
import zlib
from collections.abc import Callable
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.errors import FormatError, InputError
from provenance.manifest.entry import (
    ManifestEntry,
    checked_entries,
    entry_from_mapping,
    sort_entries,
)
from provenance.manifest.hashing import FileDigest, Hasher, HashError, hash_file
from provenance.manifest.walk import FileRef, SymlinkPolicy, WalkStats, _walk

if TYPE_CHECKING:
    from provenance.records import Columns

_STAT_FIRST = 256
_CHECK_BLOCK = 1 << 12  # records made into entries, then checked together
_LINKED = attrgetter("linked")


def hash_tree(
    root: Path,
    *,
    workers: int,
    select: Callable[[str], bool] | None = None,
    exclude: set[str] | None = None,
    ignore: Callable[[str], bool] | None = None,
    symlinks: SymlinkPolicy = "skip",
    stats: WalkStats | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    fingerprint: bool = False,
    while_hashing: Callable[[], None] | None = None,
) -> list[tuple[FileRef, FileDigest | None]]:
    """Walk ``root`` as :func:`walk_files` does and hash the files whose id ``select`` accepts.

    Hashing starts while the walk is still listing files. ``on_total`` is called once with the
    bytes to hash when the walk is complete, before any ``progress`` call; without it, files
    are not stat'ed during the walk (their sizes come from hashing), which is faster. Then
    ``while_hashing`` is called, in this process, while the worker processes hash (its
    exceptions propagate, and stop the workers). With ``fingerprint``, each digest also
    carries the file's fingerprints (``FileDigest.prints``). ``stats`` also counts the hashed
    files that have other hard links.

    Returns:
        Every file found, in walk order, with its :class:`FileDigest` (``None`` for files not
        selected). Hashing problems are reported in the digests, not raised.

    Raises:
        InputError, UnsafePathError, LocalIOError: as :func:`walk_files`.
    """
    found: list[FileRef] = []  # every file
    files: list[FileRef] = []  # the selected ones, which the hasher indexes
    hasher = Hasher(files, workers, progress, fingerprint=fingerprint)
    # Without a total to report, only the first files are stat'ed: enough to see whether the
    # input is a few big files (then hashed at once on threads) or many small ones.
    stat_files = sys.maxsize if on_total else _STAT_FIRST
    try:
        total = 0
        for batch in _walk(
            root, exclude, stat_files, ignore=ignore, symlinks=symlinks, stats=stats
        ):
            found.extend(batch)
            start = len(files)
            files.extend(batch if select is None else [f for f in batch if select(f.id)])
            # The walk stats only its first files: known sizes come first, then -1 for all.
            unsized = start
            while unsized < len(files) and files[unsized].size >= 0:
                total += files[unsized].size
                hasher.add(unsized)
                unsized += 1
            if unsized < len(files):
                hasher.add_unsized(range(unsized, len(files)))
        if on_total:
            on_total(total)
        hasher.start_progress()
        if while_hashing is not None:
            hasher.submit_all()
            while_hashing()
        results = hasher.finish()
    finally:
        hasher.close()
    if stats is not None:
        stats.hard_linked += sum(map(_LINKED, results.values()))
    if select is None:
        return [(ref, results[i]) for i, ref in enumerate(files)]
    hashed: list[tuple[FileRef, FileDigest | None]] = []
    index = 0
    for ref in found:
        if index < len(files) and files[index] is ref:
            hashed.append((ref, results[index]))
            index += 1
        else:
            hashed.append((ref, None))
    return hashed


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
        raise InputError(f"shard {text!r}: expected K/N with 0 <= K < N, e.g. 0/4")
    return int(match[1]), int(match[2])


def build_from_directory(
    root: Path,
    *,
    workers: int,
    shard: tuple[int, int] | None = None,
    exclude: set[str] | None = None,
    ignore: Callable[[str], bool] | None = None,
    symlinks: SymlinkPolicy = "skip",
    stats: WalkStats | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    prints: dict[str, Any] | None = None,
) -> list[ManifestEntry]:
    """Hash every regular file under ``root`` and return the entries in manifest order.

    ``exclude``, ``ignore``, ``symlinks`` and ``stats`` are those of :func:`walk_files` (and
    ``stats`` counts hashed files with other hard links). With ``prints`` (a dict), files are
    also fingerprinted: text entries get ``textSha256`` and ``prints`` gets each entry id's
    :class:`provenance.fingerprints.ContentPrints` that has near-duplicate fingerprints (for
    the sidecar, :mod:`provenance.fpindex`).

    Raises:
        InputError, UnsafePathError: see :func:`walk_files`.
        LocalIOError: a file cannot be read or changed while it was hashed (the path is named;
            with several such files, the first by id).
    """
    select = None if shard is None else (lambda entry_id: _in_shard(entry_id, shard))
    hashed = hash_tree(
        root,
        workers=workers,
        select=select,
        exclude=exclude,
        ignore=ignore,
        symlinks=symlinks,
        stats=stats,
        progress=progress,
        on_total=on_total,
        fingerprint=prints is not None,
        # The fingerprinting code (numpy) is loaded here while the workers hash, not before they
        # start: they load it themselves only for contents that can have fingerprints.
        while_hashing=_load_fingerprinting if prints is not None else None,
    )
    entries = []
    failed: list[tuple[FileRef, HashError]] = []
    for ref, digest in hashed:
        if digest is None:
            continue
        if digest.error is not None:
            failed.append((ref, digest.error))
            continue
        found = digest.prints
        if found is None:
            entries.append(ManifestEntry(id=ref.id, sha256=digest.sha256, size=digest.size))
            continue
        entries.append(
            ManifestEntry(
                id=ref.id, sha256=digest.sha256, size=digest.size, textSha256=found.text_sha256
            )
        )
        if prints is not None and (len(found.text) or found.image is not None):
            prints[ref.id] = found
    if failed:
        ref, error = min(failed, key=lambda f: f[0].id)
        raise error.exception(ref.path)
    sort_entries(entries)
    return entries


def _load_fingerprinting() -> None:
    import provenance.fingerprints  # noqa: F401


def build_from_records(
    path: Path,
    *,
    shard: tuple[int, int] | None = None,
    progress: Callable[[int], None] | None = None,
    prints: dict[str, Any] | None = None,
    columns: Columns | None = None,
    row_groups: tuple[int, int] | None = None,
) -> list[ManifestEntry]:
    """Hash every record of a records file (of a Parquet file, with ``row_groups``, only
    those row groups: see :func:`provenance.records.iter_records`) and return the entries in
    manifest order.

    ``columns`` says which column holds each field (default: the fields' own names). A record
    id that appears twice is an error naming the file and both lines.

    A record's digest is the SHA-256 of its content: the UTF-8 bytes of ``text``, the file at
    ``path`` (relative to the records file's directory, never outside it), or the given
    ``sha256``. With ``prints`` (a dict), contents are fingerprinted as in
    :func:`build_from_directory` (records given only by ``sha256`` have no content to).

    Raises:
        InputError, FormatError, UnsafePathError, LocalIOError: a bad row or file, named.
    """
    from provenance.records import DEFAULT_COLUMNS, iter_records, safe_join, text_digest

    if not os.path.lexists(path):
        # Neither a directory nor a records file: say so, rather than guess a format from it.
        raise InputError(f"{path}: no such file or directory")
    base = path.parent
    entries: list[ManifestEntry] = []
    # Records waiting to be fingerprinted together: (fields, text content, ready prints, where).
    pending: list[tuple[dict[str, Any], bytes | None, Any, str]] = []

    def flush() -> None:
        from provenance.fingerprints import content_prints

        texts = [(k, item[1]) for k, item in enumerate(pending) if item[1] is not None]
        made = content_prints([t for _, t in texts], ordered=False)
        found = dict(zip([k for k, _ in texts], made, strict=True))
        for k, (fields, _, ready, where) in enumerate(pending):
            result = found.get(k, ready)
            if result is not None:
                fields["textSha256"] = result.text_sha256
                if prints is not None and (len(result.text) or result.image is not None):
                    prints[fields["id"]] = result
            entries.append(entry_from_mapping(fields, what=where))
        pending.clear()

    # Without fingerprints, entries are made without checks and checked a block at a time
    # (checked_entries: the same errors, in record order); any other error raised while
    # reading first checks the entries made before it, as one check per record would.
    checked = 0

    def check_fresh() -> None:
        nonlocal checked
        fresh = entries[checked:]
        checked = len(entries)  # once: a failed check is not made again while it unwinds
        checked_entries(fresh, lambda k: f"{path}: record {fresh[k].id!r}")

    try:
        for record in iter_records(
            path, columns=columns or DEFAULT_COLUMNS, unique_ids=True, row_groups=row_groups
        ):
            if shard is not None and not _in_shard(record.id, shard):
                continue
            size: int | None
            ready: Any = None
            if record.text is not None:
                try:
                    digest, size = text_digest(record.text)
                except FormatError as exc:
                    raise FormatError(f"{path}: record {record.id!r}: {exc}") from None
            elif record.path is not None:
                where = f"{path}: record {record.id!r}"
                path_of = safe_join(base, record.path, what=where)
                result = hash_file(path_of, fingerprint=prints is not None)
                ready = result.prints
                if result.error is not None:
                    raise result.error.exception(f"{where}: {record.path}")
                digest, size = result.sha256, result.size
            else:
                assert record.sha256 is not None
                digest, size = record.sha256, record.size
            if prints is None:
                entries.append(
                    ManifestEntry(
                        record.id,
                        digest,
                        size,
                        record.source,
                        record.url,
                        record.license,
                        record.rights_holder,
                    )
                )
                if len(entries) - checked >= _CHECK_BLOCK:
                    check_fresh()
            else:
                fields = {
                    "id": record.id,
                    "sha256": digest,
                    "size": size,
                    "source": record.source,
                    "url": record.url,
                    "license": record.license,
                    "rightsHolder": record.rights_holder,
                }
                text = record.text.encode("utf-8") if record.text is not None else None
                pending.append((fields, text, ready, f"{path}: record {record.id!r}"))
                if len(pending) >= 512:
                    flush()
            if progress:
                progress(size or 0)
    except Exception:
        check_fresh()
        raise
    check_fresh()
    if pending:
        flush()
    sort_entries(entries)
    return entries
