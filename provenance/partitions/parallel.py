"""``verify`` of a partitioned manifest on an executor: one task per part, never all entries in
one process (DESIGN section 8).

The driver reads ``index.json`` once (its SHA-256 is what the card commits to) and checks it
(:func:`provenance.partitions.read_index`). Each task then reads one part, and checks it against
the index's entry for it: its SHA-256, entry count, sizes, first and last digest (so the parts'
order) and its Merkle subtree roots (:func:`provenance.partitions.read_part`); a part that
differs fails the whole command as a verified "no" (:class:`DigestMismatchError`), and nothing a
task found is used. A task also counts its entries per source and license, and writes its ids,
keyed by a hash of the id, to a scratch file; one task per id key then finds an id repeated in
two parts (DuckDB). The driver combines the parts' subtree roots into the root.

With exclusion lists (``verify --lists``) the joins run in the same tasks: a part's entries are
exactly those whose sha256 falls in its prefix range, so part ``k`` is joined with DuckDB against
the listed ``sha256`` digests of that range only (written once by the driver, one Parquet file
per part, :func:`provenance.lists.joins.write_partition_buckets`); URLs are matched per part
with the lists' own matcher (:meth:`ListIndex.match_urls`); ``textSha256`` values, which a
sha256 range does not bound, are written by each task keyed by their own prefix and joined by
one task per key. The findings are exactly those of the in-process path, in manifest order.

Scratch files live in a temporary directory (``scratch``, by default the system's): on a Ray
cluster, give one every node sees.
"""

from __future__ import annotations

import shutil
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from provenance.card import Tallier
from provenance.card.sources import Tally
from provenance.errors import FormatError
from provenance.executors import Executor
from provenance.manifest import ManifestSummary
from provenance.partitions.index import (
    ManifestIndex,
    PartInfo,
    index_path,
    read_index,
    root_of_parts,
)

if TYPE_CHECKING:
    from provenance.lists.audit import ListAudit, Matcher
    from provenance.lists.cache import CachedList
    from provenance.lists.match import ListIndex

__all__ = ["PartsRead", "read_parts"]

_NO_REFS: tuple[int, ...] = ()
_Match = tuple[int, str, int, tuple[int, ...], str | None]
"""(leaf number, id, side (0 claimed, 1 newer), listed entry numbers, why the URL cannot be
evaluated)."""


@dataclass(frozen=True, slots=True)
class _Side:
    """One side of the lists (the claimed versions, or the newer ones) as a task needs it."""

    content: tuple[str, ...]
    """Per part, the listed ``sha256`` digests of its range (a bucket file), or none at all."""
    text: tuple[str, ...]
    """Per key, the listed ``text-sha256`` digests of that prefix range, or none at all."""
    urls: ListIndex | None
    """The URL entries (:meth:`ListIndex.urls_only`), if there are any."""


@dataclass(frozen=True, slots=True)
class _PartTask:
    directory: str
    part: PartInfo
    offset: int
    k: int
    partitions: int
    what: str
    sources: tuple[Any, ...]
    scratch: str
    sides: tuple[_Side, ...]


@dataclass(slots=True)
class _PartDone:
    found: PartInfo | None = None
    tally: Tally | None = None
    matches: list[_Match] = field(default_factory=list)
    text_file: str | None = None
    ids_file: str = ""


def _ids_file(scratch: str, k: int) -> str:
    return str(Path(scratch) / f"ids-{k:05d}.parquet")


def _text_file(scratch: str, k: int) -> str:
    return str(Path(scratch) / f"text-{k:05d}.parquet")


def _check_part(task: _PartTask) -> _PartDone:
    """Read and check one part (a task); count, key its ids, and join it with the lists."""
    from provenance.lists import joins
    from provenance.lists.digests import digest_rows
    from provenance.partitions.files import read_part

    done = _PartDone()
    tallier = Tallier(task.sources)
    ids: list[str] = []
    digests: list[str] = []
    texts: list[tuple[int, str]] = []
    urls: list[str | None] = []
    blocks = read_part(
        Path(task.directory),
        task.part,
        offset=task.offset,
        k=task.k,
        partitions=task.partitions,
        what=task.what,
        on_found=lambda found: setattr(done, "found", found),
    )
    for entries, _ in blocks:
        tallier.add(entries)
        for entry in entries:
            ids.append(entry.id)
            digests.append(entry.sha256)
            if entry.textSha256 is not None:
                texts.append((len(ids) - 1, entry.textSha256))
            urls.append(entry.url)
    # read_part has checked the part against the index: only now is anything joined.
    done.tally = tallier.result()
    numbers = np.arange(task.offset, task.offset + len(ids), dtype=np.int64)
    rows = digest_rows(digests) if digests else np.zeros((0, 32), dtype=np.uint8)
    if task.partitions > 1:  # one part's own ids were checked unique as it was read
        keys = np.asarray([zlib.crc32(i.encode("utf-8")) for i in ids], dtype=np.int64)
        done.ids_file = _ids_file(task.scratch, task.k)
        joins.write_keyed(Path(done.ids_file), keys % task.partitions, rows, numbers, ids)
    for side_number, side in enumerate(task.sides):
        found: dict[int, list[int]] = {}
        if side.content and len(rows):
            mine, listed = joins.join_rows(rows, numbers - task.offset, side.content[task.k])
            for number, ref in zip(mine.tolist(), listed.tolist(), strict=True):
                found.setdefault(number, []).append(ref)
        problems: dict[int, str] = {}
        if side.urls is not None:
            url_refs, problems = side.urls.match_urls(urls)
            for number, refs in enumerate(url_refs):
                if refs:
                    found.setdefault(number, []).extend(refs)
        for number in sorted({*found, *problems}):
            refs = tuple(found.get(number, _NO_REFS))
            done.matches.append(
                (task.offset + number, ids[number], side_number, refs, problems.get(number))
            )
    if texts and any(side.text for side in task.sides):
        positions = np.asarray([n for n, _ in texts], dtype=np.int64)
        text_rows = digest_rows([t for _, t in texts])
        done.text_file = _text_file(task.scratch, task.k)
        text_keys = joins.partition_numbers(text_rows, task.partitions)
        text_ids = [ids[n] for n in positions.tolist()]
        joins.write_keyed(
            Path(done.text_file), text_keys, text_rows, positions + task.offset, text_ids
        )
    return done


@dataclass(frozen=True, slots=True)
class _KeyTask:
    key: int
    files: tuple[str, ...]
    listed: tuple[str, ...]
    """Per side, the listed text bucket of this key (empty: ids only)."""


def _repeated_id(task: _KeyTask) -> tuple[int, str] | None:
    from provenance.lists import joins

    return joins.first_repeated(task.files, task.key)


def _join_texts(task: _KeyTask) -> list[_Match]:
    from provenance.lists import joins

    matches: list[_Match] = []
    for side_number, listed in enumerate(task.listed):
        if not listed:
            continue
        numbers, ids, refs = joins.join_keyed(task.files, task.key, listed)
        for number, entry_id, ref in zip(numbers.tolist(), ids, refs.tolist(), strict=True):
            matches.append((number, entry_id, side_number, (ref,), None))
    return matches


@dataclass(frozen=True, slots=True)
class PartsRead:
    """What the tasks found: the summary of the manifest read, and its counts."""

    summary: ManifestSummary
    tally: Tally
    index: ManifestIndex

    def result(self) -> Tally:
        """The per-source and per-license counts (as :meth:`Tallier.result`)."""
        return self.tally


def _side(index: ListIndex | None, scratch: Path, name: str, partitions: int) -> _Side:
    from provenance.lists import joins

    if index is None:
        return _Side((), (), None)
    files: dict[bool, tuple[str, ...]] = {}
    for text in (False, True):
        listed = index.listed_digests(text=text)
        if listed is None:
            files[text] = ()
            continue
        side = f"{name}-{'text' if text else 'content'}"
        paths = joins.write_partition_buckets(*listed, scratch, side=side, partitions=partitions)
        files[text] = tuple(str(p) for p in paths)
    return _Side(files[False], files[True], index.urls_only() if index.has_url_entries else None)


def _sum_tallies(tallies: Sequence[Tally]) -> Tally:
    by_source: dict[str, tuple[int, int]] = {}
    by_license: dict[str, tuple[int, int]] = {}
    for tally in tallies:
        for target, counts in ((by_source, tally.by_source), (by_license, tally.by_license)):
            for key, (records, size) in counts.items():
                had = target.get(key, (0, 0))
                target[key] = (had[0] + records, had[1] + size)
    return Tally(by_source, dict(sorted(by_license.items())))


def read_parts(
    path: Path,
    committed: ManifestSummary,
    sources: Sequence[Any],
    *,
    executor: Executor,
    audit: Callable[[Matcher], ListAudit] | None = None,
    scratch: Path | None = None,
) -> tuple[PartsRead, ListAudit | None]:
    """Read and check the partitioned manifest at ``path`` one part per task (see the module
    docstring), counting its entries per source and license.

    ``audit`` runs the list audit (:func:`provenance.lists.audit.audit_lists` given the matcher
    to use); it is run only when the index read is the one ``committed`` names, else its
    findings would judge another manifest.

    Returns:
        What was read, and the audit (None without ``audit`` or when the index is not the
        committed one).

    Raises:
        InputError, FormatError, SchemaError, LocalIOError: a missing, malformed or invalid
            index or part (the part named), or an id in two parts.
        DigestMismatchError: a part is not the one the index describes.
        ShardFailedError: a worker died (the part named).
    """
    index, digest = read_index(path)
    what = str(index_path(path))
    work = Path(tempfile.mkdtemp(prefix="provenance-verify-", dir=scratch))
    state: dict[str, Any] = {}
    try:

        def run(sides: tuple[_Side, ...]) -> list[_PartDone]:
            tasks = [
                _PartTask(
                    str(index_path(path).parent),
                    part,
                    offset,
                    k,
                    index.partitions,
                    what,
                    tuple(sources),
                    str(work),
                    sides,
                )  # fmt: skip
                for k, (part, offset) in enumerate(zip(index.parts, index.offsets(), strict=True))
            ]
            names = [part.file for part in index.parts]
            done = list(executor.map(_check_part, tasks, names=names))
            ids = [d.ids_file for d in done if d.ids_file]
            key_tasks = [_KeyTask(key, tuple(ids), ()) for key in range(index.partitions)]
            if index.partitions == 1:
                key_tasks = []
            repeats = executor.map(_repeated_id, key_tasks, names=[what] * len(key_tasks))
            first = min((r for r in repeats if r is not None), default=None)
            if first is not None:
                raise FormatError(f"{what}: id {first[1]!r} appears twice")
            state["done"] = done
            return done

        def match(
            audit: ListAudit, claimed: Sequence[CachedList], newer: Sequence[CachedList]
        ) -> int:
            from provenance.lists.audit import MatchedLists, record_match
            from provenance.lists.match import ListIndex, RecordMatch

            claimed_index = ListIndex([c.list for c in claimed])
            newer_index = ListIndex([c.list for c in newer]) if newer else None
            sides = (
                _side(claimed_index, work, "claimed", index.partitions),
                _side(newer_index, work, "newer", index.partitions),
            )
            done = run(sides)
            matches = [m for d in done for m in d.matches]
            texts = tuple(d.text_file for d in done if d.text_file is not None)
            if texts:
                key_tasks = [
                    _KeyTask(key, texts, tuple(s.text[key] if s.text else "" for s in sides))
                    for key in range(index.partitions)
                ]
                names = [f"{what} (textSha256 key {t.key})" for t in key_tasks]
                for found in executor.map(_join_texts, key_tasks, names=names):
                    matches.extend(found)
            by_entry: dict[int, tuple[str, list[list[int]], list[str | None]]] = {}
            for number, entry_id, side_number, refs, problem in matches:
                _, refs_of, problems = by_entry.setdefault(
                    number, (entry_id, [[], []], [None, None])
                )
                refs_of[side_number].extend(refs)
                problems[side_number] = problems[side_number] or problem
            lists = MatchedLists(claimed, newer, claimed_index, newer_index)
            for number in sorted(by_entry):
                entry_id, refs_of, problems = by_entry[number]
                now, then = (
                    RecordMatch(
                        tuple(the_index.hit(r) for r in sorted(set(refs_of[side]))),
                        problems[side],
                    )
                    for side, the_index in enumerate((claimed_index, newer_index or claimed_index))
                )
                record_match(audit, entry_id, now, then if newer_index else None, lists)
            return index.entries

        audited = None
        if audit is not None and digest == committed.digest:
            audited = audit(match)
        else:
            run((_side(None, work, "", index.partitions),) * 2)
        done = state["done"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    found = [d.found for d in done]
    assert all(f is not None for f in found)
    parts = [f for f in found if f is not None]
    # The summary is what the tasks read (each part equal to its entry in the index).
    entries, data_bytes = sum(p.entries for p in parts), sum(p.data_bytes for p in parts)
    summary = ManifestSummary(digest, entries, data_bytes, root_of_parts(parts))
    tally = _sum_tallies([d.tally for d in done if d.tally is not None])
    return PartsRead(summary, tally, index), audited
