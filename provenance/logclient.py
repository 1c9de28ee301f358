"""Clients of the transparency log: ``log verify`` (a receipt, offline) and ``log monitor``.

Both trust only the keys the trust store holds for the role ``transparency-log``; each such key's
name is the origin of the log it signs for (:func:`log_verifiers`).

**Receipts** (:func:`verify_receipt_file`): a ``c2sp.org/tlog-proof@v1`` file whose checkpoint a
trusted log key signed, whose inclusion proof leads from the entry in its ``extra`` line to that
checkpoint's root, and whose entry is a ``provenance.card/v1`` log entry; with a signed card,
also that the entry names that card (its id is the SHA-256 of the DSSE payload, the statement).

**Monitoring** (:func:`monitor`): reads a log over HTTP (``<url>/log/checkpoint`` and the tiles
under ``<url>/log/tile/``), verifies the checkpoint, authenticates every tile it uses against it,
checks that the tree extends the one verified last time (kept in a state file), reads the new
entries and reports each registration. It reports, with evidence, and without moving the state
on:

- a **split view**: the log's checkpoint is not consistent with the one verified before (the
  two signed checkpoints are the evidence: the log key signed both, and no consistency proof
  between them exists), including a tree that shrank;
- a **conflict**: two different cards logged under one (publisher keyid, name, version), which
  the registry must refuse; the evidence is a receipt for each entry under the new checkpoint.

A log that serves tiles or entries that do not match its own checkpoint fails the run
(:class:`~provenance.tlog.TileError`); so does an entry that is not a ``provenance.card/v1``
entry. The state file is written atomically, and only after a run found nothing wrong.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance import _json, merkle, schema
from provenance._files import atomic_write, read_bytes
from provenance.envelope import MAX_ENVELOPE_BYTES, Envelope
from provenance.errors import FormatError, InputError, VerificationError
from provenance.signednote import (
    MAX_NOTE_BYTES,
    Checkpoint,
    NoteVerifier,
    VerifiedCheckpoint,
    verify_checkpoint,
)
from provenance.tlog import (
    HASH_SIZE,
    MAX_BUNDLE_BYTES,
    MAX_RECEIPT_BYTES,
    LogEntry,
    Receipt,
    Tile,
    TiledTree,
    verify_receipt,
)
from provenance.trust import TrustStore

if TYPE_CHECKING:  # requests is imported only by commands that go online
    from provenance._http import Fetcher, FetchOptions

STATE_SCHEMA = "log-monitor-state.v1.json"
MAX_STATE_BYTES = 1024 * 1024 * 1024
_PROGRESS_EVERY = 256


def log_verifiers(store: TrustStore, *, at: dt.datetime) -> list[NoteVerifier]:
    """Return a note verifier for each key trusted as ``transparency-log`` at ``at``.

    Raises:
        InputError: no such key (vacuous trust is refused), or one that cannot sign notes.
    """
    keys = store.require_keys("transparency-log", at=at, what="trust store")
    return [NoteVerifier.ed25519(store.keys[keyid].name, key) for keyid, key in keys.items()]


def _entry(data: bytes, index: int, *, what: str) -> LogEntry:
    """Parse a logged entry; one that is not ours means the log logged something else."""
    try:
        return LogEntry.from_bytes(data, what=f"{what}: entry {index}")
    except FormatError as exc:
        raise VerificationError(f"{exc} (not a provenance.card/v1 log entry)") from None


def _checkpoint_dict(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "origin": checkpoint.origin,
        "size": checkpoint.size,
        "rootHash": _json.b64encode(checkpoint.root),
    }


# --- receipts ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceiptReport:
    """A receipt that verified: the entry it proves, where, under which checkpoint."""

    index: int
    checkpoint: Checkpoint
    entry: LogEntry
    card_checked: bool = False
    """Whether a signed card was given and the entry names it."""

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "ok": True,
            "index": self.index,
            "checkpoint": _checkpoint_dict(self.checkpoint),
            "entry": self.entry.to_dict(),
            "cardMatches": True if self.card_checked else None,
        }


def card_id(path: Path) -> str:
    """Return the id of the signed card at ``path``: the SHA-256 hex of its DSSE payload.

    Raises:
        InputError, FormatError: missing, unreadable, or not a DSSE envelope.
    """
    data = read_bytes(path, limit=MAX_ENVELOPE_BYTES, what=str(path))
    envelope = Envelope.from_json(data, what=str(path))
    return hashlib.sha256(envelope.payload).hexdigest()


def verify_receipt_file(
    path: Path, store: TrustStore, *, at: dt.datetime, card: Path | None = None
) -> ReceiptReport:
    """Verify the receipt at ``path`` offline (and, with ``card``, that it names that card).

    Returns:
        The verified entry, its index and the checkpoint.

    Raises:
        InputError: the receipt or card file is missing or unreadable, the card is not a DSSE
            envelope, or the trust store has no transparency-log key.
        VerificationError: the receipt is damaged, its checkpoint is not signed by a trusted log
            key named as its origin, the inclusion proof fails, the entry is not a
            ``provenance.card/v1`` entry, or it names another card.
    """
    expected = None if card is None else (card_id(card), str(card))
    return _verify_receipt_file(path, store, at=at, expected=expected)


def _verify_receipt_file(
    path: Path, store: TrustStore, *, at: dt.datetime, expected: tuple[str, str] | None
) -> ReceiptReport:
    """:func:`verify_receipt_file`; ``expected`` is the card's id and how to name it."""
    what = str(path)
    verifiers = log_verifiers(store, at=at)
    unverified_data = read_bytes(path, limit=MAX_RECEIPT_BYTES, what=what)
    receipt = Receipt.parse(unverified_data, what=what)
    verified = verify_receipt(receipt, verifiers, what=what)
    entry = _entry(verified.entry, verified.index, what=what)
    if expected is not None and entry.card != expected[0]:
        raise VerificationError(
            f"{what}: the logged entry names card {entry.card}, not {expected[1]}"
            f" (whose id is {expected[0]})"
        )
    checkpoint = verified.checkpoint.checkpoint
    return ReceiptReport(verified.index, checkpoint, entry, expected is not None)


@dataclass(frozen=True, slots=True)
class RegisteredCard:
    """A card's registry receipt, verified: a :class:`provenance.proofs.RegistryReceipt`.

    The registry checks a manifest's ``(sha256, id)`` order when it admits a card, so a
    verified receipt for the card is a basis for its absence proofs.
    """

    registry: str
    """The log's origin (the name of its trusted key)."""
    statement_sha256: str
    """The card's id, as its log entry names it."""
    index: int


def registered_card(
    path: Path, store: TrustStore, *, at: dt.datetime, card_id: str, card_name: str
) -> RegisteredCard:
    """Verify the receipt at ``path`` for the card whose id is ``card_id`` (a card already
    verified and read once by the caller; ``card_name`` names it in messages).

    Returns:
        The registration, as a basis for absence claims about that card.

    Raises:
        InputError, VerificationError: as :func:`verify_receipt_file` (including a receipt
            that names another card).
    """
    report = _verify_receipt_file(path, store, at=at, expected=(card_id, card_name))
    return RegisteredCard(report.checkpoint.origin, report.entry.card, report.index)


# --- monitoring ----------------------------------------------------------------------------------


class HttpLog:
    """The static resources of the log under ``<base>/log/``, read with a hardened fetcher."""

    def __init__(self, base: str, fetcher: Fetcher) -> None:
        self.base = base
        self.fetcher = fetcher

    def checkpoint(self) -> bytes:
        """Download the current checkpoint (not verified here).

        Raises:
            FetchError: network failure, timeout, HTTP error, over the size cap.
        """
        return self.fetcher.get(f"{self.base}/log/checkpoint", max_bytes=MAX_NOTE_BYTES)

    def read_tiles(self, tiles: Iterable[Tile]) -> list[bytes]:
        """Download tiles and entry bundles (each capped at its largest possible size).

        Raises:
            FetchError: network failure, timeout, HTTP error, over the size cap.
        """
        return [
            self.fetcher.get(
                f"{self.base}/log/{tile.path}",
                max_bytes=MAX_BUNDLE_BYTES if tile.is_entries else tile.width * HASH_SIZE,
            )
            for tile in tiles
        ]


@dataclass(frozen=True, slots=True)
class SplitView:
    """Two checkpoints signed by the log that no single append-only tree explains."""

    reason: str
    previous: bytes
    """The checkpoint verified before (from the state file), verbatim."""
    current: bytes
    """The checkpoint the log serves now, verbatim."""

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (the signed notes as text)."""
        return {
            "reason": self.reason,
            "previous": self.previous.decode("utf-8"),
            "current": self.current.decode("utf-8"),
        }


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two different cards logged under one (publisher keyid, name, version)."""

    publisher: str
    name: str
    version: str
    first: tuple[int, str]
    """(log index, card id) of the earlier entry."""
    second: tuple[int, str]
    receipts: tuple[bytes, bytes]
    """A tlog-proof of each entry under the current checkpoint."""

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "publisher": self.publisher,
            "name": self.name,
            "version": self.version,
            "entries": [
                {"index": index, "card": card, "receipt": receipt.decode("utf-8")}
                for (index, card), receipt in zip(
                    (self.first, self.second), self.receipts, strict=True
                )
            ],
        }


@dataclass(frozen=True, slots=True)
class MonitorReport:
    """What one monitoring run found."""

    url: str
    origin: str
    previous: Checkpoint | None
    checkpoint: Checkpoint
    registrations: int
    """New entries read in this run."""
    split_view: SplitView | None = None
    conflicts: tuple[Conflict, ...] = ()
    state_written: bool = False

    @property
    def ok(self) -> bool:
        """Whether the log is consistent and holds no conflicting registrations."""
        return self.split_view is None and not self.conflicts

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (registrations are reported as they are read)."""
        return {
            "ok": self.ok,
            "url": self.url,
            "origin": self.origin,
            "previous": _checkpoint_dict(self.previous) if self.previous else None,
            "checkpoint": _checkpoint_dict(self.checkpoint),
            "newEntries": self.registrations,
            "splitView": self.split_view.to_dict() if self.split_view else None,
            "conflicts": [conflict.to_dict() for conflict in self.conflicts],
            "stateWritten": self.state_written,
        }


CardKey = tuple[str, str, str]
"""(publisher keyid, card name, card version)."""


@dataclass(slots=True)
class MonitorState:
    """The last verified checkpoint and, per (publisher, name, version), the card logged."""

    verified: VerifiedCheckpoint
    cards: dict[CardKey, tuple[str, int]] = field(default_factory=dict)

    @property
    def checkpoint(self) -> Checkpoint:
        """The last verified checkpoint."""
        return self.verified.checkpoint

    def to_json(self) -> bytes:
        """Return the state file's bytes."""
        cards = [
            {"publisher": key[0], "name": key[1], "version": key[2], "card": card, "index": index}
            for key, (card, index) in sorted(self.cards.items())
        ]
        return _json.pretty(
            {
                "version": 1,
                "origin": self.checkpoint.origin,
                "checkpoint": self.verified.note.decode("utf-8"),
                "cards": cards,
            }
        )

    @classmethod
    def load(cls, path: Path, verifiers: list[NoteVerifier]) -> MonitorState | None:
        """Read the state file at ``path`` (None if there is none) and re-verify its checkpoint.

        The checkpoint is verified again; the card index cannot be (it is this monitor's own
        record of entries it verified), so it is only checked to lie within the checkpoint.

        Raises:
            InputError, FormatError, SchemaError: unreadable or malformed.
            VerificationError: its checkpoint is not signed by a trusted log key (the trust
                store changed, or the file was edited).
        """
        if not path.exists():
            return None
        what = str(path)
        document = _json.loads_object(read_bytes(path, limit=MAX_STATE_BYTES, what=what), what=what)
        schema.validate(document, STATE_SCHEMA, what=what)
        try:
            verified = verify_checkpoint(
                document["checkpoint"].encode("utf-8"), verifiers, what=f"{what}: checkpoint"
            )
        except VerificationError as exc:
            raise type(exc)(
                f"{exc} (the state's checkpoint no longer verifies with the trust store)"
            ) from None
        if verified.checkpoint.origin != document["origin"]:
            raise FormatError(f"{what}: origin does not match its checkpoint")
        cards: dict[CardKey, tuple[str, int]] = {}
        for item in document["cards"]:
            key = (item["publisher"], item["name"], item["version"])
            if key in cards or item["index"] >= verified.checkpoint.size:
                raise FormatError(f"{what}: a card entry is repeated or beyond the checkpoint")
            cards[key] = (item["card"], item["index"])
        return cls(verified, cards)


def _split_view(
    previous: VerifiedCheckpoint, current: VerifiedCheckpoint, tree: Callable[[], TiledTree]
) -> SplitView | None:
    """Why two checkpoints of one log key cannot both be true, or None. ``tree`` gives the
    current tree, read only when the sizes alone cannot tell (the log grew): a tree that shrank
    or changed at one size is a split view whatever its tiles, an empty one included."""
    old, new = previous.checkpoint, current.checkpoint
    reason: str | None = None
    if new.size < old.size:
        reason = f"the log's tree shrank from {old.size} to {new.size} entries"
    elif new.size == old.size:
        if new.root != old.root:
            reason = f"two different trees of {new.size} entries"
    elif old.size > 0:
        try:
            proof = tree().consistency_proof(old.size)
            merkle.verify_consistency(old.size, new.size, old.root, new.root, proof)
        except merkle.ProofError:
            # The proof was built from tiles authenticated against the new root: it fails only
            # if the first old.size entries of the new tree are not the old tree.
            reason = (
                f"the tree of {new.size} entries does not extend the tree of {old.size}"
                " verified before"
            )
    if reason is None:
        return None
    return SplitView(reason, previous.note, current.note)


def _receipt(tree: TiledTree, index: int, note: bytes) -> bytes:
    entry = next(iter(tree.entries(index, index + 1)))[1]
    return Receipt(index, tuple(tree.inclusion_proof(index)), note, extra=entry).to_bytes()


def monitor(
    url: str,
    store: TrustStore,
    state_path: Path,
    *,
    at: dt.datetime,
    options: FetchOptions | None = None,
    fetcher: Fetcher | None = None,
    on_registration: Callable[[int, LogEntry], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> MonitorReport:
    """Check the log at ``url`` against the state in ``state_path`` and read its new entries.

    Args:
        url: the registry's base URL (the log is under ``<url>/log/``).
        store: the trust store holding the log's key (role ``transparency-log``).
        state_path: the state file (created on the first run).
        at: "now", for the keys' validity.
        options: download limits (when ``fetcher`` is not given).
        fetcher: the HTTP fetcher to use (tests); closed by the caller.
        on_registration: called with each new entry (index, entry), in log order.
        on_progress: called with (entries read, entries to read) as reading goes.

    Returns:
        The report; ``ok`` is false on a split view or a conflict (the state is then left as
        it was, so the next run reports it again).

    Raises:
        InputError: a bad URL, no trusted log key, a malformed state file, or a state file of
            another log.
        VerificationError: the checkpoint does not verify, the log serves tiles or entries that
            do not match it, or an entry is not a ``provenance.card/v1`` entry.
        FetchError: the log cannot be read.
        LocalIOError: the state file cannot be written.
    """
    from provenance._http import Fetcher, check_base_url

    base = check_base_url(url, what="a registry")
    verifiers = log_verifiers(store, at=at)
    state = MonitorState.load(state_path, verifiers)
    own = fetcher is None
    active = fetcher or Fetcher(options)
    try:
        log = HttpLog(base, active)
        current = verify_checkpoint(log.checkpoint(), verifiers, what=f"{base}/log/checkpoint")
        checkpoint = current.checkpoint
        if state is not None and state.checkpoint.origin != checkpoint.origin:
            raise InputError(
                f"{state_path}: is the state of the log {state.checkpoint.origin!r}, but"
                f" {base} serves the log {checkpoint.origin!r}"
            )
        # Built once asked for: it refuses an empty tree whose root is not SHA-256 of nothing,
        # which after a verified state is a split view, to be reported with its evidence.
        tiled = functools.cache(
            lambda: TiledTree(checkpoint.size, log, root=checkpoint.root, what=f"the log at {base}")
        )
        previous = state.checkpoint if state is not None else None
        report = MonitorReport(base, checkpoint.origin, previous, checkpoint, 0)
        if state is not None:
            split = _split_view(state.verified, current, tiled)
            if split is not None:
                return replace(report, split_view=split)
        tree = tiled()
        start = previous.size if previous is not None else 0
        total = checkpoint.size - start
        cards = dict(state.cards) if state is not None else {}
        clashes: list[tuple[CardKey, tuple[str, int], tuple[str, int]]] = []
        for index, data in tree.entries(start, checkpoint.size):
            entry = _entry(data, index, what=f"the log at {base}")
            for publisher in entry.publisher:
                key = (publisher, entry.name, entry.version)
                seen = cards.setdefault(key, (entry.card, index))
                if seen[0] != entry.card:
                    clashes.append((key, seen, (entry.card, index)))
            if on_registration is not None:
                on_registration(index, entry)
            done = index - start + 1
            if on_progress is not None and (done % _PROGRESS_EVERY == 0 or done == total):
                on_progress(done, total)
        report = replace(report, registrations=total)
        if clashes:
            conflicts = tuple(
                Conflict(
                    key[0],
                    key[1],
                    key[2],
                    (first[1], first[0]),
                    (second[1], second[0]),
                    (
                        _receipt(tree, first[1], current.note),
                        _receipt(tree, second[1], current.note),
                    ),
                )
                for key, first, second in clashes
            )
            return replace(report, conflicts=conflicts)
        atomic_write(state_path, MonitorState(current, cards).to_json())
        return replace(report, state_written=True)
    finally:
        if own:
            active.close()


__all__ = [
    "Conflict",
    "HttpLog",
    "MonitorReport",
    "MonitorState",
    "ReceiptReport",
    "RegisteredCard",
    "SplitView",
    "card_id",
    "log_verifiers",
    "monitor",
    "registered_card",
    "verify_receipt_file",
]
