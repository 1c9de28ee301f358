"""Filtering a directory: every file is a record with no URL, listed by its relative path."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from provenance._files import atomic_writer
from provenance.errors import UnsafePathError
from provenance.filter._digests import read_file, text_digests
from provenance.filter._records import batches
from provenance.filter.report import Tally
from provenance.lists.match import ListIndex


def filter_directory(
    root: Path,
    index: ListIndex,
    tally: Tally,
    kept_path: Path,
    removed_path: Path | None,
    progress: Callable[[int], None] | None,
) -> str:
    """Filter the files under ``root``: their relative paths, one per line, go to ``kept_path``
    (and ``removed_path``), counted in ``tally``; see :func:`provenance.filter.apply_lists`.

    Returns:
        A note on the symlinks skipped ("" if none).
    """
    from provenance.manifest import WalkStats, walk_files

    exclude = {str(p.resolve()) for p in (kept_path, removed_path) if p is not None}
    stats = WalkStats()
    files = walk_files(root, exclude=exclude, stats=stats)
    for ref in files:
        if "\n" in ref.id or "\r" in ref.id:
            raise UnsafePathError(
                f"{ref.path}: a file name with a line break cannot be listed one per line"
            )
    need = index.has_content_entries or index.has_text_entries
    with contextlib.ExitStack() as stack:
        kept = stack.enter_context(atomic_writer(kept_path))
        removed = stack.enter_context(atomic_writer(removed_path)) if removed_path else None
        for batch in batches(files, 256):
            raw_texts: list[bytes | None] = []
            contents: list[bytes | None] = []
            for ref in batch:
                if need:
                    content, text = read_file(Path(ref.path), index.has_text_entries, ref.id)
                else:
                    content, text = None, None
                contents.append(content if index.has_content_entries else None)
                raw_texts.append(text)
            texts = text_digests(raw_texts) if index.has_text_entries else [None] * len(batch)
            results = index.match_records([None] * len(batch), contents, texts)
            for ref, result in zip(batch, results, strict=True):
                line = ref.id.encode("utf-8") + b"\n"
                if tally.add(ref.id, result):
                    kept.write(line)
                elif removed is not None:
                    removed.write(line)
            if progress:
                progress(len(batch))
    if not stats.symlinks:
        return ""
    # Never silently: a symlinked file is neither kept nor removed, it is not looked at.
    outside = f", {stats.symlinks_outside:,} pointing outside it" if stats.symlinks_outside else ""
    return f"skipped {stats.symlinks:,} symlink(s) in {root}{outside} (never followed)"
