"""Near-duplicate and contained matches across every registered card with fingerprints.

A client sends a work's fingerprints (its winnowed text fingerprints, its image pHash); each
card whose fingerprint sidecar was stored (the card commits to its digest) is searched with
:func:`provenance.lookup.fingerprint_matches`, the very rules of ``provenance lookup``, so the
statuses are the same.

The sidecar and the manifest it indexes are read from the database into a cache directory
the first time a card is searched (their SHA-256 checked against what the card was
registered with), then kept open.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select

from provenance._files import atomic_writer
from provenance.errors import LocalIOError
from provenance.fingerprints import ContentPrints
from provenance.fpindex import FingerprintIndex
from provenance.fpsidecar import open_committed
from provenance.lookup import Thresholds, fingerprint_matches
from provenance.registry import db
from provenance.registry.storage import CardRecord, Storage, card_by_id


class FingerprintSearch:
    """Searches the stored sidecars; files are cached under ``cache``."""

    def __init__(self, storage: Storage, cache: Path, *, temporary: bool = False) -> None:
        """``temporary``: the cache directory is removed by :meth:`close`."""
        self.storage = storage
        self.cache = cache
        self.temporary = temporary
        self._indexes: dict[str, tuple[CardRecord, FingerprintIndex]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the indexes held open (and remove a temporary cache)."""
        with self._lock:
            for _, index in self._indexes.values():
                index.close()
            self._indexes = {}
            if self.temporary:
                shutil.rmtree(self.cache, ignore_errors=True)

    def _cards(self) -> list[str]:
        with self.storage.database.read() as conn:
            rows = conn.execute(
                select(db.card.c.id)
                .where(db.card.c.fingerprints_sha256.is_not(None))
                .order_by(db.card.c.no)
            ).all()
        return [bytes(row[0]).hex() for row in rows]

    def _materialize(self, sha256: str, target: Path) -> None:
        if target.exists():
            return
        chunks = self.storage.blob(sha256)
        if chunks is None:
            raise LocalIOError(f"the registry's database lacks the bytes of {sha256}")
        digest = hashlib.sha256()
        with atomic_writer(target) as handle:
            for chunk in chunks:
                digest.update(chunk)
                handle.write(chunk)
            if digest.hexdigest() != sha256:
                raise LocalIOError(f"the registry's stored bytes of {sha256} do not hash to it")

    def _open(self, card_id: str) -> tuple[CardRecord, FingerprintIndex]:
        found = self._indexes.get(card_id)
        if found is not None:
            return found
        with self._lock:
            found = self._indexes.get(card_id)
            if found is not None:
                return found
            with self.storage.database.read() as conn:
                record = card_by_id(conn, card_id)
            assert record is not None and record.fingerprints_sha256 is not None
            directory = self.cache / card_id
            directory.mkdir(parents=True, exist_ok=True)
            manifest = directory / "manifest.jsonl"
            sidecar = directory / "manifest.jsonl.fp"
            self._materialize(record.manifest_sha256, manifest)
            self._materialize(record.fingerprints_sha256, sidecar)
            index = FingerprintIndex.from_sidecar(
                manifest, open_committed(sidecar, record.fingerprints_sha256)
            )
            self._indexes[card_id] = (record, index)
            return record, index

    def indexes(self) -> Iterator[tuple[CardRecord, FingerprintIndex]]:
        """Every registered card with fingerprints, opened (oldest first)."""
        for card_id in self._cards():
            yield self._open(card_id)

    def search(
        self, works: Sequence[ContentPrints], thresholds: Thresholds | None = None
    ) -> list[list[dict[str, Any]]]:
        """Return, for each work, its near-duplicate and contained entries in every card
        (strongest first: status, then score)."""
        results: list[list[dict[str, Any]]] = [[] for _ in works]
        if not any(len(work.text) or work.image is not None for work in works):
            return results
        for record, index in self.indexes():
            for position, prints in enumerate(works):
                for match in fingerprint_matches(prints, index, thresholds):
                    results[position].append(
                        {**record.match(match.id), "status": match.status, "score": match.score}
                    )
        rank = {"near-duplicate": 0, "contained": 1}
        for matches in results:
            matches.sort(key=lambda m: (rank[m["status"]], -m["score"], m["card"], m["entry"]))
        return results


def open_search(storage: Storage, base: Path | None) -> FingerprintSearch:
    """A search whose sidecars are cached in ``base``, else in a new temporary directory."""
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
        return FingerprintSearch(storage, base)
    return FingerprintSearch(
        storage, Path(tempfile.mkdtemp(prefix="provenance-registry-")), temporary=True
    )


__all__ = ["FingerprintSearch", "open_search"]
