"""The registry's log entry: one registration of a signed card (schema ``log-entry.v1.json``).

The RFC 8785 bytes of ``{"type": "provenance.card/v1", "card", "envelope", "manifest",
"merkleRoot", "entries", "name", "version", "publisher", "registered"}``: ``card`` is the card's
id (SHA-256 of its statement, the DSSE payload), ``envelope`` and ``manifest`` the SHA-256 of the
bytes pushed, digests as lowercase hex.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provenance import _json, schema
from provenance.errors import FormatError, InputError
from provenance.tlog.tiles import MAX_ENTRY_BYTES
from provenance.trust import format_time, parse_time

if TYPE_CHECKING:
    from provenance.card import VerifiedCard

ENTRY_TYPE = "provenance.card/v1"
LOG_ENTRY_SCHEMA = "log-entry.v1.json"


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One registration in the log (digests as lowercase hex)."""

    card: str
    """The card's id: SHA-256 of the statement (the DSSE payload bytes)."""
    envelope: str
    """SHA-256 of the envelope bytes pushed."""
    manifest: str
    """SHA-256 of the manifest bytes pushed."""
    merkle_root: str
    entries: int
    name: str
    version: str
    publisher: tuple[str, ...]
    """keyids of the card's trusted dataset-publisher signatures."""
    registered: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "type": ENTRY_TYPE,
            "card": self.card,
            "envelope": self.envelope,
            "manifest": self.manifest,
            "merkleRoot": self.merkle_root,
            "entries": self.entries,
            "name": self.name,
            "version": self.version,
            "publisher": list(self.publisher),
            "registered": format_time(self.registered),
        }

    def to_bytes(self) -> bytes:
        """Return the entry's RFC 8785 bytes, checked against the schema and the size cap.

        Raises:
            InputError: the entry does not match its schema, or exceeds 65,535 bytes.
        """
        document = self.to_dict()
        schema.validate(document, LOG_ENTRY_SCHEMA, what="log entry")
        data = _json.canonical(document)
        if len(data) > MAX_ENTRY_BYTES:
            raise InputError(f"the log entry has {len(data)} bytes, more than {MAX_ENTRY_BYTES}")
        return data

    @classmethod
    def for_card(
        cls,
        card: VerifiedCard,
        *,
        statement: bytes,
        envelope_sha256: str,
        manifest_sha256: str,
        at: dt.datetime,
    ) -> LogEntry:
        """Return the entry that registers ``card`` (verified from the DSSE payload ``statement``).

        ``envelope_sha256`` and ``manifest_sha256`` are the digests of the bytes pushed; ``at``
        is the time of registration.
        """
        predicate = card.predicate
        return cls(
            card=hashlib.sha256(statement).hexdigest(),
            envelope=envelope_sha256,
            manifest=manifest_sha256,
            merkle_root=predicate.manifest.merkle_root,
            entries=predicate.manifest.entries,
            name=predicate.name,
            version=predicate.version,
            publisher=tuple(sorted(card.publishers)),
            registered=at,
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, what: str) -> LogEntry:
        """Parse an entry: strict JSON, its schema, and its RFC 8785 form byte for byte.

        Raises:
            FormatError, SchemaError: not a ``provenance.card/v1`` entry in canonical form.
        """
        document = _json.loads_object(data, what=what)
        schema.validate(document, LOG_ENTRY_SCHEMA, what=what)
        if _json.canonical(document) != data:
            raise FormatError(f"{what}: the entry is not in RFC 8785 canonical form")
        return cls(
            card=document["card"],
            envelope=document["envelope"],
            manifest=document["manifest"],
            merkle_root=document["merkleRoot"],
            entries=document["entries"],
            name=document["name"],
            version=document["version"],
            publisher=tuple(document["publisher"]),
            registered=parse_time(document["registered"], what=f"{what}: registered"),
        )


__all__ = ["ENTRY_TYPE", "LOG_ENTRY_SCHEMA", "LogEntry"]
