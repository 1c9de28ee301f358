"""The I/O shell of the ``manifest`` commands: a manifest file with the files beside it.

A manifest ``M`` may have two files beside it: ``M.shard.json``, the record of the shard it is
(see :func:`provenance.manifest.write_shard_record`), and ``M.fp``, its fingerprint sidecar for
lookups (:mod:`provenance.fpindex`). :func:`build_manifest_file` and :func:`merge_manifest_files`
write the manifest and both, and remove one left from an earlier build that would describe
another manifest.

Nothing heavy is imported for a build without fingerprints: small builds are dominated by
start-up.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from provenance import manifest
from provenance.errors import InputError, LocalIOError
from provenance.records import DEFAULT_COLUMNS, Columns


def sidecar_path(manifest_path: Path) -> Path:
    """``fpindex.sidecar_path``, without importing fpindex (and numpy) when it is not used."""
    return manifest_path.with_name(manifest_path.name + ".fp")


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise LocalIOError(f"{path}: cannot remove: {exc.strerror}") from None


def build_manifest_file(
    input_path: Path,
    output: Path,
    *,
    workers: int = 1,
    shard: tuple[int, int] | None = None,
    ignore: Callable[[str], bool] | None = None,
    symlinks: manifest.SymlinkPolicy = "skip",
    columns: Columns = DEFAULT_COLUMNS,
    fingerprints: bool = True,
    stats: manifest.WalkStats | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> manifest.ManifestSummary:
    """Hash ``input_path`` (a directory, or a records file) into the manifest ``output``.

    A directory is walked as :func:`provenance.manifest.build_from_directory` walks it, with
    ``ignore``, ``symlinks`` and ``stats`` (the manifest and its sidecar are left out when
    written inside it); a records file is read with ``columns``. With ``shard``, only that
    shard is built and ``output.shard.json`` records it. With ``fingerprints``, text entries
    get their normalized-text digest and ``output.fp`` the near-duplicate fingerprints.

    Returns:
        The summary of the manifest written.

    Raises:
        InputError: columns given for a directory, or exclusions or a symlink policy for a
            records file; and as the builders.
        UnsafePathError, FormatError: see :func:`provenance.manifest.build_from_directory` and
            :func:`provenance.manifest.build_from_records`.
        LocalIOError: reading or writing failed (nothing is left half-written).
    """
    prints: dict[str, Any] | None = {} if fingerprints else None
    sidecar = sidecar_path(output)
    if input_path.is_dir():
        if columns != DEFAULT_COLUMNS:
            raise InputError(
                f"{input_path}: is a directory; column names ({columns.describe()}) apply only"
                " to records files"
            )
        entries = manifest.build_from_directory(
            input_path,
            workers=workers,
            shard=shard,
            exclude={os.path.realpath(output), os.path.realpath(sidecar)},
            ignore=ignore,
            symlinks=symlinks,
            stats=stats,
            progress=progress,
            on_total=on_total,
            prints=prints,
        )
    else:
        if ignore is not None or symlinks == "error":
            raise InputError(
                f"{input_path}: exclusions and the symlink policy apply to a directory, not a"
                " records file"
            )
        entries = manifest.build_from_records(
            input_path, shard=shard, progress=progress, prints=prints, columns=columns
        )
    summary = manifest.write_manifest(entries, output)
    manifest.write_shard_record(output, shard, summary)
    if prints is not None:
        from provenance import fpindex

        fpindex.write_sidecar_for(entries, summary.digest, prints, sidecar)
    else:
        # A sidecar left from an earlier build would describe another manifest.
        _remove(sidecar)
    return summary


def merge_manifest_files(inputs: Sequence[Path], output: Path) -> manifest.ManifestSummary:
    """Merge manifests built separately (shards: the complete set of one build) into ``output``,
    with their fingerprint sidecars (all or none of the inputs must have one; a partitioned
    input's are its parts').

    Returns:
        The summary of the merged manifest.

    Raises:
        InputError, FormatError: see :func:`provenance.manifest.merge_manifests` and
            :func:`provenance.fpindex.merge_sidecars`.
        LocalIOError: reading or writing failed.
    """
    from provenance import fpindex

    # Merged beside the output first: a sidecar refused after the manifests were merged leaves
    # nothing written.
    staged = output.with_name(f".{output.name}.merge-{uuid.uuid4().hex[:12]}")
    try:
        summary = manifest.merge_manifests(inputs, staged)
        prints = fpindex.merged_prints(list(inputs))
        if prints is not None:
            fpindex.write_sidecar(staged, prints)
        try:
            os.replace(staged, output)
            if prints is not None:
                os.replace(fpindex.sidecar_path(staged), fpindex.sidecar_path(output))
        except OSError as exc:
            raise LocalIOError(f"{output}: cannot write: {exc.strerror}") from None
    finally:
        _remove(staged)
        _remove(fpindex.sidecar_path(staged))
    manifest.write_shard_record(output, None, summary)
    if prints is None:
        _remove(fpindex.sidecar_path(output))
    return summary
