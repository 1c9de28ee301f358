"""Creators' lookups: is a work in a dataset, exactly or as an edited or embedded copy?

Each work gets one status, the strongest that any entry supports:

- ``exact``: an entry has the same bytes (``sha256``);
- ``normalized``: an entry has the same ``norm-text-v1`` text (``textSha256``): re-encoded,
  re-wrapped, other line endings or case;
- ``near-duplicate``: an entry is an edited copy (text: most of the work is in the entry and
  most of the entry is the work, by winnowed fingerprints; image: pHash within a few bits);
- ``contained``: a substantial part of the work is inside a larger entry (a chapter in a
  scraped page): at least ``contained_prints`` shared fingerprints, or a majority of a short
  work's fingerprints;
- ``absent``: none of these.

Every matching entry is listed with its own status and a score in [0, 1]: 1 for exact and
normalized matches, the resemblance ``|W ∩ E| / |W ∪ E|`` of the fingerprint sets for a
near-duplicate text, the share of the work found ``|W ∩ E| / |W|`` for a contained one, and
``1 - distance / 64`` for a near-duplicate image.

The thresholds (``Thresholds``) come from measurements (``benchmarks/bench_lookup.py
--distributions``): distinct stories by one author share at most 1 fingerprint, edited copies
with 40 % of the sentences dropped or changed keep at least 28 % of the work's.

Against a signed card (:func:`open_for_lookup` with a card), the manifest is read once and
checked against the card, and every line read afterwards is checked against the card's Merkle
leaves; a fingerprint sidecar is used only if the card commits to its digest. So no answer
rests on a file that no trusted key signed.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np

from provenance import fpindex
from provenance.errors import InputError
from provenance.fingerprints import ContentPrints, content_prints
from provenance.fpindex import FingerprintIndex
from provenance.fpsidecar import open_sidecar
from provenance.manifest import ManifestEntry

if TYPE_CHECKING:
    from provenance.partlookup import PartitionedLookup
    from provenance.proofs import CardRef, ProofBuilder, ProofRequest

    # What a lookup searches: a manifest's fingerprint index, or a partitioned manifest read
    # part by part (provenance.partlookup).
    LookupIndex: TypeAlias = FingerprintIndex | PartitionedLookup

__all__ = [
    "MAX_WORK_BYTES",
    "STATUSES",
    "Match",
    "Status",
    "Thresholds",
    "WorkResult",
    "fingerprint_matches",
    "lookup_works",
    "lookup_prepared",
    "open_for_lookup",
    "prepare_works",
    "proof_requests",
]

MAX_WORK_BYTES = 256 * 1024 * 1024
"""The largest work looked up (or checked against a proof): works are read whole."""

Status = Literal["exact", "normalized", "near-duplicate", "contained", "absent"]
STATUSES: tuple[Status, ...] = ("exact", "normalized", "near-duplicate", "contained", "absent")
_RANK = {status: rank for rank, status in enumerate(STATUSES)}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When shared fingerprints make a near-duplicate or a containment (see module doc)."""

    near_duplicate_work: float = 0.25
    """Share of the work's fingerprints the entry must hold."""
    near_duplicate_entry: float = 0.5
    """Share of the entry's fingerprints that must be the work's."""
    contained_prints: int = 10
    """Shared fingerprints that make a substantial part (about 150-300 words of running text)."""
    contained_share: float = 0.5
    """Or this share of a short work's fingerprints..."""
    min_shared: int = 3
    """...but never fewer than this many shared fingerprints."""
    image_distance: int = 10
    """Largest pHash Hamming distance (of 64 bits) for a near-duplicate image."""
    max_postings: int = 100_000
    """Fingerprints held by more entries than this (boilerplate) are not used."""


@dataclass(frozen=True, slots=True)
class Match:
    """One entry that matches a work."""

    id: str
    score: float
    status: Status
    entry: int = -1
    """The entry's manifest line (from 0): its leaf in the card's Merkle tree."""

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form ``{"id", "score", "status"}``."""
        return {"id": self.id, "score": self.score, "status": self.status}


@dataclass(frozen=True, slots=True)
class WorkResult:
    """The answer for one work: its digest, status and matching entries (strongest first)."""

    work: str
    sha256: str
    status: Status
    matches: tuple[Match, ...]
    text_sha256: str | None = None
    """The work's norm-text-v1 digest, when it is text."""

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form ``{"work", "sha256", "status", "matches": [...]}``."""
        return {
            "work": self.work,
            "sha256": self.sha256,
            "status": self.status,
            "matches": [m.to_dict() for m in self.matches],
        }


def _round(score: float) -> float:
    return math.floor(score * 10_000) / 10_000


def _text_matches(
    prints: ContentPrints, index: LookupIndex, thresholds: Thresholds
) -> list[tuple[int, Status, float]]:
    work_count = len(prints.text)
    if not work_count:
        return []
    entries, shared, entry_counts = index.text_candidates(
        prints.text, max_postings=thresholds.max_postings
    )
    contained_needed = min(
        thresholds.contained_prints,
        max(thresholds.min_shared, math.ceil(thresholds.contained_share * work_count)),
    )
    found: list[tuple[int, Status, float]] = []
    for entry, common, entry_count in zip(
        entries.tolist(), shared.tolist(), entry_counts.tolist(), strict=True
    ):
        if common < thresholds.min_shared:
            continue
        share_of_work = common / work_count
        share_of_entry = common / entry_count if entry_count else 0.0
        if (
            share_of_work >= thresholds.near_duplicate_work
            and share_of_entry >= thresholds.near_duplicate_entry
        ):
            found.append((entry, "near-duplicate", common / (work_count + entry_count - common)))
        elif common >= contained_needed:
            found.append((entry, "contained", share_of_work))
    return found


def _image_matches(
    prints: ContentPrints, index: LookupIndex, thresholds: Thresholds
) -> list[tuple[int, Status, float]]:
    if prints.image is None:
        return []
    entries, distances = index.image_candidates(
        prints.image, max_distance=thresholds.image_distance
    )
    return [
        (entry, "near-duplicate", 1 - distance / 64)
        for entry, distance in zip(entries.tolist(), distances.tolist(), strict=True)
    ]


def fingerprint_matches(
    prints: ContentPrints, index: LookupIndex, thresholds: Thresholds | None = None
) -> list[Match]:
    """Return the near-duplicate and contained entries of ``index`` for a work's fingerprints.

    This is what :func:`lookup_works` finds beyond exact and normalized matches (an entry may
    be listed more than once, by text and by image); the registry uses it with fingerprints a
    client computed.

    Raises:
        FormatError: the index turns out corrupt, or the manifest changed since it was opened.
    """
    limits = thresholds or Thresholds()
    return [
        Match(index.entry(number).id, _round(score), status, number)
        for number, status, score in _text_matches(prints, index, limits)
        + _image_matches(prints, index, limits)
    ]


def _lookup_one(
    label: str,
    digest: str,
    prints: ContentPrints,
    index: LookupIndex,
    thresholds: Thresholds,
) -> WorkResult:
    best: dict[str, Match] = {}

    def offer(match: Match) -> None:
        current = best.get(match.id)
        if current is None or (_RANK[match.status], -match.score) < (
            _RANK[current.status],
            -current.score,
        ):
            best[match.id] = match

    for number, entry in index.exact_numbered(digest):
        offer(Match(entry.id, 1.0, "exact", number))
    if prints.text_sha256 is not None:
        for number, entry in index.normalized_numbered(prints.text_sha256):
            offer(Match(entry.id, 1.0, "normalized", number))
    for match in fingerprint_matches(prints, index, thresholds):
        offer(match)
    matches = sorted(best.values(), key=lambda m: (_RANK[m.status], -m.score, m.id))
    status: Status = matches[0].status if matches else "absent"
    return WorkResult(label, digest, status, tuple(matches), prints.text_sha256)


def lookup_works(
    works: Sequence[tuple[str, bytes]],
    index: LookupIndex,
    *,
    thresholds: Thresholds | None = None,
    images: bool = True,
) -> list[WorkResult]:
    """Look up every ``(label, content)`` in ``index``, in the order given.

    Returns:
        One :class:`WorkResult` per work, in order.

    Raises:
        FormatError: the index turns out corrupt, or the manifest changed since it was opened.
        LocalIOError: the manifest cannot be read.
    """
    return lookup_prepared(prepare_works(works, images=images), index, thresholds=thresholds)


def prepare_works(
    works: Sequence[tuple[str, bytes]], *, images: bool = True
) -> list[tuple[str, str, ContentPrints]]:
    """What a lookup needs of each ``(label, content)``: ``(label, sha256, prints)``.

    The costly part of a lookup (fingerprinting), which an executor may run elsewhere.
    """
    prints = content_prints([content for _, content in works], images=images)
    return [
        (label, hashlib.sha256(content).hexdigest(), work_prints)
        for (label, content), work_prints in zip(works, prints, strict=True)
    ]


def lookup_prepared(
    works: Sequence[tuple[str, str, ContentPrints]],
    index: LookupIndex,
    *,
    thresholds: Thresholds | None = None,
) -> list[WorkResult]:
    """:func:`lookup_works` on works already prepared (:func:`prepare_works`), in order.

    Raises:
        As :func:`lookup_works`.
    """
    limits = thresholds or Thresholds()
    return [
        _lookup_one(label, digest, work_prints, index, limits)
        for label, digest, work_prints in works
    ]


def shared_fingerprints(a: ContentPrints, b: ContentPrints) -> int:
    """Return how many text fingerprints two contents share (for measurements)."""
    return int(len(np.intersect1d(a.text, b.text, assume_unique=True)))


# ----------------------------------------------------------------------------------------------
# I/O shell: opening a manifest for lookups, alone or against a signed card


@contextlib.contextmanager
def open_for_lookup(
    manifest_path: Path,
    *,
    sidecar: Path | None = None,
    card: CardRef | None = None,
    warn: Callable[[str], None],
) -> Iterator[tuple[LookupIndex, ProofBuilder | PartitionedLookup | None]]:
    """Open a manifest (and its fingerprint sidecar) for :func:`lookup_works`.

    The sidecar (``sidecar``, or the one beside the manifest) is used as
    :func:`provenance.fpsidecar.open_sidecar` decides: without ``card`` if present; with a
    verified ``card`` only if the card commits to its digest, else the lookup works from the
    manifest alone (exact and normalized matches). With ``card`` the manifest is read once
    (:func:`provenance.proofs.read_against_card`), checked against the card (digest, size,
    Merkle root), and every line read later is checked against the card's leaves. Each
    fallback is passed to ``warn`` as one sentence.

    Yields:
        The index, and with ``card`` a :class:`~provenance.proofs.ProofBuilder` for proofs.

    Raises:
        InputError, FormatError, LocalIOError: a file is missing, not a regular file,
            unreadable or corrupt.
        DigestMismatchError: the manifest is not the card's, or the sidecar is not the one the
            card commits to.
    """
    from provenance.partitions import is_partitioned

    if is_partitioned(manifest_path) and sidecar is not None:
        raise InputError(
            f"{sidecar}: a partitioned manifest's fingerprint sidecars are its parts' (listed in"
            f" {manifest_path}'s index.json); no other can be named"
        )
    if is_partitioned(manifest_path):
        from provenance.partlookup import open_partitioned

        # Only the parts a lookup needs are read, and their sidecar parts as the card allows
        # (None: a part holds textSha256s and there are no sidecars to find them by).
        if (partitioned := open_partitioned(manifest_path, card)) is not None:
            if partitioned.note is not None:
                warn(partitioned.note)
            try:
                yield partitioned, partitioned if card is not None else None
            finally:
                partitioned.close()
            return
    if card is None:
        chosen = open_sidecar(manifest_path, None, sidecar=sidecar)
        with FingerprintIndex.from_sidecar(manifest_path, chosen) as index:
            if chosen.note is not None:
                warn(chosen.note)
            yield index, None
        return
    from provenance.proofs import ProofBuilder, read_against_card

    def scan(entries: Iterator[ManifestEntry]) -> fpindex.ManifestScan:
        # The digest is the card's: read_against_card releases the scan only if it is.
        digest = card.commitment.manifest_sha256
        return fpindex.scan_entries(entries, lambda: digest, leaves=True, what=manifest_path)

    scanned = read_against_card(manifest_path, card, scan)
    builder = ProofBuilder.from_scan(manifest_path, scanned, card)
    chosen = open_sidecar(manifest_path, card.card, sidecar=sidecar)
    if chosen.note is not None:
        warn(chosen.note)
    index = FingerprintIndex.from_sidecar(
        manifest_path, chosen, scan=scanned, line_check=builder.check_line
    )
    with index:
        yield index, builder


def proof_requests(results: Sequence[WorkResult]) -> list[ProofRequest]:
    """Return what to prove for each result: the presence of its best matching entry,
    labelled with its status, or, for an ``absent`` work only, its absence."""
    from provenance.proofs import ProofRequest, WorkDigests

    requests = []
    for result in results:
        work = WorkDigests(result.sha256, result.text_sha256)
        if result.status == "absent":
            requests.append(ProofRequest("absent", work))
            continue
        best = result.matches[0]
        requests.append(ProofRequest(result.status, work, best.entry, best.id))
    return requests
