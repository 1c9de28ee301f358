"""Clients of a registry: ``registry push`` and ``registry lookup`` (no server code here).

**Push** (:func:`push`, from :mod:`provenance.registry.pushing`): the signed card (as read
once), the manifest and the fingerprint sidecar are streamed as ``multipart/form-data`` (files
read from disk and hashed as they are sent, with the total length announced so that an oversized
push is refused at once). The registry answers with a receipt, which is believed only once
verified: its checkpoint signed by a log key the trust store holds as ``transparency-log``, its
inclusion proof, and its entry naming this card (the SHA-256 of its statement) and the manifest
sent (and, for a first registration, this envelope).

**Lookup** (:func:`lookup`): for each work its SHA-256, its ``norm-text-v1`` digest when it is
text, and its fingerprints (winnowed text fingerprints, image pHash) are sent in batches
(``POST /v1/lookup``); each work gets the statuses of ``provenance lookup`` (exact, normalized,
near-duplicate, contained, absent) across every registered card. Every card named in an answer
is checked against the log: its receipt must verify with a trusted log key and its entry must
carry the card's name, version and publishers the registry reported. Then the matches are
computed again from that card's own bytes (:mod:`provenance.registry._matchcheck`: its
envelope, manifest and fingerprint sidecar as served, each checked against what the log entry
or the statement binds): what is reported for a card is what the client computed, and a match
the answer claims that the card's bytes do not hold is refused. What cannot be verified is
absence: a registry could omit a card, so ``absent`` means "no match in this registry's
answer", never a proof (proofs come from ``provenance lookup`` with the card and manifest).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance._files import read_bytes
from provenance.errors import FetchError, VerificationError
from provenance.fingerprints import ContentPrints
from provenance.logclient import log_verifiers
from provenance.lookup import STATUSES, Status
from provenance.registry._answers import (
    MAX_ANSWER_BYTES,
    json_object,
    refused,
    verified_entry,
)
from provenance.registry._matchcheck import matches_in_card
from provenance.registry.pushing import MultipartBody, PushReport, push
from provenance.signednote import NoteVerifier
from provenance.tlog import LogEntry
from provenance.trust import TrustStore

if TYPE_CHECKING:
    from provenance._http import Fetcher, FetchOptions

MAX_DIGESTS = 1000
MAX_WORKS_PER_LOOKUP = 100
MAX_TEXT_PRINTS = 200_000
PRINT_BATCH = 64
"""Works fingerprinted at a time by :func:`lookup` (their contents are then released)."""
_RANK = {status: rank for rank, status in enumerate(STATUSES)}
_RETRIES = 5
_SECONDS = re.compile(r"[0-9]{1,6}\Z")  # a Retry-After in seconds (ASCII digits only)
_CARD_ID = re.compile(r"[0-9a-f]{64}\Z")


@dataclass(frozen=True, slots=True)
class RegistryMatch:
    """A registered entry matching a work: in which card, how."""

    card: str
    name: str
    version: str
    publisher: tuple[str, ...]
    entry: str
    status: Status
    score: float
    log_index: int

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "card": self.card,
            "name": self.name,
            "version": self.version,
            "publisher": list(self.publisher),
            "entry": self.entry,
            "status": self.status,
            "score": self.score,
            "logIndex": self.log_index,
        }


@dataclass(frozen=True, slots=True)
class RegistryResult:
    """One work's answer across the registry: its strongest status and every match."""

    work: str
    sha256: str
    text_sha256: str | None
    status: Status
    matches: tuple[RegistryMatch, ...]
    fingerprints_sent: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "work": self.work,
            "sha256": self.sha256,
            "textSha256": self.text_sha256,
            "status": self.status,
            "fingerprintsSent": self.fingerprints_sent,
            "matches": [match.to_dict() for match in self.matches],
        }


@dataclass
class _Work:
    label: str
    sha256: str
    text_sha256: str | None
    text: list[str]
    image: str | None
    prints: ContentPrints
    fingerprints_sent: bool = True
    found: dict[tuple[str, str], tuple[Status, float]] = field(default_factory=dict)

    def offer(self, card: str, entry: str, status: Status, score: float) -> None:
        current = self.found.get((card, entry))
        if current is None or (_RANK[status], -score) < (_RANK[current[0]], -current[1]):
            self.found[(card, entry)] = (status, score)


def _batches(works: list[_Work]) -> Iterator[list[_Work]]:
    batch: list[_Work] = []
    digests = prints = 0
    for work in works:
        size = 1 + (work.text_sha256 is not None)
        if batch and (
            len(batch) == MAX_WORKS_PER_LOOKUP
            or digests + size > MAX_DIGESTS
            or prints + len(work.text) > MAX_TEXT_PRINTS
        ):
            yield batch
            batch, digests, prints = [], 0, 0
        batch.append(work)
        digests += size
        prints += len(work.text)
    if batch:
        yield batch


def _post_lookup(fetcher: Fetcher, base: str, request: dict[str, Any]) -> dict[str, Any]:
    data = json.dumps(request).encode("ascii")
    for attempt in range(_RETRIES + 1):
        answer = fetcher.post(
            f"{base}/v1/lookup",
            data=data,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            max_bytes=MAX_ANSWER_BYTES,
        )
        if answer.status == 429 and attempt < _RETRIES:
            wait = answer.headers.get("Retry-After", "1").strip()
            time.sleep(min(int(wait) if _SECONDS.match(wait) else 1, 60))
            continue
        if answer.status != 200:
            raise refused(answer, f"lookup at {base}", verdicts=False)
        return json_object(answer.body, f"lookup at {base}")
    raise FetchError(f"lookup at {base}: still rate limited after {_RETRIES} retries")


def _apply(batch: list[_Work], document: dict[str, Any], base: str) -> dict[str, dict[str, Any]]:
    """Record the matches of one answer; return the cards named, by id (as reported)."""
    cards: dict[str, dict[str, Any]] = {}
    wanted = [(w, "sha256", w.sha256) for w in batch]
    wanted += [(w, "textSha256", w.text_sha256) for w in batch if w.text_sha256 is not None]
    results = document.get("results")
    prints = document.get("fingerprints")
    sent = [w for w in batch if w.text or w.image]
    if (
        not isinstance(results, list)
        or len(results) != len(wanted)
        or not isinstance(prints, list)
        or len(prints) != len(sent)
    ):
        raise FetchError(f"lookup at {base}: the answer does not match the question")
    try:
        for (work, kind, digest), result in zip(wanted, results, strict=True):
            if result["digest"] != digest or result["kind"] != kind:
                raise FetchError(f"lookup at {base}: an answer for another digest")
            status: Status = "exact" if kind == "sha256" else "normalized"
            for match in result["matches"]:
                _check_match(match, base)
                cards[match["card"]] = match
                work.offer(match["card"], match["entry"], status, 1.0)
        for work, result in zip(sent, prints, strict=True):
            for match in result["matches"]:
                _check_match(match, base)
                if match["status"] not in ("near-duplicate", "contained"):
                    raise FetchError(f"lookup at {base}: unknown status {match['status']!r}")
                score = match["score"]
                if not (
                    isinstance(score, int | float)
                    and not isinstance(score, bool)
                    and math.isfinite(score)
                    and 0 <= score <= 1
                ):
                    raise FetchError(f"lookup at {base}: a score that is not in 0..1: {score!r}")
                cards[match["card"]] = match
                work.offer(match["card"], match["entry"], match["status"], float(score))
    except (KeyError, TypeError) as exc:
        raise FetchError(f"lookup at {base}: a malformed answer ({exc})") from None
    return cards


def _check_match(match: Any, base: str) -> None:
    """Refuse a match that does not name a card by its id (64 hex) and an entry (a string).

    Raises:
        FetchError: it does not.
    """
    if not isinstance(match, dict):
        raise FetchError(f"lookup at {base}: a match that is not an object")
    card, entry = match.get("card"), match.get("entry")
    if not (isinstance(card, str) and _CARD_ID.match(card) and isinstance(entry, str)):
        raise FetchError(f"lookup at {base}: a match without a card id and an entry id")


def _check_cards(
    fetcher: Fetcher,
    base: str,
    reported: dict[str, dict[str, Any]],
    verifiers: Sequence[NoteVerifier],
) -> dict[str, tuple[int, LogEntry]]:
    """Verify each card's registration against the log; return its log index and entry, by
    card id."""
    logged: dict[str, tuple[int, LogEntry]] = {}
    for card_id, match in sorted(reported.items()):
        data = fetcher.get(f"{base}/v1/cards/{card_id}", max_bytes=MAX_ANSWER_BYTES)
        try:
            document = json_object(data, f"card {card_id} at {base}")
            receipt = document["receipt"].encode("utf-8")
        except (FetchError, KeyError, TypeError, AttributeError):
            raise VerificationError(
                f"{base}: card {card_id} named in a lookup answer has no readable receipt"
            ) from None
        index, _, entry = verified_entry(receipt, verifiers, what=f"the receipt of card {card_id}")
        if (entry.card, entry.name, entry.version, list(entry.publisher)) != (
            card_id,
            match.get("name"),
            match.get("version"),
            sorted(match.get("publisher") or []),
        ):
            raise VerificationError(
                f"{base}: the lookup answer describes card {card_id} otherwise than its log entry"
                f" ({entry.name} {entry.version} by {', '.join(entry.publisher)})"
            )
        logged[card_id] = (index, entry)
    return logged


def _recompute(
    fetcher: Fetcher,
    base: str,
    items: list[_Work],
    logged: dict[str, tuple[int, LogEntry]],
) -> None:
    """Replace each work's matches in each card named by what that card's own bytes give
    (:func:`~provenance.registry._matchcheck.matches_in_card`).

    Raises:
        VerificationError: the answer claimed a match the card's bytes do not hold, or a served
            file is not the one its log entry binds.
    """
    for card_id, (_, entry) in sorted(logged.items()):
        claimed = [work for work in items if any(card == card_id for card, _ in work.found)]
        computed = matches_in_card(
            fetcher,
            base,
            entry,
            [(work.label, work.sha256, work.prints) for work in claimed],
        )
        for work, matches in zip(claimed, computed, strict=True):
            held = {match.id for match in matches}
            for card, entry_id in list(work.found):
                if card != card_id:
                    continue
                status = work.found.pop((card, entry_id))[0]
                if entry_id not in held:
                    raise VerificationError(
                        f"{base}: the lookup answer gives {work.label} as {status} of entry"
                        f" {entry_id!r} in card {card_id} ({entry.name} {entry.version}), which"
                        " that card's own manifest and fingerprints do not match"
                    )
            for match in matches:
                work.offer(card_id, match.id, match.status, match.score)


def lookup(
    url: str,
    works: Iterable[tuple[str, bytes]],
    store: TrustStore,
    *,
    at: dt.datetime,
    options: FetchOptions | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[RegistryResult]:
    """Look up ``works`` (label, content) in the registry at ``url``.

    The works are read from ``works`` and fingerprinted :data:`PRINT_BATCH` at a time; only
    their digests and fingerprints are kept, so contents may be produced lazily.

    Returns:
        One result per work, in order, each card in it verified against the log.

    Raises:
        InputError: a bad URL, or no transparency-log key in ``store``.
        VerificationError: a card named in the answer does not verify against the log.
        FetchError: the registry could not be reached or answered malformed.
    """
    from provenance._http import check_base_url

    base = check_base_url(url, what="a registry")
    verifiers = log_verifiers(store, at=at)
    items: list[_Work] = []
    chunk: list[tuple[str, bytes]] = []
    for work in works:
        chunk.append(work)
        if len(chunk) == PRINT_BATCH:
            items += _prepare(chunk, warn)
            chunk = []
    items += _prepare(chunk, warn)
    return _lookup_prepared(base, items, verifiers, options)


def _prepare(chunk: Sequence[tuple[str, bytes]], warn: Callable[[str], None] | None) -> list[_Work]:
    """The digests and fingerprints to send for each work of ``chunk``."""
    from provenance.fingerprints import content_prints

    if not chunk:
        return []
    prints = content_prints([content for _, content in chunk])
    items: list[_Work] = []
    for (label, content), work_prints in zip(chunk, prints, strict=True):
        text = [f"{int(value):016x}" for value in work_prints.text]
        sent = True
        if len(text) > MAX_TEXT_PRINTS:
            if warn is not None:
                warn(
                    f"{label}: {len(text)} text fingerprints, more than a lookup may send"
                    f" ({MAX_TEXT_PRINTS}): only exact and normalized copies are looked up"
                )
            text, sent = [], False
        image = None if work_prints.image is None else f"{work_prints.image:016x}"
        digest = hashlib.sha256(content).hexdigest()
        items.append(_Work(label, digest, work_prints.text_sha256, text, image, work_prints, sent))
    return items


def _lookup_prepared(
    base: str,
    items: list[_Work],
    verifiers: Sequence[NoteVerifier],
    options: FetchOptions | None,
) -> list[RegistryResult]:
    from provenance._http import Fetcher

    reported: dict[str, dict[str, Any]] = {}
    with Fetcher(options) as fetcher:
        for batch in _batches(items):
            request = {
                "sha256": [w.sha256 for w in batch],
                "textSha256": [w.text_sha256 for w in batch if w.text_sha256 is not None],
                "fingerprints": [
                    {"text": w.text, "image": w.image} for w in batch if w.text or w.image
                ],
            }
            reported.update(_apply(batch, _post_lookup(fetcher, base, request), base))
        logged = _check_cards(fetcher, base, reported, verifiers)
        _recompute(fetcher, base, items, logged)
    results = []
    for work in items:
        matches = sorted(
            (
                RegistryMatch(
                    card,
                    logged[card][1].name,
                    logged[card][1].version,
                    logged[card][1].publisher,
                    entry,
                    status,
                    score,
                    logged[card][0],
                )
                for (card, entry), (status, score) in work.found.items()
            ),
            key=lambda m: (_RANK[m.status], -m.score, m.name, m.version, m.entry),
        )
        status: Status = matches[0].status if matches else "absent"
        results.append(
            RegistryResult(
                work.label,
                work.sha256,
                work.text_sha256,
                status,
                tuple(matches),
                work.fingerprints_sent,
            )
        )
    return results


def lookup_files(
    url: str,
    works: Sequence[Path],
    store: TrustStore,
    *,
    at: dt.datetime,
    options: FetchOptions | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[RegistryResult]:
    """Look up the files ``works`` (or folders of works, see
    :func:`provenance.creators.collect_works`) in the registry at ``url`` (see :func:`lookup`).

    Raises:
        InputError: a work is missing, unreadable or larger than a lookup reads, and as
            :func:`lookup`.
        VerificationError, FetchError: as :func:`lookup`.
    """
    from provenance.creators import collect_works
    from provenance.lookup import MAX_WORK_BYTES

    contents = (
        (label, read_bytes(path, limit=MAX_WORK_BYTES, what=label))
        for label, path in collect_works(works)
    )
    return lookup(url, contents, store, at=at, options=options, warn=warn)


__all__ = [
    "MultipartBody",
    "PushReport",
    "RegistryMatch",
    "RegistryResult",
    "lookup",
    "lookup_files",
    "push",
    "verified_entry",
]
