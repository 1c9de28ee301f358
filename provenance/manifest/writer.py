"""Writing manifests: checked, canonical lines written atomically; shard records; merging.

A manifest is written in blocks: each is checked to continue the order with new ids that follow
the id rules, encoded at C speed, written, and hashed for the file digest and the Merkle root
(in a forked child, from the written file, for a big manifest: see :mod:`._leaves`). Nothing is
left behind when a check fails. A shard built with ``--shard K/N`` gets a record beside it so
that merging can tell a complete set of shards.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance._files import atomic_writer
from provenance.errors import FormatError, InputError, LocalIOError
from provenance.manifest import _leaves
from provenance.manifest._leaves import LeafTree, LeafTreeProcess
from provenance.manifest.entry import (
    _ID,
    _SIZE,
    ManifestEntry,
    _encoder,
    _ids_fine,
    _ids_suspect,
    _in_order,
    _OrderState,
    check_id,
)
from provenance.manifest.reader import ManifestSummary, iter_manifest

_WRITE_BLOCK = 1 << 14  # entries


def _check_write_block(block: list[ManifestEntry], state: _OrderState) -> None:
    """Check that ``block`` continues the manifest order with new ids.

    Raises:
        FormatError: naming the first entry out of order or repeated, as a per-entry check would.
    """
    ids = set(map(_ID, block))
    if (
        _in_order(block, state.previous)
        and len(ids) == len(block)
        and state.seen_ids.isdisjoint(ids)
    ):
        state.seen_ids |= ids
        state.previous = block[-1].sort_key()
        return
    previous, seen_ids = state.previous, state.seen_ids
    for entry in block:
        key = entry.sort_key()
        if previous is not None and key <= previous:
            if key == previous or entry.id in seen_ids:
                raise FormatError(f"id {entry.id!r} appears twice")
            raise FormatError("entries are not ordered by (sha256, id)")
        if entry.id in seen_ids:
            raise FormatError(f"id {entry.id!r} appears twice")
        seen_ids.add(entry.id)
        previous = key
    state.previous = previous


def write_manifest(entries: Iterable[ManifestEntry], output: Path) -> ManifestSummary:
    """Write ``entries`` (already in manifest order) atomically to ``output``.

    Returns:
        The summary of what was written.

    Raises:
        FormatError: the entries are out of order, or an id repeats or breaks an id rule.
        LocalIOError: the file cannot be written (nothing is left behind).
    """
    file_hash = hashlib.sha256()
    state = _OrderState()
    tree: LeafTree | LeafTreeProcess | None = None
    # Blocks written before the tree is chosen: once they reach MERKLE_PROCESS_BYTES the
    # manifest is big, and its leaves may be hashed in another process (from the written file).
    pending: list[tuple[bytes, int]] = []
    offset = 0
    iterator = iter(entries)
    try:
        with atomic_writer(output) as handle:
            while block := list(itertools.islice(iterator, _WRITE_BLOCK)):
                _check_write_block(block, state)
                data = _encoder.encode_lines(block)
                listed = list(map(_ID, block))
                if _ids_suspect(data, listed) and not _ids_fine(listed):
                    for entry in block:
                        check_id(entry.id, what=str(output))
                handle.write(data)
                file_hash.update(data)
                state.total += sum(filter(None, map(_SIZE, block)))
                pending.append((data, offset))
                offset += len(data)
                if tree is None and offset >= _leaves.MERKLE_PROCESS_BYTES:
                    tree = _leaves.leaf_tree(handle.fileno(), offset, follow=True)
                if tree is not None:
                    if isinstance(tree, LeafTreeProcess):
                        handle.flush()
                    for data, start in pending:
                        tree.add(data, start)
                    pending.clear()
            if tree is None:
                tree = LeafTree()
                for data, start in pending:
                    tree.add(data, start)
            digest = file_hash.hexdigest()
            count, root = tree.result(digest, str(output))
    finally:
        if tree is not None:
            tree.close()
    return ManifestSummary(digest, count, state.total, root)


# A shard built with ``--shard K/N`` gets a small record beside it, MANIFEST.shard.json
# (schemas/manifest-shard.v1.json): K, N and the digest of the shard's manifest file. Merging
# then knows whether the set of shards is complete, and a record left beside another file is
# caught by its digest. A manifest is never changed to hold this: its lines are its entries.
SHARD_RECORD_SUFFIX = ".shard.json"
MAX_SHARD_RECORD_BYTES = 4096


@dataclass(frozen=True, slots=True)
class ShardRecord:
    """Which shard of a sharded build a manifest is: ``shard`` (K, from 0) of ``shards`` (N)."""

    shard: int
    shards: int
    sha256: str
    """The SHA-256 of the shard's manifest file."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardRecord:
        """Build from the JSON form (already validated against its schema)."""
        return cls(shard=data["shard"], shards=data["shards"], sha256=data["sha256"])

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"shard": self.shard, "shards": self.shards, "sha256": self.sha256}


def shard_record_path(manifest_path: Path) -> Path:
    """The shard record beside ``manifest_path``."""
    return manifest_path.with_name(manifest_path.name + SHARD_RECORD_SUFFIX)


def write_shard_record(
    manifest_path: Path, shard: tuple[int, int] | None, summary: ManifestSummary
) -> None:
    """Write the shard record of the manifest just written (atomically), or, for a manifest
    that is not a shard, remove a record left from an earlier build (it would describe
    another manifest).

    Raises:
        LocalIOError: the record cannot be written or removed.
    """
    path = shard_record_path(manifest_path)
    if shard is None:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise LocalIOError(f"{path}: cannot remove: {exc.strerror}") from None
        return
    from provenance import _json
    from provenance._files import atomic_write

    record = ShardRecord(shard=shard[0], shards=shard[1], sha256=summary.digest)
    atomic_write(path, _json.canonical(record.to_dict()) + b"\n")


def read_shard_record(manifest_path: Path) -> ShardRecord | None:
    """Return the shard record beside ``manifest_path``, or None when it has none.

    Raises:
        InputError: the record is not a regular file or cannot be read.
        FormatError, SchemaError: it is malformed, or its K is not below its N.
    """
    from provenance import _json, schema
    from provenance._files import read_bytes

    path = shard_record_path(manifest_path)
    if not os.path.lexists(path):
        return None
    data = _json.loads_object(read_bytes(path, limit=MAX_SHARD_RECORD_BYTES), what=str(path))
    schema.validate(data, schema.MANIFEST_SHARD, what=str(path))
    record = ShardRecord.from_dict(data)
    if record.shard >= record.shards:
        raise FormatError(f"{path}: shard {record.shard} of {record.shards} (K must be below N)")
    return record


def _check_shard_set(paths: list[Path], records: list[ShardRecord | None]) -> None:
    """Refuse a set of inputs that mixes shards with other manifests, mixes builds of
    different N, repeats a shard or misses one.

    Raises:
        InputError: naming the inputs or the missing shards.
    """
    if all(record is None for record in records):
        return  # manifests built separately, not as shards: merged as they are
    by_index: dict[int, Path] = {}
    shards = next(r.shards for r in records if r is not None)
    for path, record in zip(paths, records, strict=True):
        if record is None:
            raise InputError(
                f"{path}: has no shard record ({shard_record_path(path).name}) while other"
                " inputs are shards; merge the shards of one build"
            )
        if record.shards != shards:
            raise InputError(
                f"{path}: is shard {record.shard}/{record.shards}, while other inputs are shards"
                f" of {shards}; merge the shards of one build"
            )
        if record.shard in by_index:
            raise InputError(
                f"{path}: is shard {record.shard}/{shards}, as {by_index[record.shard]} is"
            )
        by_index[record.shard] = path
    missing = [k for k in range(shards) if k not in by_index]
    if missing:
        listed = ", ".join(f"{k}/{shards}" for k in missing[:20])
        more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise InputError(
            f"incomplete set of shards: {len(by_index)} of {shards} given, missing {listed}"
            f"{more} (K counts from 0 to {shards - 1})"
        )


def merge_manifests(paths: Iterable[Path], output: Path) -> ManifestSummary:
    """Merge manifests built separately (e.g. shards) into one, as a single build would give.

    When the inputs are shards (each has a shard record, see :func:`write_shard_record`), they
    must be every shard of one build, each the manifest its record describes.

    Raises:
        FormatError: an input is invalid, or an id appears in two inputs.
        InputError: a file cannot be read; the shards are not one complete set, or a shard
            record describes another manifest.
        LocalIOError: a file cannot be read or written (nothing is written).
    """
    inputs = list(paths)
    records = [read_shard_record(p) for p in inputs]
    _check_shard_set(inputs, records)
    digests: dict[int, str] = {}
    streams = [
        iter_manifest(p, on_digest=functools.partial(digests.__setitem__, k))
        for k, p in enumerate(inputs)
    ]

    def merged() -> Iterator[ManifestEntry]:
        yield from heapq.merge(*streams, key=ManifestEntry.sort_key)
        # Every input has been read whole by now, and nothing has been moved into place yet.
        for k, (path, record) in enumerate(zip(inputs, records, strict=True)):
            if record is not None and digests[k] != record.sha256:
                raise InputError(
                    f"{path}: its shard record {shard_record_path(path).name} describes another"
                    " manifest; rebuild this shard"
                )

    return write_manifest(merged(), output)
