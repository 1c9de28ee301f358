"""Test support for filter and verify --lists: an association that publishes lists into a real
TUF repository, served over HTTP on 127.0.0.1 while a developer fetches them into a cache."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from pathlib import Path

from provenance.keys import PrivateKey
from provenance.lists._serve import serving as served
from provenance.lists.client import fetch
from provenance.lists.model import ListEntry
from provenance.lists.repository import publish
from provenance.trust import TrustStore

T0 = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
NOW = "2026-07-01T06:00:00Z"
"""A time at which lists published and fetched at T0 are fresh."""


def sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def entry(kind: str, value: str, category: str = "piracy") -> ListEntry:
    return ListEntry(type=kind, value=value, category=category)  # type: ignore[arg-type]


class Association:
    """A rights-holder association with one key, a repository, and a developer's cache."""

    def __init__(self, root: Path, names: Sequence[str] = ("piracy", "optout")) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.key = PrivateKey.generate()
        self.repo = root / "repo"
        self.cache = root / "cache"
        self.trust_path = root / "trust.json"
        store = TrustStore()
        for name in names:
            store = store.with_key(
                self.key.public, name="Example Association", role="list-publisher", list_name=name
            )
        self.store = store
        self.trust_path.write_bytes(store.to_json())

    def publish(self, name: str, entries: Sequence[ListEntry], at: dt.datetime = T0) -> str:
        """Publish the next version of ``name``; return its digest."""
        result = publish(
            self.repo, entries, name=name, keys=[self.key], at=at, publisher="Example Association"
        )
        return result.digest

    def fetch(self, at: dt.datetime = T0, cache: Path | None = None) -> Path:
        """Fetch every list into the developer's cache (or ``cache``) over HTTP; return it."""
        target = cache if cache is not None else self.cache
        with served(self.repo) as url:
            fetch(url, store=self.store, cache_dir=target, at=at)
        return target
