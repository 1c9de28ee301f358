"""Which cached exclusion lists ``filter`` applies, each vouched for by the trust store."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path

from provenance.errors import InputError
from provenance.lists.cache import CachedList
from provenance.trust import TrustStore


def parse_list_selector(text: str) -> tuple[str, int | None]:
    """Parse a list selector, ``NAME`` or ``NAME@VERSION``.

    Raises:
        InputError: an empty name or a version that is not a positive integer.
    """
    name, at_sign, version = text.partition("@")
    if not name:
        raise InputError(f"list selector {text!r}: expected NAME or NAME@VERSION")
    if not at_sign:
        return name, None
    if not version.isdigit() or int(version) < 1 or len(version) > 15:
        raise InputError(f"list selector {text!r}: VERSION must be a positive integer")
    return name, int(version)


@contextlib.contextmanager
def list_cache(value: str | None, *, store: TrustStore, at: dt.datetime) -> Iterator[Path]:
    """Yield the list cache to load lists from: ``value`` as a directory (default: the user's
    cache), or, for an ``http(s)://`` URL, a temporary cache into which that repository is
    fetched and verified against ``store`` (removed when the block ends).

    Raises:
        As :func:`provenance.lists.client.fetch` for a URL.
    """
    from provenance.lists.client import is_repository_url, temporary_cache

    if value is not None and is_repository_url(value):
        with temporary_cache(value, store=store, at=at) as cache:
            yield cache
        return
    if value is None:
        from provenance.lists.cache import default_cache_dir

        yield default_cache_dir()
        return
    yield Path(value)


def select_lists(
    cache_dir: Path,
    selectors: Sequence[str],
    *,
    at: dt.datetime,
    store: TrustStore,
) -> list[CachedList]:
    """Load the lists to apply: the newest cached version of each, or those ``selectors`` name.

    Every list loaded must be vouched for by ``store`` exactly as ``lists fetch`` requires: a
    threshold of the keys it pins for that list signed both the repository's root and its
    targets metadata. A list that fails is an error naming it, never skipped: the cache is not
    trusted, and a repository swapped into it must not decide what is filtered.

    Raises:
        InputError: a selector is malformed or names a list twice.
        NotCachedError: a list (or version) asked for is not cached.
        SignatureError: a list is not signed by the keys ``store`` pins for it.
        ExpiredError, DigestMismatchError, FormatError: as
            :func:`provenance.lists.cache.load_cached_lists`.
    """
    from provenance.lists.cache import load_cached_lists, load_cached_version

    if not selectors:
        return load_cached_lists(cache_dir, at=at, store=store)
    parsed = [parse_list_selector(s) for s in selectors]
    names = [name for name, _ in parsed]
    if len(set(names)) != len(names):
        raise InputError("the selectors name a list twice; apply one version of each list")
    result = []
    for name, version in parsed:
        if version is None:
            result.extend(load_cached_lists(cache_dir, at=at, names=[name], store=store))
        else:
            result.append(load_cached_version(cache_dir, name, version, at=at, store=store))
    return sorted(result, key=lambda c: c.list.name)
