"""Building a card's statement from a spec and a manifest, checking it, and signing it.

A card is an in-toto Statement v1 (:class:`~provenance.card.model.CardStatement`) whose subject
is the manifest file and whose predicate describes the dataset: its sources and the records and
bytes each claims (see :mod:`provenance.card.sources`), records and bytes per license, the
exclusion lists applied before it was made, and the manifest's entry count, bytes and Merkle
root. It is signed as a DSSE envelope over its RFC 8785 bytes; further signatures
(co-signatures) are added to the same envelope over the same bytes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provenance import __version__, _json, schema
from provenance.card.model import (
    LEAF_FORMAT,
    PAYLOAD_TYPE,
    STATEMENT_TYPE,
    CardPredicate,
    CardStatement,
    Exclusion,
    FingerprintIndexCommitment,
    Generator,
    LicenseCount,
    ManifestCommitment,
    Publisher,
    Source,
    SourceDescription,
    Subject,
)
from provenance.card.sources import described, tally
from provenance.envelope import Envelope, add_signature, sign_envelope
from provenance.errors import FormatError, ProvenanceWarning, SchemaError
from provenance.keys import PrivateKey
from provenance.manifest import ManifestEntry, ManifestSummary
from provenance.trust import format_time

MAX_CARD_BYTES = 64 * 1024 * 1024


def build_statement(
    spec: Mapping[str, Any],
    entries: Iterable[ManifestEntry],
    summary_of: Callable[[], ManifestSummary],
    *,
    manifest_name: str,
    created: dt.datetime,
    exclusions: Sequence[Exclusion] = (),
    fingerprints: FingerprintIndexCommitment | None = None,
) -> CardStatement:
    """Return the statement of a dataset card.

    Args:
        spec: a spec as returned by :func:`provenance.card.load_spec`.
        entries: the manifest's entries (streamed once).
        summary_of: returns the :class:`ManifestSummary`; called after ``entries`` has been
            consumed.
        manifest_name: the subject name (the manifest's file name).
        created: the creation time.
        exclusions: the lists applied, from a filter report.
        fingerprints: the sidecar fingerprint index commitment, if any.

    Raises:
        InputError, FormatError: see :func:`provenance.card.tally`.
        SchemaError: the statement built does not match the card's schemas.
    """
    descriptions = described(spec["sources"])
    counts = tally(entries, descriptions)
    summary = summary_of()
    for source in descriptions:
        if counts.by_source[source.id][0] == 0:
            warnings.warn(
                f"source {source.id!r} claims no manifest entry (sources are tried in the"
                " order written; an earlier one may claim its entries)",
                ProvenanceWarning,
                stacklevel=2,
            )
    sources = []
    for source in descriptions:
        records, size = counts.by_source[source.id]
        sources.append(Source(**_members_of(source), records=records, bytes=size))
    predicate = CardPredicate(
        name=spec["name"],
        version=spec["version"],
        description=spec["description"],
        publisher=Publisher.from_dict(spec["publisher"]),
        created=format_time(created),
        sources=tuple(sources),
        licenses=tuple(
            LicenseCount(license=license_id, records=records, bytes=size)
            for license_id, (records, size) in counts.by_license.items()
        ),
        exclusions=tuple(exclusions),
        manifest=ManifestCommitment(
            entries=summary.entries,
            bytes=summary.total_bytes,
            merkle_root=summary.root,
            hash_algorithm="sha256",
            leaf_format=LEAF_FORMAT,
            fingerprints=fingerprints,
        ),
        generator=Generator(name="provenance", version=__version__),
    )
    statement = CardStatement(
        subject=Subject(name=manifest_name, digest={"sha256": summary.digest}),
        predicate=predicate,
    )
    check_statement(statement.to_dict(), what="built card")
    return statement


def _members_of(source: SourceDescription) -> dict[str, Any]:
    """The fields of a source description, to build a :class:`Source` with its counts."""
    return {item.name: getattr(source, item.name) for item in dataclasses.fields(source)}


def check_statement(statement: Any, *, what: str) -> None:
    """Validate a statement document and its predicate against their schemas, and that its
    sources' ids are unique (entries name their source by id; every export keys on it).

    Raises:
        SchemaError: either does not match, or a source id is used twice.
    """
    schema.validate(statement, schema.CARD_STATEMENT, what=what)
    schema.validate(statement["predicate"], schema.CARD_PREDICATE, what=f"{what}: predicate")
    seen: set[str] = set()
    for index, source in enumerate(statement["predicate"]["sources"]):
        if source["id"] in seen:
            raise SchemaError(
                f"{what}: predicate: sources/{index}: id {source['id']!r} is used twice"
            )
        seen.add(source["id"])


def parse_statement(document: Any, *, what: str) -> CardStatement:
    """Check a statement document against the card's schemas and return it typed.

    Raises:
        SchemaError: it does not match them.
    """
    check_statement(document, what=what)
    return CardStatement.from_dict(document)


def unverified_card_document(data: bytes, *, what: str) -> Envelope | CardStatement:
    """Read a card file: an unsigned statement or a DSSE envelope.

    Nothing here is trusted: it is what the user asked to sign, show or verify.

    Raises:
        FormatError: neither, or larger than :data:`MAX_CARD_BYTES`.
        SchemaError: an unsigned statement that is not a valid card.
    """
    if len(data) > MAX_CARD_BYTES:
        raise FormatError(f"{what}: larger than {MAX_CARD_BYTES} bytes")
    document = _json.loads_object(data, what=what)
    if "payloadType" in document:
        return Envelope.from_dict(document, what=what)
    if document.get("_type") == STATEMENT_TYPE:
        return parse_statement(document, what=what)
    raise FormatError(f"{what}: neither a card statement nor a DSSE envelope")


def unverified_statement(
    envelope: Envelope, *, what: str, label: str = "unverified payload"
) -> CardStatement:
    """Return an envelope's payload as a card statement, without any signature check.

    For display, and to refuse to co-sign what is not a card; never to decide anything.
    ``label`` names the payload in messages (``WHAT: LABEL: ...``).

    Raises:
        FormatError, SchemaError: the payload type or the payload is not a card's.
    """
    if envelope.payload_type != PAYLOAD_TYPE:
        raise FormatError(f"{what}: payload type {envelope.payload_type!r} is not a card")
    unverified = _json.loads_object(envelope.payload, what=f"{what}: {label}")
    return parse_statement(unverified, what=f"{what}: {label}")


@dataclass(frozen=True, slots=True)
class SignedCard:
    """A signed card, and what signing it did."""

    envelope: Envelope
    keyid: str
    """The key that signed now."""
    cosigned: bool
    """True when the card was already signed and this signature was added to the others."""


def sign_card(document: Envelope | CardStatement, key: PrivateKey, *, what: str) -> SignedCard:
    """Sign a card: an unsigned statement, or add a co-signature to a signed card.

    A co-signer signs the very bytes already signed, so they must at least be a well-formed
    card (nothing else is checked: a co-signer verifies the card first, with ``verify``). A key
    that already signed replaces its own signature rather than counting twice.

    Raises:
        FormatError, SchemaError: the envelope's payload type or payload is not a card.
    """
    if isinstance(document, Envelope):
        unverified_statement(document, what=what, label="payload")
        return SignedCard(add_signature(document, key), key.keyid, cosigned=True)
    payload = _json.canonical(document.to_dict())
    return SignedCard(sign_envelope(PAYLOAD_TYPE, payload, [key]), key.keyid, cosigned=False)
