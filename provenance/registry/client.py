"""Clients of a registry: ``registry push`` and ``registry lookup`` (no server code here).

**Push** (:func:`push`): the signed card, the manifest and the fingerprint sidecar are streamed
as ``multipart/form-data`` (read from disk as they are sent, with their total length announced
so that an oversized push is refused at once). The registry answers with a receipt, which is
believed only once verified: its checkpoint signed by a log key the trust store holds as
``transparency-log``, its inclusion proof, and its entry naming this card (the SHA-256 of its
statement) and this manifest (and, for a first registration, this envelope).

**Lookup** (:func:`lookup`): for each work its SHA-256, its ``norm-text-v1`` digest when it is
text, and its fingerprints (winnowed text fingerprints, image pHash) are sent in batches
(``POST /v1/lookup``); each work gets the statuses of ``provenance lookup`` (exact, normalized,
near-duplicate, contained, absent) across every registered card. Every card named in an answer
is checked against the log: its receipt must verify with a trusted log key and its entry must
carry the card's name, version and publishers the registry reported. What cannot be verified
is absence: a registry could omit a match, so ``absent`` means "no match in this registry's
answer", never a proof (proofs come from ``provenance lookup`` with the card and manifest).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from provenance._files import atomic_write, read_bytes
from provenance.envelope import MAX_ENVELOPE_BYTES, Envelope
from provenance.errors import (
    FetchError,
    FormatError,
    InputError,
    VerificationError,
)
from provenance.logclient import log_verifiers
from provenance.lookup import STATUSES, Status
from provenance.signednote import Checkpoint, NoteVerifier
from provenance.tlog import LogEntry, Receipt, verify_receipt
from provenance.trust import TrustStore

if TYPE_CHECKING:
    from provenance._http import Answer, Fetcher, FetchOptions

MAX_ANSWER_BYTES = 256 * 1024 * 1024
MAX_DIGESTS = 1000
MAX_WORKS_PER_LOOKUP = 100
MAX_TEXT_PRINTS = 200_000
_RANK = {status: rank for rank, status in enumerate(STATUSES)}
_RETRIES = 5


class MultipartBody:
    """A ``multipart/form-data`` body (length known upfront): parts given as bytes are sent as
    they are, parts given as files are read as they are sent, and hashed on the way
    (:attr:`digests`), so that what was sent is what is checked."""

    def __init__(
        self,
        parts: Sequence[tuple[str, Path | bytes, str]],
        *,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """``parts``: (name, content or file, content type) each."""
        self.boundary = f"provenance-{secrets.token_hex(16)}"
        self._segments: list[bytes | tuple[str, Path, int]] = []
        for name, content, content_type in parts:
            head = (
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}";'
                f' filename="{name}"\r\nContent-Type: {content_type}\r\n\r\n'
            )
            if isinstance(content, bytes):
                self._segments += [head.encode("ascii") + content + b"\r\n"]
                continue
            try:
                size = os.stat(content).st_size
            except OSError as exc:
                raise InputError(f"{content}: cannot read: {exc.strerror}") from None
            self._segments += [head.encode("ascii"), (name, content, size), b"\r\n"]
        self._segments.append(f"--{self.boundary}--\r\n".encode("ascii"))
        self.length = sum(_size(s) for s in self._segments)
        self.on_progress = on_progress
        self.digests: dict[str, str] = {}
        """The SHA-256 of each file part, once it was sent whole."""
        self._chunks: Iterator[bytes] | None = None
        self._buffer = b""
        self.sent = 0

    @property
    def content_type(self) -> str:
        """The body's Content-Type, with its boundary."""
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        for segment in self._segments:
            if isinstance(segment, bytes):
                yield self._count(segment)
                continue
            name, path, size = segment
            digest = hashlib.sha256()
            handle: BinaryIO
            with path.open("rb") as handle:
                read = 0
                while chunk := handle.read(1 << 20):
                    read += len(chunk)
                    if read > size:
                        raise InputError(f"{path}: grew while it was being sent")
                    digest.update(chunk)
                    yield self._count(chunk)
            if read != size:
                raise InputError(f"{path}: changed size while it was being sent")
            self.digests[name] = digest.hexdigest()

    def read(self, amount: int = -1) -> bytes:
        """Read up to ``amount`` bytes of the body (all that is left when negative)."""
        if self._chunks is None:
            self._chunks = iter(self)
        while amount < 0 or len(self._buffer) < amount:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if amount < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:amount], self._buffer[amount:]
        return data

    def _count(self, chunk: bytes) -> bytes:
        self.sent += len(chunk)
        if self.on_progress is not None:
            self.on_progress(self.sent, self.length)
        return chunk


def _size(segment: bytes | tuple[str, Path, int]) -> int:
    return len(segment) if isinstance(segment, bytes) else segment[2]


def _message(answer: Answer) -> str:
    try:
        document = json.loads(answer.body)
    except ValueError:
        return answer.body[:200].decode("utf-8", "replace")
    error = document.get("error") if isinstance(document, dict) else None
    return str(error) if error else answer.body[:200].decode("utf-8", "replace")


def _refused(answer: Answer, what: str) -> Exception:
    """The error for a refusal: the registry's verdict (1), bad input (2), or unavailable (3)."""
    message = f"{what}: HTTP {answer.status}: {_message(answer)}"
    if answer.status in (403, 409, 422):
        return VerificationError(f"the registry refused it: {message}")
    if answer.status in (400, 404, 408, 413):
        return InputError(message)
    return FetchError(message)


def _json_object(answer: Answer, what: str) -> dict[str, Any]:
    try:
        document = json.loads(answer.body)
    except ValueError:
        raise FetchError(f"{what}: the registry's answer is not JSON") from None
    if not isinstance(document, dict):
        raise FetchError(f"{what}: the registry's answer is not a JSON object")
    return document


def verified_entry(
    receipt_bytes: bytes, verifiers: Sequence[NoteVerifier], *, what: str
) -> tuple[int, Checkpoint, LogEntry]:
    """Verify a receipt the registry sent and parse its log entry.

    Returns:
        The entry's index, the checkpoint and the entry.

    Raises:
        VerificationError: the receipt does not verify, or its entry is not a card entry.
    """
    receipt = Receipt.parse(receipt_bytes, what=what)
    verified = verify_receipt(receipt, verifiers, what=what)
    try:
        entry = LogEntry.from_bytes(verified.entry, what=f"{what}: entry")
    except FormatError as exc:
        raise VerificationError(f"{exc} (not a provenance.card/v1 log entry)") from None
    return verified.index, verified.checkpoint.checkpoint, entry


# --- push ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PushReport:
    """A push the registry accepted, with its verified receipt."""

    created: bool
    """False when the card was registered before (the first registration's answer)."""
    card: dict[str, Any]
    receipt: bytes
    index: int
    checkpoint: Checkpoint
    entry: LogEntry

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form: the registry's answer, and what was verified."""
        return {
            "ok": True,
            "created": self.created,
            "card": {key: value for key, value in self.card.items() if key != "receipt"},
            "index": self.index,
            "checkpoint": {"origin": self.checkpoint.origin, "size": self.checkpoint.size},
        }


def push(
    url: str,
    signed: Path,
    manifest: Path,
    store: TrustStore,
    *,
    at: dt.datetime,
    fingerprints: Path | None = None,
    output: Path | None = None,
    options: FetchOptions | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> PushReport:
    """Push a signed card with its manifest (and sidecar) to the registry at ``url``; with
    ``output``, write the receipt there once it verified (nothing is written otherwise).

    The card is read once and sent as read; the manifest is hashed as it is sent, and the
    receipt must name those bytes.

    Returns:
        The registration and its receipt, verified against the trust store's log keys.

    Raises:
        InputError: a bad URL, a missing file, a card that is not a DSSE envelope, no
            transparency-log key in ``store``, or the registry found the push malformed or
            too large (400, 413).
        VerificationError: the registry refused the card (403 untrusted signer, 409 another
            card under this name and version, 422 the manifest or sidecar is not the card's),
            or its receipt does not verify or names another card or manifest.
        FetchError: the registry could not be reached or could not answer.
    """
    from provenance._http import Fetcher, check_base_url

    base = check_base_url(url, what="a registry")
    verifiers = log_verifiers(store, at=at)
    envelope_bytes = read_bytes(signed, limit=MAX_ENVELOPE_BYTES, what=str(signed))
    envelope = Envelope.from_json(envelope_bytes, what=str(signed))
    card_id = hashlib.sha256(envelope.payload).hexdigest()
    parts: list[tuple[str, Path | bytes, str]] = [
        ("card", envelope_bytes, "application/json"),
        ("manifest", manifest, "application/x-ndjson"),
    ]
    if fingerprints is not None:
        parts.append(("fingerprints", fingerprints, "application/octet-stream"))
    body = MultipartBody(parts, on_progress=on_progress)
    with Fetcher(options) as fetcher:
        answer = fetcher.post(
            f"{base}/v1/cards",
            data=body,
            headers={"Content-Type": body.content_type, "Accept": "application/json"},
            max_bytes=MAX_ANSWER_BYTES,
        )
    if answer.status not in (200, 201):
        raise _refused(answer, f"push to {base}")
    document = _json_object(answer, f"push to {base}")
    receipt = document.get("receipt")
    if not isinstance(receipt, str):
        raise VerificationError(f"push to {base}: the registry's answer holds no receipt")
    receipt_bytes = receipt.encode("utf-8")
    index, checkpoint, entry = verified_entry(
        receipt_bytes, verifiers, what=f"the receipt from {base}"
    )
    manifest_sha256 = body.digests.get("manifest")
    if manifest_sha256 is None:  # the registry answered before the whole manifest was sent
        raise VerificationError(f"push to {base}: answered before the manifest was sent whole")
    problems = []
    if entry.card != card_id:
        problems.append(f"it names card {entry.card}, not this card ({card_id})")
    if entry.manifest != manifest_sha256:
        problems.append(f"it names manifest {entry.manifest}, not {manifest} ({manifest_sha256})")
    envelope_sha256 = hashlib.sha256(envelope_bytes).hexdigest()
    if answer.status == 201 and entry.envelope != envelope_sha256:
        problems.append(f"it names envelope {entry.envelope}, not {signed} ({envelope_sha256})")
    if problems:
        raise VerificationError(
            f"the receipt from {base} is not for this push: " + "; ".join(problems)
        )
    if output is not None:
        atomic_write(output, receipt_bytes)
    return PushReport(answer.status == 201, document, receipt_bytes, index, checkpoint, entry)


# --- lookup --------------------------------------------------------------------------------------


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
            wait = answer.headers.get("Retry-After", "1")
            time.sleep(min(int(wait) if wait.isdigit() else 1, 60))
            continue
        if answer.status != 200:
            raise _refused(answer, f"lookup at {base}")
        return _json_object(answer, f"lookup at {base}")
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
                cards[match["card"]] = match
                work.offer(match["card"], match["entry"], status, 1.0)
        for work, result in zip(sent, prints, strict=True):
            for match in result["matches"]:
                if match["status"] not in ("near-duplicate", "contained"):
                    raise FetchError(f"lookup at {base}: unknown status {match['status']!r}")
                cards[match["card"]] = match
                work.offer(match["card"], match["entry"], match["status"], float(match["score"]))
    except (KeyError, TypeError) as exc:
        raise FetchError(f"lookup at {base}: a malformed answer ({exc})") from None
    return cards


def _check_cards(
    fetcher: Fetcher,
    base: str,
    reported: dict[str, dict[str, Any]],
    verifiers: Sequence[NoteVerifier],
) -> dict[str, int]:
    """Verify each card's registration against the log; return its log index, by card id."""
    indexes: dict[str, int] = {}
    for card_id, match in sorted(reported.items()):
        try:
            data = fetcher.get(f"{base}/v1/cards/{card_id}", max_bytes=MAX_ANSWER_BYTES)
            document = json.loads(data)
            receipt = document["receipt"].encode("utf-8")
        except (ValueError, KeyError, TypeError, AttributeError):
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
        indexes[card_id] = index
    return indexes


def lookup(
    url: str,
    works: Sequence[tuple[str, bytes]],
    store: TrustStore,
    *,
    at: dt.datetime,
    options: FetchOptions | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[RegistryResult]:
    """Look up ``works`` (label, content) in the registry at ``url``.

    Returns:
        One result per work, in order, each card in it verified against the log.

    Raises:
        InputError: a bad URL, or no transparency-log key in ``store``.
        VerificationError: a card named in the answer does not verify against the log.
        FetchError: the registry could not be reached or answered malformed.
    """
    from provenance._http import Fetcher, check_base_url
    from provenance.fingerprints import content_prints

    base = check_base_url(url, what="a registry")
    verifiers = log_verifiers(store, at=at)
    prints = content_prints([content for _, content in works])
    items: list[_Work] = []
    for (label, content), work_prints in zip(works, prints, strict=True):
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
        items.append(_Work(label, digest, work_prints.text_sha256, text, image, sent))
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
        indexes = _check_cards(fetcher, base, reported, verifiers)
    results = []
    for work in items:
        matches = sorted(
            (
                RegistryMatch(
                    card,
                    reported[card]["name"],
                    reported[card]["version"],
                    tuple(reported[card]["publisher"]),
                    entry,
                    status,
                    score,
                    indexes[card],
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

    contents = [
        (label, read_bytes(path, limit=MAX_WORK_BYTES, what=label))
        for label, path in collect_works(works)
    ]
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
