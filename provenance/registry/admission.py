"""Admission: a card is registered only if everything about it checks, else nothing is stored.

:meth:`Registrar.register` takes a push (the signed card, the manifest and optionally the
fingerprint sidecar, already streamed to files) and, in order:

1. parses the DSSE envelope and verifies it against the registry's trust store (role
   ``dataset-publisher``); only the verified payload is read (403 if no trusted key signed);
2. answers with the first registration if the card (its id: the SHA-256 of the statement) is
   already registered, co-signed since or not (200; nothing is stored);
3. in one write transaction (the database's single writer): refuses a different card under a
   (publisher keyid, name, version) already registered (409); reads the manifest once, checking
   every line and the ``(sha256, id)`` order that absence proofs rest on, indexing its digests
   as it goes, and holds the file's SHA-256, entry count, bytes and Merkle root against the
   card (422 on any difference, or a malformed or mis-ordered manifest); takes the fingerprint
   sidecar only if the card commits to its digest, and requires it then (422); stores the
   exact bytes pushed; appends the log entry and signs the new checkpoint; and commits.

Any failure rolls the transaction back: nothing of a refused push is stored, and the log never
holds an entry for a card that is not registered.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import queue
import threading
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from sqlalchemy import Connection

from provenance import fpindex
from provenance._files import read_bytes
from provenance.card import MAX_CARD_BYTES, VerifiedCard, unverified_card_document, verify_card
from provenance.envelope import Envelope
from provenance.errors import (
    DocumentTypeError,
    InputError,
    ProvenanceError,
    SignatureError,
    VerificationError,
)
from provenance.fpsidecar import committed_sha256, open_committed
from provenance.keys import PrivateKey
from provenance.manifest import ManifestSummary
from provenance.registry import db, sqllog, storage
from provenance.registry._manifest import read_against_card
from provenance.tlog import LogEntry
from provenance.tlog_store import LogWriter
from provenance.trust import TrustStore, format_time

MAX_ENTRIES = 2**31 - 1
"""Entries are numbered in a 32-bit signed column."""


class _StopError(Exception):
    """The writer gave up: the reader stops too."""


Block = tuple[storage.PreparedDigests, bytes]
"""A block of the manifest: its digests' rows, ready to insert, and the bytes of its lines."""


def _index_manifest(
    conn: Connection, number: int, manifest: Path, committed: ManifestSummary
) -> None:
    """Read the manifest against the card in a second thread while this one writes its digests
    and stores its bytes (the very bytes read, checked and hashed again as they are stored).

    Reading (decoding, checking, hashing, preparing each block's rows for one bulk statement)
    and writing (the database's B-tree work, which runs without the GIL) overlap; the queue
    between them holds a few blocks at most.

    Raises:
        as :func:`read_against_card` (the first error of either side).
    """
    blocks: queue.Queue[Block | BaseException | None] = queue.Queue(maxsize=4)
    stop = threading.Event()
    dialect = conn.dialect.name

    def put(item: Block | BaseException | None) -> None:
        while not stop.is_set():
            try:
                blocks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _StopError

    def read() -> None:
        try:
            read_against_card(
                manifest,
                committed,
                lambda first, entries, data: put(
                    (storage.prepare_digests(dialect, number, first, entries), data)
                ),
            )
            put(None)
        except _StopError:
            pass
        except BaseException as exc:  # handed to the writer, which raises it
            with contextlib.suppress(_StopError):
                put(exc)

    reader = threading.Thread(target=read, name="manifest-reader", daemon=True)
    reader.start()
    try:
        stored = storage.BlobWriter(conn, committed.digest, what="manifest")
        digests = storage.DigestWriter(conn, number)
        try:
            while (item := blocks.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                digests.write(item[0])
                stored.write(item[1])
            digests.close()
        except BaseException:
            digests.abandon()
            raise
        stored.close()
    finally:
        stop.set()
        reader.join()


class RefusedError(Exception):
    """A push the registry refuses, with the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Upload:
    """A push, streamed to files."""

    card: Path
    manifest: Path
    fingerprints: Path | None = None
    manifest_sha256: str | None = None
    """The manifest's SHA-256 (hex) as it was received, when known: a manifest that is not the
    card's is refused on it before the write lock (the bytes read under it are checked again)."""


@dataclass(frozen=True, slots=True)
class Registered:
    """The outcome of a push: the card's registration, and whether this push made it."""

    record: storage.CardRecord
    created: bool


class Registrar:
    """Registers cards in ``database``, logging each with the log ``key`` as ``origin``."""

    def __init__(
        self, database: db.Database, trust: TrustStore, key: PrivateKey, *, origin: str
    ) -> None:
        self.database = database
        self.trust = trust
        self.key = key
        self.origin = origin

    def start_log(self) -> bytes:
        """Create the log (its size-0 checkpoint) if the database has none, else check that the
        stored checkpoint is this log's (this key, this origin).

        Returns:
            The current signed checkpoint.

        Raises:
            VerificationError: the database holds the log of another key or origin.
            InputError: the origin is not a valid key name.
        """
        writer = LogWriter(sqllog.SqlTileStore(self.database), self.key, origin=self.origin)
        if writer.store.read_checkpoint() is None:
            try:
                return writer.create()
            except InputError:
                pass  # another process created it in between
        try:
            return writer.checkpoint().note
        except VerificationError as exc:
            raise VerificationError(
                f"the database holds another log than {self.origin!r} signed by this key: {exc}"
            ) from None

    def _verify(self, upload: Upload, at: dt.datetime) -> tuple[Envelope, VerifiedCard, bytes]:
        try:
            data = read_bytes(upload.card, limit=MAX_CARD_BYTES, what="card")
            document = unverified_card_document(data, what="card")
        except InputError as exc:
            raise RefusedError(400, str(exc)) from None
        if not isinstance(document, Envelope):
            raise RefusedError(403, "card: not signed (a DSSE envelope is expected)")
        try:
            verified = verify_card(document, self.trust, at=at, what="card")
        except (SignatureError, DocumentTypeError) as exc:
            raise RefusedError(403, str(exc)) from None
        except InputError as exc:
            raise RefusedError(400, str(exc)) from None
        return document, verified, data

    def register(self, upload: Upload, *, at: dt.datetime) -> Registered:
        """Register the card of ``upload`` (see the module docstring).

        Returns:
            The registration (``created`` false when the card was registered before).

        Raises:
            RefusedError: the push is refused (400, 403, 409, 422); nothing was stored.
            UnavailableError: the database or a file could not be read or written (nothing was
                stored).
        """
        envelope, verified, envelope_bytes = self._verify(upload, at)
        card_id = hashlib.sha256(envelope.payload).hexdigest()
        with self.database.read() as conn:
            known = storage.card_by_id(conn, card_id)
        if known is not None:
            return Registered(known, created=False)
        predicate = verified.predicate
        for field, value in (("name", predicate.name), ("version", predicate.version)):
            # Stored, logged and printed by every monitor: a control character would be stored
            # by SQLite and refused by PostgreSQL (NUL), or rewrite a terminal's lines.
            if any(unicodedata.category(character) == "Cc" for character in value):
                raise RefusedError(422, f"the card's {field} {value!r} holds a control character")
        committed = ManifestSummary.from_card(verified.manifest_digest, predicate.manifest)
        if committed.entries > MAX_ENTRIES:
            raise RefusedError(422, f"the manifest has more than {MAX_ENTRIES} entries")
        sidecar = self._sidecar_commitment(verified, upload)
        # Before the write lock: a manifest that is not the card's would otherwise hold every
        # other push back while it is read to its end (a card signed but not yet registered,
        # pushed with a large manifest that is not its own).
        if upload.manifest_sha256 is not None and upload.manifest_sha256 != committed.digest:
            raise RefusedError(
                422,
                "manifest: the manifest is not the one the card commits to: sha256"
                f" {upload.manifest_sha256}, card says {committed.digest}",
            )
        with self.database.write() as conn:
            known = storage.card_by_id(conn, card_id)
            if known is not None:  # registered by a concurrent push meanwhile
                return Registered(known, created=False)
            for publisher in verified.publishers:
                other = storage.card_under(conn, publisher, predicate.name, predicate.version)
                if other is not None:
                    raise RefusedError(
                        409,
                        f"publisher {publisher} already registered a different card as"
                        f" {predicate.name} {predicate.version} (card {other.id}); a"
                        " re-release needs a new version",
                    )
            record = storage.CardRecord(
                no=0,
                id=card_id,
                name=predicate.name,
                version=predicate.version,
                publisher=tuple(sorted(verified.publishers)),
                entries=committed.entries,
                merkle_root=committed.root,
                envelope_sha256=hashlib.sha256(envelope_bytes).hexdigest(),
                manifest_sha256=committed.digest,
                fingerprints_sha256=sidecar,
                registered=format_time(at),
                log_index=-1,
                receipt=b"",
            )
            number = storage.insert_card(conn, record)
            try:
                _index_manifest(conn, number, upload.manifest, committed)
            except storage.DatabaseError:
                raise  # the registry's trouble, not the push's (503)
            except ProvenanceError as exc:
                raise RefusedError(422, f"manifest: {exc}") from None
            if sidecar is not None:
                assert upload.fingerprints is not None
                self._check_sidecar(upload, sidecar)
            # Each blob's digest is computed again from the bytes stored, and must be the one
            # the card commits to (or, for the envelope, the digest logged); the manifest's
            # bytes were stored as they were read.
            storage.store_blob(conn, upload.card, record.envelope_sha256, what="card")
            if sidecar is not None and upload.fingerprints is not None:
                storage.store_blob(conn, upload.fingerprints, sidecar, what="fingerprints")
            entry = LogEntry.for_card(
                verified,
                statement=envelope.payload,
                envelope_sha256=record.envelope_sha256,
                manifest_sha256=committed.digest,
                at=at,
            )
            writer = LogWriter(sqllog.bound(conn), self.key, origin=self.origin)
            appended = writer.append([entry.to_bytes()])
            receipt = appended.receipts[0].to_bytes()
            storage.set_log_entry(conn, number, appended.first_index, receipt)
        final = replace(record, no=number, log_index=appended.first_index, receipt=receipt)
        return Registered(final, created=True)

    def _sidecar_commitment(self, verified: VerifiedCard, upload: Upload) -> str | None:
        """The sidecar digest the card commits to, when a sidecar must (and may) be stored."""
        # The rule of provenance.fpsidecar: a sidecar is used only if the card commits to it.
        committed = committed_sha256(verified)
        if committed is None and upload.fingerprints is not None:
            raise RefusedError(
                422,
                "fingerprints: the card commits to no fingerprint index, so none is taken (no"
                " trusted key signed it); push without it",
            )
        if committed is not None and upload.fingerprints is None:
            raise RefusedError(
                422,
                f"fingerprints: the card commits to a fingerprint index (sha256 {committed});"
                " push it with the manifest",
            )
        return committed

    def _check_sidecar(self, upload: Upload, committed: str) -> None:
        assert upload.fingerprints is not None
        try:
            with fpindex.FingerprintIndex.from_sidecar(
                upload.manifest, open_committed(upload.fingerprints, committed)
            ) as index:
                # Checks the fingerprint sections too (they are otherwise checked on first use).
                index.text_candidates(np.zeros(0, dtype=np.uint64))
        except ProvenanceError as exc:
            raise RefusedError(422, f"fingerprints: {exc}") from None


__all__ = ["MAX_ENTRIES", "RefusedError", "Registered", "Registrar", "Upload"]
