"""``lists diff``: the entries added and removed between two versions of a list.

:func:`diff_entries` is pure; :func:`diff_cached` loads both versions from the cache (each
re-verified, and held against a trust store when one is given) and compares them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance.lists.cache import CachedList
from provenance.lists.model import CATEGORIES, ListEntry
from provenance.trust import TrustStore


def _order(entry: ListEntry) -> tuple[int, str, str, str]:
    return (CATEGORIES.index(entry.category), entry.type, entry.value, entry.note or "")


@dataclass(frozen=True, slots=True)
class ListDiff:
    """What changed from ``old`` to ``new``: entries only in ``new`` (added) or only in ``old``
    (removed), each ordered by category, type and value. An entry whose category or note
    changed is removed in its old form and added in its new one."""

    old: CachedList
    new: CachedList
    added: tuple[ListEntry, ...]
    removed: tuple[ListEntry, ...]

    def counts(self) -> dict[str, dict[str, int]]:
        """Return ``{category: {"added": n, "removed": n}}`` for the categories that changed."""
        result: dict[str, dict[str, int]] = {}
        for key, entries in (("added", self.added), ("removed", self.removed)):
            for entry in entries:
                row = result.setdefault(entry.category, {"added": 0, "removed": 0})
                row[key] += 1
        return {c: result[c] for c in CATEGORIES if c in result}

    def to_dict(self) -> dict[str, Any]:
        """Return the ``--json`` form."""

        def side(item: CachedList) -> dict[str, Any]:
            return {"version": item.list.version, "digest": item.digest}

        return {
            "name": self.new.list.name,
            "from": side(self.old),
            "to": side(self.new),
            "added": [entry.to_dict() for entry in self.added],
            "removed": [entry.to_dict() for entry in self.removed],
            "categories": self.counts(),
        }


def diff_entries(
    old: Iterable[ListEntry], new: Iterable[ListEntry]
) -> tuple[tuple[ListEntry, ...], tuple[ListEntry, ...]]:
    """Return ``(added, removed)``: the entries only in ``new``, and only in ``old``."""
    before, after = set(old), set(new)
    return tuple(sorted(after - before, key=_order)), tuple(sorted(before - after, key=_order))


def diff_cached(
    cache_dir: Path,
    name: str,
    old_version: int,
    new_version: int,
    *,
    at: dt.datetime,
    store: TrustStore | None = None,
) -> ListDiff:
    """Compare two cached versions of list ``name``.

    Both versions are re-verified from the cached metadata (expired metadata is accepted: the
    versions were verified when fetched, and a published version never changes). With
    ``store``, each must be signed by the keys it pins for the list.

    Raises:
        InputError: ``name`` is not a valid list name, or a version is below 1.
        NotCachedError: the list or a version is not cached.
        SignatureError, RollbackError, DigestMismatchError, FormatError: as
            :func:`provenance.lists.cache.load_cached_version`.
    """
    from provenance.errors import InputError
    from provenance.lists.cache import load_cached_version

    for version in (old_version, new_version):
        if version < 1:
            raise InputError(f"list {name!r}: version {version} is not a positive integer")
    old, new = (
        load_cached_version(cache_dir, name, v, at=at, allow_expired=True, store=store)
        for v in (old_version, new_version)
    )
    added, removed = diff_entries(old.list.entries, new.list.entries)
    return ListDiff(old=old, new=new, added=added, removed=removed)


__all__ = ["ListDiff", "diff_cached", "diff_entries"]
