"""How the files under a data directory differ from a manifest (``verify --data``).

Every file is re-hashed (walked as ``manifest build`` walks them: the same exclusions and symlink
policy; the manifest and its sidecars are left out when they lie inside the directory) and held
against the manifest's digests: changed, missing, extra and moved files (a file whose content is
a missing entry's, found under a path the manifest does not list) are counted and listed by
path. The caller's checks of the manifest run in this process while the workers hash.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provenance import manifest as manifest_module
from provenance.errors import ProvenanceError
from provenance.manifest import FileRef


@dataclass(frozen=True, slots=True)
class DataDiff:
    """How the files under a data directory differ from the manifest.

    Paths are manifest ids (paths relative to the directory), each list sorted. A file whose
    content is a missing entry's, found under a path the manifest does not list, is ``moved``
    (from the entry's id to that path) rather than one missing plus one extra.
    """

    entries: int
    """Entries in the manifest."""
    changed: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    moved: tuple[tuple[str, str], ...] = ()
    unreadable: tuple[tuple[str, str], ...] = ()
    """(path, why) for files that could not be hashed."""
    stats: manifest_module.WalkStats = field(default_factory=manifest_module.WalkStats)
    """What the walk skipped (symlinks, exclusions) and saw (hard links)."""

    @property
    def ok(self) -> bool:
        """True when the files are exactly those of the manifest."""
        return not (self.changed or self.missing or self.extra or self.moved or self.unreadable)

    def counts(self) -> str:
        """One line of counts: ``222 changed, 75 missing, 75 extra of 11,984``."""
        if self.ok:
            return f"all {self.entries:,} files match the manifest"
        parts = [
            f"{len(self.changed):,} changed",
            f"{len(self.missing):,} missing",
            f"{len(self.extra):,} extra",
        ]
        if self.moved:
            parts.append(f"{len(self.moved):,} moved")
        if self.unreadable:
            parts.append(f"{len(self.unreadable):,} unreadable")
        return f"{', '.join(parts)} of {self.entries:,}"

    def examples(self, limit: int = 3) -> str:
        """The first ``limit`` paths of each kind that differs, e.g. ``changed: a.txt, b.txt``."""
        kinds: list[tuple[str, list[str]]] = [
            ("changed", list(self.changed)),
            ("missing", list(self.missing)),
            ("extra", list(self.extra)),
            ("moved", [f"{old} -> {new}" for old, new in self.moved]),
            ("unreadable", [path for path, _ in self.unreadable]),
        ]
        parts = []
        for kind, paths in kinds:
            if paths:
                more = f" and {len(paths) - limit:,} more" if len(paths) > limit else ""
                parts.append(f"{kind}: {', '.join(paths[:limit])}{more}")
        return "; ".join(parts)

    def notes(self) -> str:
        """What the walk skipped or saw, for the check's detail ("" when nothing)."""
        stats = self.stats
        notes = []
        if stats.symlinks:
            outside = (
                f", {stats.symlinks_outside:,} pointing outside" if stats.symlinks_outside else ""
            )
            notes.append(f"{stats.symlinks:,} symlink(s) skipped{outside}")
        if stats.excluded_files or stats.excluded_dirs:
            notes.append(
                f"{stats.excluded_files:,} file(s) and {stats.excluded_dirs:,} folder(s) excluded"
            )
        if stats.hard_linked:
            notes.append(f"{stats.hard_linked:,} file(s) with other hard links")
        return "; ".join(notes)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form: every path of every kind, and the walk's counts."""
        stats = self.stats
        return {
            "entries": self.entries,
            "changed": list(self.changed),
            "missing": list(self.missing),
            "extra": list(self.extra),
            "moved": [{"from": old, "to": new} for old, new in self.moved],
            "unreadable": [{"id": path, "error": error} for path, error in self.unreadable],
            "symlinksSkipped": stats.symlinks,
            "symlinksOutside": stats.symlinks_outside,
            "excludedFiles": stats.excluded_files,
            "excludedFolders": stats.excluded_dirs,
            "hardLinked": stats.hard_linked,
        }


@dataclass(frozen=True, slots=True)
class DataWalk:
    """How ``verify --data`` walks and hashes the data directory."""

    ignore: Callable[[str], bool] | None
    symlinks: manifest_module.SymlinkPolicy
    workers: int
    progress: Callable[[int], None] | None
    on_total: Callable[[int], None] | None
    executor: str = "local"
    """``local`` (this machine's hashing processes) or ``ray`` (shards of files as Ray tasks)."""
    ray_address: str | None = None


def diff_data(
    expected: Mapping[str, str],
    data_dir: Path,
    manifest_path: Path,
    walk: DataWalk,
    *,
    while_hashing: Callable[[], None],
) -> DataDiff:
    """Re-hash the files under ``data_dir`` against ``expected`` (id -> sha256, the manifest's).

    Only the files the manifest lists are hashed first; the others only when entries are
    missing, to tell moved files from missing and extra ones. ``while_hashing`` runs in this
    process while the worker processes hash (so the manifest's own checks cost no time); when
    the walk fails before it ran, it runs first, and then the walk's error is raised.

    Returns:
        The differences; files that cannot be hashed are listed as unreadable, not raised.

    Raises:
        InputError, UnsafePathError, LocalIOError: the directory cannot be walked (see
            :func:`provenance.manifest.walk_files`), or what ``while_hashing`` raises.
    """
    ran: list[bool] = []
    stats = manifest_module.WalkStats()

    def run() -> None:
        ran.append(True)
        while_hashing()

    # The manifest and the sidecars written beside it are not data, as 'manifest build' skips
    # them when it writes them into the folder it hashes.
    beside = [manifest_path.with_name(manifest_path.name + s) for s in (".fp", ".shard.json")]
    try:
        if walk.executor != "local":
            from provenance.sharded import hash_tree_on

            hashed = hash_tree_on(
                data_dir,
                executor=walk.executor,
                ray_address=walk.ray_address,
                workers=walk.workers,
                select=expected.__contains__,
                exclude={os.path.realpath(p) for p in (manifest_path, *beside)},
                ignore=walk.ignore,
                symlinks=walk.symlinks,
                stats=stats,
                progress=walk.progress,
                while_hashing=run,
            )
        else:
            hashed = manifest_module.hash_tree(
                data_dir,
                workers=walk.workers,
                select=expected.__contains__,
                exclude={os.path.realpath(p) for p in (manifest_path, *beside)},
                ignore=walk.ignore,
                symlinks=walk.symlinks,
                stats=stats,
                progress=walk.progress,
                on_total=walk.on_total,
                while_hashing=run,
            )
    except ProvenanceError:
        if not ran:  # the walk failed: the manifest's own errors still come first
            while_hashing()
        raise
    hashed.sort(key=lambda item: item[0].id)
    on_disk = {ref.id for ref, _ in hashed}
    changed: list[str] = []
    unreadable: list[tuple[str, str]] = []
    for ref, digest in hashed:
        if digest is None:
            continue
        if digest.error is not None:
            unreadable.append((ref.id, str(digest.error)))
        elif digest.sha256 != expected[ref.id]:
            changed.append(ref.id)
    missing = sorted(set(expected) - on_disk)
    extra_refs = [ref for ref, digest in hashed if digest is None]
    moved: list[tuple[str, str]] = []
    if missing and extra_refs:
        missing, extra_refs, moved = _find_moves(missing, extra_refs, expected, walk.workers)
    return DataDiff(
        entries=len(expected),
        changed=tuple(changed),
        missing=tuple(missing),
        extra=tuple(ref.id for ref in extra_refs),
        moved=tuple(moved),
        unreadable=tuple(unreadable),
        stats=stats,
    )


def _find_moves(
    missing: list[str],
    extra_refs: list[FileRef],
    expected: Mapping[str, str],
    workers: int,
) -> tuple[list[str], list[FileRef], list[tuple[str, str]]]:
    """Pair missing entries with extra files of the same content (both in id order).

    Returns:
        The missing ids and extra files left unpaired, and the (from, to) pairs.
    """
    by_digest: dict[str, list[str]] = {}
    for entry_id in missing:
        by_digest.setdefault(expected[entry_id], []).append(entry_id)
    digests = manifest_module.hash_files(extra_refs, workers=workers)
    moved: list[tuple[str, str]] = []
    left: list[FileRef] = []
    for ref, digest in zip(extra_refs, digests, strict=True):
        candidates = by_digest.get(digest.sha256) if digest.error is None else None
        if candidates:
            moved.append((candidates.pop(0), ref.id))
        else:
            left.append(ref)
    paired = {old for old, _ in moved}
    return [m for m in missing if m not in paired], left, moved
